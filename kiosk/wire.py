"""The central API as both sides see it: where each call goes and what its answers say.

Central (`central/`) serves these paths and answers with these statuses; the
kiosk's client (`kiosk.central_client`) calls them and checks the answers
against them. Neither side spells a path or a status anywhere else.

The acquirer's payment look-up is here too: central asks it (`central/acquirer.py`)
before it issues a paid document, and the terminal simulator serves it.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from urllib.parse import quote

API = "/api/v1"
HEALTH = API + "/health"
CATALOGUE = API + "/catalogue"
ELIGIBILITY = API + "/requests/eligibility"
REQUESTS = API + "/requests"
VOID = API + "/requests/{request_id}/void"
VERIFY_DOCUMENT = API + "/documents/verify"
SIGNING_KEY = API + "/signing-key"
# Documents claimed while a kiosk could not reach central, waiting for their citizen at any kiosk.
CLAIMS_WAITING = API + "/claims/waiting"
CLAIM_COLLECTED = API + "/claims/{serial}/collected"
# A kiosk's identity: enrolled once with a code central staff issued, then every request signed
# (RFC 9421, Ed25519, the device id as keyid); a card's presence, proven over central's challenge.
ENROL = API + "/devices/enrol"
CHALLENGES = API + "/challenges"
# Signed updates (The Update Framework): central serves its release repository read-only, as static
# files (central/releases/), and kiosks read it with python-tuf's ngclient (kiosk/updates/). A release
# bundle is the target `kiosk-<version>-<platform>.tar` (platform: "linux_" + the machine, linux_aarch64
# on a Raspberry Pi); a version is one to four whole numbers, compared as numbers (0.10.0 after 0.9.3).
TUF = "/tuf"
TUF_METADATA = TUF + "/metadata"
TUF_TARGETS = TUF + "/targets"
RELEASE_TARGET = re.compile(r"kiosk-(?P<version>[0-9]{1,6}(?:\.[0-9]{1,6}){0,3})-(?P<platform>[a-z0-9_]{1,32})\.tar")
# What a kiosk learns when central will not serve it (HTTP 401 or 403): its `reason`. A call
# refused as "replayed" (a signature central saw already) is only sent again, newly signed.
DEVICE_REFUSALS = frozenset({"unauthenticated", "unknown_device", "device_revoked"})
REPLAYED = "replayed"
# Covered by every kiosk's signature; a body is covered by its Content-Digest too.
SIGNED_COMPONENTS = ("@method", "@authority", "@target-uri")
SIGNATURE_MAX_AGE_S = 300

# Telemetry (kiosk/telemetry.py, central/telemetry.py): what each kiosk reports, signed like every kiosk
# call, in codes and counts only (never a citizen's data, never a message). A heartbeat is answered
# {"status": "ok", "commands": [envelopes]}; an audit batch {"status": "ok", "held_seq": N} (the newest
# entry central holds for the kiosk), or 409 {"status": "rejected", "reason": CHAIN_BROKEN, "held_seq": N,
# "first_bad": seq} when it does not continue that chain; a self-test report {"status": "ok"}.
TELEMETRY_HEARTBEAT = API + "/telemetry/heartbeat"
TELEMETRY_AUDIT = API + "/telemetry/audit"
TELEMETRY_SELFTEST = API + "/telemetry/selftest"
CHAIN_BROKEN = "chain_broken"
KIOSK_STATES = ("ready", "busy", "offline", "out_of_service", "fault")   # a heartbeat's `state`
PAPER_STATES = ("ok", "low", "out")
DOOR_STATES = ("closed", "open")
# A heartbeat's codes (a reason, a device's status, an alert, the last error): `printer.paper_low`, `no_paper`.
CODE_PATTERN = r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*$"
CODE_MAX_LENGTH = 64
ALERTS_PER_HEARTBEAT = 100          # the most alerts one heartbeat carries (more go with the next)
AUDIT_BATCH_MAX = 100               # the most audit entries one batch carries (within the 64 KB body limit)

# The place a kiosk stands, as signed into every document: short, and plain text.
PLACE_MAX_LENGTH = 40
# Characters that would move or hide printed text (bidi embeddings, overrides and
# isolates; line and paragraph separators), beside the control characters.
_HIDING = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")

# An id chosen by a kiosk (request, charge, refund, device): safe in a URL and a log line.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_ID = re.compile(ID_PATTERN)


class AnswerStatus(str, enum.Enum):
    """The `status` of central's answer to a certificate request or a void."""

    ISSUED = "issued"        # {"status", "document"}
    REJECTED = "rejected"    # {"status", "reason"}: never issued for this request id
    VOIDED = "voided"        # {"status", "request_id", "serial", "voided_at"}: to a void, and to a request replayed
                             # after its void (never the document again)
    CONFLICT = "conflict"    # a request id used again with another body: a bug, never retried
    COLLECTED = "collected"  # {"status", "serial", "collected_at"}: a claimed document printed for its citizen


