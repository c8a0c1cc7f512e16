"""`kiosk card check`: read the card in the ID reader as the kiosk would.

    kiosk card check [--config C] [--trust ISSUER.pem ...] [--reader NAME] [-v]

For technicians at a kiosk. The card is read with the kiosk's own driver
(`PyscardCardReader`): power up, SELECT, VERIFY with the PIN, EF.ID and
EF.ID_SIG, both authenticity checks, EF.PHOTO against its digest (D1) on a
card of profile 1.1, and the expiry against today's date.

Trusted issuer keys are those of the configuration (`--config`, or
/etc/kiosk/kiosk.toml when it exists and no `--config` is given) plus every
`--trust` PEM. `--reader` (the leading part of a PC/SC reader name) overrides
the configuration's `card.reader`; without either the first reader is used.

The PIN is read from standard input: one line from a pipe, or a prompt
("PIN: ", on stderr, not echoed) on a terminal. It is never echoed, logged or
put in a message. With `-v` the driver's log (event names and reasons, no
card data) goes to stderr; otherwise only warnings do.

Output: exactly one line on stdout, stable for scripts; never personal data.

    valid apdus=N                         exit 0
    forged apdus=N                        exit 1  unknown issuer key, EF.ID_SIG does not verify,
                                                  or EF.PHOTO does not match D1 (a swapped photo)
    cloned apdus=N                        exit 1  INTERNAL AUTHENTICATE does not verify
    expired apdus=N                       exit 1  authentic, but past its date of expiry
    blocked apdus=N                       exit 1  PIN blocked
    wrong PIN (T tries left) apdus=N      exit 1  ("1 try left" when T is 1)
    unreadable apdus=N                    exit 1  an answer outside the profile, a silent or pulled card
    unreadable at connect                 exit 1  no ID application, or no answer to SELECT
    no card in reader "READER NAME"       exit 1
    no reader                             exit 1  no PC/SC reader at all (or pcscd is not running)
    no reader "PREFIX"                    exit 1  no reader whose name starts with PREFIX

N is the number of command APDUs the authentication took (VERIFY onwards,
EF.PHOTO's on a card with D1, GET RESPONSE and Le repeats included), as
`CardReadResult.apdu_count`.
A usage or configuration problem (no trusted key, an unreadable key or
configuration, no PIN, a PIN that is not 4 to 8 digits) prints one line
`kiosk: ...` on stderr, nothing on stdout, and exits 2.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TextIO

from drivers.id_card.errors import PinFormatError
from drivers.id_card.pin import pin_block
from drivers.pcsc_channel import find_reader
from drivers.pyscard_reader import PyscardCardReader
from kiosk import config as kiosk_config
from kiosk.issuer_keys import TrustStore, load_issuer_keys
from kiosk.ports.card_reader import CardReader, CardReadResult, CardVerdict, ConnectResult, ReaderStatus
from kiosk.errors import ConfigError, KioskError

log = logging.getLogger(__name__)

EXIT_VALID = 0
EXIT_NOT_VALID = 1
PIN_PROMPT = "PIN: "
DEFAULT_APDU_TIMEOUT_S = 5.0


class UsageError(KioskError):
    """The technician's input cannot be used (no PIN, a malformed PIN)."""


@dataclass(frozen=True)
class CheckSettings:
    """What the check needs from the configuration and the command line."""

    trust_store: TrustStore
    reader_prefix: str = ""
    apdu_timeout_s: float = DEFAULT_APDU_TIMEOUT_S


@dataclass(frozen=True)
class Outcome:
    """The one line for stdout and the exit status."""

    line: str
    exit_code: int


def settings(config_path: Path | None, trust: Sequence[Path], reader: str | None,
             *, default_config: Path = kiosk_config.DEFAULT_PATH) -> CheckSettings:
    """Trusted keys, reader prefix and APDU timeout from the configuration
    (if any) and the options. Raises ConfigError when no key is trusted."""
    if config_path is None and default_config.is_file():
        config_path = default_config
    key_files: list[Path] = []
    prefix, timeout_s = "", DEFAULT_APDU_TIMEOUT_S
    if config_path is not None:
        config = kiosk_config.load(config_path)
        key_files += config.card.trusted_issuers
        prefix, timeout_s = config.card.reader, config.card.apdu_timeout_s
    key_files += trust
    if not key_files:
        raise ConfigError("no trusted issuer keys: give --config C or --trust ISSUER.pem")
    store = load_issuer_keys(key_files)
    log.info("card_check.trust keys=%d", len(store))
    return CheckSettings(store, prefix if reader is None else reader, timeout_s)


def read_pin(stdin: TextIO | None = None) -> str:
    """One line from a pipe, or a silent prompt on a terminal."""
    stdin = sys.stdin if stdin is None else stdin
    try:
        if stdin.isatty():
            line = getpass.getpass(PIN_PROMPT, stream=sys.stderr)
        else:
            line = stdin.readline()
    except (EOFError, KeyboardInterrupt):
        raise UsageError("no PIN given") from None
    pin = line.rstrip("\r\n")
    if not pin:
        raise UsageError("no PIN on standard input")
    try:
        block = pin_block(pin)                # checks the format only
    except PinFormatError:
        raise UsageError("the PIN must be 4 to 8 digits") from None
    block[:] = bytes(len(block))
    return pin


def check(reader: CardReader, reader_name: str, get_pin: Callable[[], str], *,
          today: dt.date) -> Outcome:
    """Read the card in `reader` (named `reader_name`, which must exist).

    The PIN is asked for only once a card is in the reader."""
    no_card = Outcome('no card in reader "%s"' % reader_name, EXIT_NOT_VALID)
    if reader.status is ReaderStatus.NO_CARD:
        return no_card
    pin: str | None = get_pin()
    try:
        connected = reader.connect()
        if connected is ConnectResult.NO_CARD:
            return no_card
        if connected is not ConnectResult.CONNECTED:
            return Outcome("unreadable at connect", EXIT_NOT_VALID)
        result = reader.authenticate(pin, today=today)
    finally:
        pin = None
        reader.disconnect()
    return Outcome(verdict_line(result),
                   EXIT_VALID if result.verdict is CardVerdict.VALID else EXIT_NOT_VALID)


def verdict_line(result: CardReadResult) -> str:
    """`valid apdus=34`, `wrong PIN (2 tries left) apdus=1`, ...: no card data."""
    if result.verdict is CardVerdict.WRONG_PIN:
        tries = result.tries_left
        what = "wrong PIN (%d %s left)" % (tries, "try" if tries == 1 else "tries") \
            if tries is not None else "wrong PIN"
    else:
        what = result.verdict.value
    return "%s apdus=%d" % (what, result.apdu_count)


def run(config_path: Path | None, trust: Sequence[Path], reader: str | None,
        *, out: TextIO | None = None) -> int:
    """The `kiosk card check` command: print the line, return the exit status."""
    out = sys.stdout if out is None else out
    chosen = settings(config_path, trust, reader)
    found = find_reader(chosen.reader_prefix)
    name = None if found is None else str(found)
    if name is None:
        outcome = Outcome("no reader" if not chosen.reader_prefix
                          else 'no reader "%s"' % chosen.reader_prefix, EXIT_NOT_VALID)
    else:
        driver = PyscardCardReader(chosen.trust_store, reader_name=name,
                                   apdu_timeout_s=chosen.apdu_timeout_s)
        outcome = check(driver, name, read_pin, today=dt.date.today())
    log.info("card_check.done exit=%d", outcome.exit_code)
    print(outcome.line, file=out, flush=True)
    return outcome.exit_code
