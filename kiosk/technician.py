"""The technician's side of the kiosk: the PIN that opens the technician screen, what that screen
shows of the devices, and what a technician may do there.

The maintenance key switch in the cabinet asks for the technician screen; a PIN of 6 to 12 digits
opens it. The configuration holds only a salted hash of that PIN (`[technician] pin_hash`, made by
`kiosk technician hash-pin`), never the PIN: scrypt (`scrypt$<log2 n>$<r>$<p>$<salt>$<hash>`) or
PBKDF2-HMAC-SHA256 (`pbkdf2-sha256$<iterations>$<salt>$<hash>`), salt and hash in unpadded
URL-safe base64. Checking a PIN is slow on purpose: the runtime does it on a worker thread.

Pure code: no Kivy, no driver, no logging of a PIN.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from dataclasses import dataclass

from kiosk import scrypt_hash
from kiosk.ports.cabinet import Light
from kiosk.ports.card_reader import ReaderStatus
from kiosk.ports.outbox import LinkState
from kiosk.ports.payment_terminal import TerminalState
from kiosk.ports.receipt_printer import PrinterStatus

PIN_MIN_DIGITS = 6
PIN_MAX_DIGITS = 12
_PIN = re.compile(r"[0-9]{%d,%d}" % (PIN_MIN_DIGITS, PIN_MAX_DIGITS))

# What a configured PBKDF2 hash may ask for: enough to be slow, never enough to stall the kiosk (scrypt's
# bounds are kiosk/scrypt_hash.py's).
_PBKDF2_ITERATIONS_RANGE = (100_000, 5_000_000)


def is_valid_pin(pin: str) -> bool:
    """6 to 12 digits (0-9), nothing else."""
    return bool(_PIN.fullmatch(pin))


def hash_pin(pin: str, *, salt: bytes | None = None, log2_n: int = scrypt_hash.LOG2_N) -> str:
    """The salted scrypt hash of `pin`, as `[technician] pin_hash` holds it. ValueError for a PIN that
    is not 6 to 12 digits (the message never holds the PIN)."""
    if not is_valid_pin(pin):
        raise ValueError("a technician PIN is %d to %d digits" % (PIN_MIN_DIGITS, PIN_MAX_DIGITS))
    return scrypt_hash.make(pin.encode("ascii"), log2_n=log2_n, salt=salt)


@dataclass(frozen=True, repr=False)
class PinHash:
    """A parsed `pin_hash`; its repr says only the scheme."""

    scheme: str                # "scrypt" or "pbkdf2-sha256"
    params: tuple[int, ...]    # scrypt: (log2 n, r, p); pbkdf2: (iterations,)
    salt: bytes
    digest: bytes

    def __repr__(self) -> str:
        return "PinHash(%s)" % self.scheme

    def matches(self, pin: str) -> bool:
        """Whether `pin` is the one hashed; slow (the point of it), constant-time in the comparison."""
        if not is_valid_pin(pin):
            return False
        if self.scheme == "scrypt":
            log2_n, r, p = self.params
            got = scrypt_hash.derive(pin.encode("ascii"), self.salt, log2_n, r, p, len(self.digest))
        else:
            (iterations,) = self.params
            got = hashlib.pbkdf2_hmac("sha256", pin.encode("ascii"), self.salt, iterations, dklen=len(self.digest))
        return hmac.compare_digest(got, self.digest)


def parse_pin_hash(text: str) -> PinHash:
    """`text` as `[technician] pin_hash` holds it; ValueError saying what is wrong (never echoing it)."""
    parts = text.split("$")
    try:
        if parts[0] == scrypt_hash.SCHEME and len(parts) == 6:
            log2_n, r, p, salt, digest = scrypt_hash.parse(text)
            found = PinHash("scrypt", (log2_n, r, p), salt, digest)
        elif parts[0] == "pbkdf2-sha256" and len(parts) == 4:
            iterations = int(parts[1])
            if not _PBKDF2_ITERATIONS_RANGE[0] <= iterations <= _PBKDF2_ITERATIONS_RANGE[1]:
                raise ValueError("pbkdf2 iterations out of range (%d to %d)" % _PBKDF2_ITERATIONS_RANGE)
            found = PinHash("pbkdf2-sha256", (iterations,), scrypt_hash.unb64(parts[2]), scrypt_hash.unb64(parts[3]))
        else:
            raise ValueError("not a hash made by `kiosk technician hash-pin` (scrypt$... or pbkdf2-sha256$...)")
    except ValueError as exc:
        if str(exc).startswith(("scrypt parameters out", "pbkdf2", "not a hash", "not base64", "salt of")):
            raise
        raise ValueError("not a hash made by `kiosk technician hash-pin` (a number expected)") from None
    scrypt_hash.check_lengths(found.salt, found.digest)
    return found


def check_pin(pin: str, pin_hash: str) -> bool:
    """Whether `pin` matches the configured `pin_hash` ("" or an unreadable hash: never)."""
    if not pin_hash:
        return False
    try:
        return parse_pin_hash(pin_hash).matches(pin)
    except ValueError:
        return False


# ---------------------------------------------------------------- the technician screen


class TechnicianAction(enum.Enum):
    """What a technician may do from the technician screen; each is audited as `technician.<value>`."""

    REFRESH = "refresh"                    # gather the devices' status again
    TEST_PRINT = "test_print"              # a short test page through the printer port
    LIGHT_WALK = "light_walk"              # each light pattern in turn on the cabinet
    RESTART = "restart"                    # the app exits with RESTART_EXIT_STATUS; systemd starts it again
    REBOOT = "reboot"                      # the device restarts (`systemctl reboot`)
    OUT_OF_SERVICE = "out_of_service"      # citizens see "out of service" until put back
    BACK_IN_SERVICE = "back_in_service"


# The frontend exits with this status when the technician restarts the app (EX_TEMPFAIL): the
# systemd unit's `Restart=always` starts it again.
RESTART_EXIT_STATUS = 75


@dataclass(frozen=True)
class TechnicianStatus:
    """What the technician screen shows of the kiosk: devices, queue, link, software. No personal data."""

    reader: ReaderStatus = ReaderStatus.UNKNOWN
    terminal: TerminalState | None = None          # None: not asked, or it did not answer in time
    printer: PrinterStatus = PrinterStatus.UNKNOWN
    light: Light | None = None                     # the pattern the cabinet shows (None: none shown yet)
    pending: int | None = None                     # messages waiting in the outbox (None: not known)
    dead: int | None = None                        # dead letters (refused for good by central)
    last_sync: str | None = None                   # when central last answered the outbox, local time
    link: LinkState = LinkState.UNKNOWN
    version: str = ""
    device_id: str = ""


@dataclass(frozen=True)
class TechnicianPolicy:
    """How many wrong technician PINs are allowed before a lockout, and how long it lasts
    (`[technician] max_tries`, `lockout_s`)."""

    max_tries: int = 5
    lockout_s: float = 300.0