# Commands from central's staff (central/commands.py, kiosk/commands.py): each an envelope signed by
# central's key for one device, single-use, that rides in the heartbeat's answer; the kiosk says what it
# did with it (POST COMMAND_RESULT {"outcome": "done" | "refused", "reason": code or null}), and sends the
# log lines a collect-logs command asks for (POST COMMAND_LOGS {"lines": [...], "dropped": n}). Central's
# announcements for the attract screen: GET ANNOUNCEMENTS, a document signed like the catalogue.
COMMAND_RESULT = API + "/commands/{command_id}/result"
COMMAND_LOGS = API + "/commands/{command_id}/logs"
ANNOUNCEMENTS = API + "/announcements"
# What central's signature covers begins with one of these (kiosk.catalogue.signing_bytes): a command's
# signature is never taken for an announcement's or a catalogue's, nor the other way round.
COMMAND_CONTEXT = b"KSK-COMMAND-1\n"
ANNOUNCEMENTS_CONTEXT = b"KSK-ANNOUNCEMENTS-1\n"
ANNOUNCEMENT_MAX_CHARS = 100          # each language's text: what the attract screen shows at its largest
COMMAND_RECORDED = "recorded"        # central's `status` once it holds a command's result (or its logs)
UNKNOWN_COMMAND = "unknown_command"  # its `reason` for a command id it never sent (404)
# A collect-logs command's lines: the newest kept, within these bounds, each one a safe log line.
LOG_LINES_MAX = 500
LOG_BYTES_MAX = 32 * 1024
LOG_LINE_MAX_CHARS = 400


class CommandAction(str, enum.Enum):
    """What central's staff may ask of a kiosk (`kiosk-central command send ACTION`)."""

    OUT_OF_SERVICE = "out-of-service"    # citizens see "out of service" until central puts it back
    IN_SERVICE = "in-service"
    REBOOT = "reboot"                    # the device restarts, as the technician's reboot
    RESYNC = "resync"                    # the outbox delivered and the catalogue and announcements fetched now
    SELFTEST = "selftest"                # `kiosk selftest --beside-kiosk`, its report sent with the telemetry
    COLLECT_LOGS = "collect-logs"        # the kiosk's recent log lines (never personal data) sent to central


class CommandOutcome(str, enum.Enum):
    DONE = "done"
    REFUSED = "refused"                  # with a reason code: why the kiosk did not carry it out


# A log line a kiosk may send: printable ASCII, no long number standing alone (a national number has 11
# digits, a card number 10, a bank card 13 to 19, maybe in groups), no e-mail address, no key naming a
# person's particulars. Anything else is dropped, never stripped (what is left of a name is part of one).
_LONG_NUMBER = re.compile(r"(?<![A-Za-z0-9])[0-9]{8,}(?![A-Za-z0-9])|[0-9]{4}[ -][0-9]{4}[ -][0-9]{4}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PERSONAL_KEY = re.compile(r"(?i)(?:name|national|holder|mother|father|birth|pin|card_number|phone|address)\w*=")


def is_safe_log_line(line: object) -> bool:
    """Whether `line` may leave the kiosk in a collect-logs answer (see above)."""
    return (isinstance(line, str) and len(line) <= LOG_LINE_MAX_CHARS and all(" " <= ch <= "~" for ch in line)
            and _LONG_NUMBER.search(line) is None and _EMAIL.search(line) is None
            and _PERSONAL_KEY.search(line) is None)


# Staged rollouts (central/rollouts.py, kiosk/updates/offer.py): central chooses which release a kiosk may
# install, TUF proves it. GET ROLLOUT?platform=P&version=RUNNING -> 200 {"version": V | null, "rollout_id": ID
# | null}: the newest version an active rollout whose cohorts hold this kiosk offers it, newer than RUNNING.
# POST ROLLOUT_REPORT {"rollout_id", "version", "outcome", "event_id", "at", "reason": code | null} -> 200
# {"status": "recorded", "counted": bool} (counted: false for an event central holds already), or 404
# {"status": "rejected", "reason": UNKNOWN_ROLLOUT} (no such rollout offered that version to this kiosk).
ROLLOUT = API + "/rollout"
ROLLOUT_REPORT = API + "/rollout/report"
ROLLOUT_RECORDED = "recorded"
UNKNOWN_ROLLOUT = "unknown_rollout"
EVENT_ID_PATTERN = r"^[0-9a-f]{32}$"     # a report's event id: the kiosk's digest of its update event


class RolloutOutcome(str, enum.Enum):
    """What a kiosk reports of a release its rollout offered it."""

    INSTALLED = "installed"      # unpacked beside the running version, waiting for the switch
    PROVEN = "proven"            # it started, reached the attract screen and passed its self-test
    FAILED = "failed"            # it failed (rolled back by the kiosk itself, or refused): the rollout pauses


# The acquirer's API: GET ACQUIRER_PAYMENT -> 200 {"payment_id", "status", "amount_minor",
# "currency", "terminal_id", "sale_id"}, or 404 {"reason": UNKNOWN_PAYMENT}.
ACQUIRER_PAYMENT = "/acquirer/v1/payments/{payment_id}"
UNKNOWN_PAYMENT = "unknown_payment"


class AcquirerPaymentStatus(str, enum.Enum):
    """The `status` of a payment as the acquirer holds it."""

    APPROVED = "approved"
    DECLINED = "declined"
    REVERSED = "reversed"     # cancelled before settlement: nothing was taken
    REFUNDED = "refunded"     # given back after settlement


def is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.match(value) is not None


def is_plain_text(value: str) -> bool:
    """No control character and nothing that moves or hides the text around it."""
    return not any(unicodedata.category(ch) == "Cc" or ch in _HIDING for ch in value)


def claim_collected_path(serial: str) -> str:
    return CLAIM_COLLECTED.format(serial=quote(serial, safe=""))


def void_path(request_id: str) -> str:
    return VOID.format(request_id=quote(request_id, safe=""))


def command_result_path(command_id: str) -> str:
    return COMMAND_RESULT.format(command_id=quote(command_id, safe=""))


def command_logs_path(command_id: str) -> str:
    return COMMAND_LOGS.format(command_id=quote(command_id, safe=""))


def acquirer_payment_path(payment_id: str) -> str:
    return ACQUIRER_PAYMENT.format(payment_id=quote(payment_id, safe=""))


def release_target(version: str, platform: str) -> str:
    """The target name of a release bundle (RELEASE_TARGET); ValueError for a version or a platform it refuses."""
    name = "kiosk-%s-%s.tar" % (version, platform)
    if RELEASE_TARGET.fullmatch(name) is None:
        raise ValueError("not a release version and platform: %r, %r (e.g. 0.2.0, linux_aarch64)" % (version, platform))
    return name


def release_version_key(version: str) -> tuple[int, ...]:
    """A release version as numbers to compare: 0.10.0 comes after 0.9.3, and 1.0 is 1.0.0. ValueError for
    anything but one to four whole numbers joined by dots."""
    parts = version.split(".")
    if not 1 <= len(parts) <= 4 or not all(part.isascii() and part.isdigit() and len(part) <= 6 for part in parts):
        raise ValueError("not a release version: %r (e.g. 0.2.0)" % version[:40])
    numbers = [int(part) for part in parts]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)
