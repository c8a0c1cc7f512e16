"""Central's commands and announcements, as the kiosk takes them.

**Commands.** Central's staff send a kiosk a command (`kiosk.wire.CommandAction`:
out of service, in service, reboot, resync, selftest, collect logs); it
rides in the answer to the kiosk's heartbeat as an envelope

    {"command_id", "device_id", "action", "issued_at", "expires_at", "key_id", "signature"}

signed by central's key as the catalogue is (`catalogue_supply.check_signature`,
under `wire.COMMAND_CONTEXT`). `read_envelope` takes one only when it is signed
by central's key (``central.catalogue_key``), addressed to this device, of an
action the kiosk knows, issued (give or take `CLOCK_SKEW_S`) and not expired;
the ledger (`CommandLedger`, offline/command_ledger.py on the state database)
then takes its id once: the same envelope again, even after a restart, is
refused as replayed. Anything refused is never carried out; it is audited
(`command.refused`, detail `<action>:<reason>`), and central is told why when
the envelope names a command id.

A command taken (`command.taken`) waits in the session until nobody is
served (the attract screen, or out of service): a citizen and a payment are
never interrupted. Then the session carries it out (kiosk/session.py): out of
service and back in service are central's own decision, beside the
technician's, and outlive a restart (`CommandLedger.out_of_service`); resync
fetches the catalogue and the announcements and delivers the outbox now;
reboot, selftest and collect-logs are the runtime's (`CommandDesk.run`, on a
worker). What became of it is written in the ledger (`command.done` or
`command.refused` in the audit log), and reported to central
(`POST wire.COMMAND_RESULT`) until central holds it: a report that cannot go
now waits in the ledger, across restarts. A command taken whose result was
never written (the kiosk stopped in between) is refused as `interrupted` at
the next start, but a reboot is written done before the device goes down.

A collect-logs command sends the kiosk's recent log lines (`RecentLogLines`,
kept in memory), which by the project's rules hold no personal data: each is
still checked (`wire.is_safe_log_line`; a line that fails is left out and
counted, never stripped), and only the newest `wire.LOG_LINES_MAX`, within
`wire.LOG_BYTES_MAX`, go.

**Announcements.** Central's announcements for the attract screen come as a
document signed like the catalogue (`wire.ANNOUNCEMENTS_CONTEXT`), fetched
with the catalogue (between sessions, every ``catalogue.refresh_s``, and at
once after a resync or when the heartbeat's answer names another version), and
kept on the disk: the attract screen shows the newest one for this kiosk's
governorate (or for everywhere) until its time, also while central cannot be
reached, as long as the copy is younger than ``catalogue.max_age_h``.

The heartbeat's answer may also name central's catalogue version (and the
announcements'): another one than the kiosk shows is fetched between sessions,
so a fee changed at central is the fee the next citizen confirms.
"""

from __future__ import annotations

import abc
import collections
import enum
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk import wire
from kiosk.catalogue_supply import CLOCK_SKEW_S, CatalogueRefused, check_signature
from kiosk.errors import CentralError, QueueError
from kiosk.ports.catalogue_cache import CachedCatalogue, CatalogueCache
from kiosk.ports.central import Central
from kiosk.wire import CommandAction, CommandOutcome

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- a command's envelope


class Refusal(str, enum.Enum):
    """Why the kiosk did not carry a command out: the reason central is told."""

    MALFORMED = "malformed"              # not an envelope of central's
    UNKNOWN_KEY = "unknown_key"          # signed by a key the kiosk does not hold
    BAD_SIGNATURE = "bad_signature"      # the key is known, the signature does not verify: altered or forged
    WRONG_DEVICE = "wrong_device"        # addressed to another kiosk
    UNKNOWN_ACTION = "unknown_action"    # an action this kiosk's software does not know
    NOT_YET_VALID = "not_yet_valid"      # issued in the future (a clock that is wrong, one side or the other)
    EXPIRED = "expired"                  # its time passed (before it arrived, or while it waited for a session)
    REPLAYED = "replayed"                # taken before: an envelope is carried out once
    INTERRUPTED = "interrupted"          # taken, then the kiosk stopped before it was carried out
    UNAVAILABLE = "unavailable"          # this kiosk cannot do it (no reboot in this build, no self-test)
    UNREACHABLE = "unreachable"          # what it had to send could not reach central
    FAILED = "failed"                    # it went wrong unexpectedly (the log says how)


@dataclass(frozen=True)
class Command:
    """A command taken: checked, addressed to this kiosk, not seen before."""

    command_id: str
    action: CommandAction
    issued_at: float                 # wall time, seconds
    expires_at: float


class EnvelopeRefused(ValueError):
    """An envelope the kiosk does not take: `reason`, and what it names, when it can be read."""

    def __init__(self, reason: Refusal, *, command_id: str | None = None, action: str = "") -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.command_id = command_id
        self.action = action


def _time(value: object) -> float:
    if not isinstance(value, str):
        raise ValueError("not a time")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment.timestamp()


def read_envelope(envelope: object, *, keys: Iterable[Ed25519PublicKey], device_id: str, now: float) -> Command:
    """The command `envelope` holds when this kiosk may take it (the ledger aside: see `CommandLedger.take`);
    EnvelopeRefused otherwise, in this order: not central's (malformed, unknown key, bad signature), not
    for this kiosk, an unknown action, not yet valid or expired at `now` (wall time)."""
    command_id = envelope.get("command_id") if isinstance(envelope, dict) else None
    command_id = command_id if wire.is_id(command_id) else None
    action = envelope.get("action") if isinstance(envelope, dict) else None
    action = action if isinstance(action, str) and wire.is_id(action) else ""
    keys = tuple(keys)
    if not keys:
        raise EnvelopeRefused(Refusal.UNKNOWN_KEY, command_id=command_id, action=action)
    try:
        check_signature(envelope, keys, context=wire.COMMAND_CONTEXT)
    except CatalogueRefused as exc:
        raise EnvelopeRefused(Refusal(exc.reason.value), command_id=command_id, action=action) from None
    assert isinstance(envelope, dict)
    if command_id is None or not action:
        raise EnvelopeRefused(Refusal.MALFORMED, command_id=command_id, action=action)
    if envelope.get("device_id") != device_id:
        raise EnvelopeRefused(Refusal.WRONG_DEVICE, command_id=command_id, action=action)
    try:
        kind = CommandAction(action)
    except ValueError:
        raise EnvelopeRefused(Refusal.UNKNOWN_ACTION, command_id=command_id, action=action) from None
    try:
        issued_at, expires_at = _time(envelope.get("issued_at")), _time(envelope.get("expires_at"))
    except ValueError:
        raise EnvelopeRefused(Refusal.MALFORMED, command_id=command_id, action=action) from None
    if issued_at > now + CLOCK_SKEW_S:
        raise EnvelopeRefused(Refusal.NOT_YET_VALID, command_id=command_id, action=action)
    if now >= expires_at:
        raise EnvelopeRefused(Refusal.EXPIRED, command_id=command_id, action=action)
    return Command(command_id, kind, issued_at, expires_at)


# ---------------------------------------------------------------- the ledger


@dataclass(frozen=True)
class Report:
    """A result central has not heard yet."""

    seq: int
    command_id: str
    outcome: CommandOutcome
    reason: str | None


@dataclass(frozen=True)
class Unfinished:
    command_id: str
    action: str


class CommandLedger(abc.ABC):
    """The commands this kiosk took, by id, and the results central must hear; durable (the state
    database: offline/command_ledger.py), so that a replay is refused and a result reported after a
    restart. Every method may be called from any thread; QueueError when the disk cannot."""

    @abc.abstractmethod
    def take(self, command: Command, taken_at: float) -> bool:
        """Keep `command`'s id: True the first time, False when it was taken before (a replay)."""

    @abc.abstractmethod
    def finish(self, command_id: str, outcome: CommandOutcome, reason: str | None, at: float) -> bool:
        """The result of a command taken, written once, and a report of it for central; False when it
        had one already (nothing written)."""

    @abc.abstractmethod
    def note_refusal(self, command_id: str, reason: str, at: float) -> None:
        """A report for central of an envelope refused on arrival (never taken, or a replay)."""

    @abc.abstractmethod
    def unreported(self, limit: int = 50) -> list[Report]:
        """The reports central has not heard yet, oldest first."""

    @abc.abstractmethod
    def reported(self, seq: int) -> None:
        """Central holds report `seq` (or refused it for good): it goes."""

    @abc.abstractmethod
    def unfinished(self) -> list[Unfinished]:
        """The commands taken whose result was never written."""

    @abc.abstractmethod
    def outcome(self, command_id: str) -> CommandOutcome | None:
        """What became of a command taken; None when it was not taken or is not finished."""

    @abc.abstractmethod
    def out_of_service(self) -> bool:
        """Whether the last out-of-service or in-service command carried out was out of service."""

    def forget_old(self, now: float) -> int:
        """Forget the commands expired long ago (`now` wall time); how many went."""
        return 0


# ---------------------------------------------------------------- announcements


@dataclass(frozen=True)
class Announcement:
    """What the attract screen shows under its welcome, in each language."""

    announcement_id: str
    texts: dict[str, str]            # "ar" and "en"
    governorate: str                 # "" everywhere
    created_at: str                  # as central wrote it: they are ordered by it
    until: float | None              # wall time; None: until withdrawn

    def text(self, language: str) -> str:
        return self.texts.get(language) or self.texts["ar"]


@dataclass(frozen=True)
class SignedAnnouncements:
    items: tuple[Announcement, ...]
    version: str
    issued_at: float
    document: dict


def read_announcements(document: object, keys: Sequence[Ed25519PublicKey]) -> SignedAnnouncements:
    """The announcements `document` holds, checked (signed by one of `keys` under
    `wire.ANNOUNCEMENTS_CONTEXT`; none: not checked) and strictly read; ValueError (CatalogueRefused for
    the signature) otherwise."""
    if keys:
        check_signature(document, keys, context=wire.ANNOUNCEMENTS_CONTEXT)
    if not isinstance(document, dict) or not isinstance(document.get("announcements"), list):
        raise ValueError("not announcements")
    items = []
    for item in document["announcements"]:
        texts = item.get("text") if isinstance(item, dict) else None
        if not isinstance(texts, dict) or not all(
                isinstance(texts.get(lang), str) and texts[lang].strip() and wire.is_plain_text(texts[lang])
                and len(texts[lang]) <= wire.ANNOUNCEMENT_MAX_CHARS for lang in ("ar", "en")):
            raise ValueError("an announcement without its two plain texts")
        governorate, until = item.get("governorate", ""), item.get("until")
        if not wire.is_id(item.get("id")) or not isinstance(governorate, str) \
                or not isinstance(item.get("created_at"), str):
            raise ValueError("an announcement without an id, a governorate or a time")
        items.append(Announcement(item["id"], {"ar": texts["ar"], "en": texts["en"]}, governorate,
                                  item["created_at"], None if until is None else _time(until)))
    version = document.get("version", "")
    issued = document.get("issued_at")
    return SignedAnnouncements(tuple(items), version if isinstance(version, str) else "",
                               _time(issued) if issued is not None else 0.0, document)


def shown_announcement(items: Iterable[Announcement], governorate: str, now: float) -> Announcement | None:
    """The newest announcement for `governorate` (or for everywhere) still current at `now` (wall time)."""
    current = [a for a in items if (not a.governorate or a.governorate == governorate)
               and (a.until is None or now < a.until)]
    return max(current, key=lambda a: (a.created_at, a.announcement_id), default=None)


class AnnouncementSupply:
    """Central's announcements now, else the copy kept (as kiosk.catalogue_supply's catalogue); the
    one to show. Called on the runtime's catalogue worker."""

    def __init__(self, central: Central, *, keys: Iterable[Ed25519PublicKey] = (), governorate: str = "",
                 cache: CatalogueCache | None = None, max_age_s: float = 72 * 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._central = central
        self._keys = tuple(keys)
        self._governorate = governorate
        self._cache = cache if self._keys else None
        self._max_age_s = max_age_s
        self._clock = clock
        self._held: SignedAnnouncements | None = None
        self._kept_version: str | None = None

    def load(self) -> tuple[Announcement | None, str]:
        """(the announcement to show now or None, the version of the announcements it comes from: ""
        when none could be had)."""
        try:
            fresh = read_announcements(self._central.fetch_signed_announcements(), self._keys)
        except CentralError as exc:
            log.warning("announcements.unavailable error=%s", type(exc).__name__)
            fresh = None
        except (ValueError, KeyError, TypeError) as exc:
            reason = exc.reason.value if isinstance(exc, CatalogueRefused) else "malformed"
            log.error("announcements.refused source=central reason=%s", reason)
            fresh = None
        if fresh is not None:
            self._held = fresh
            self._keep(fresh)
        else:
            self._held = self._copy()
        if self._held is None:
            return None, ""
        return shown_announcement(self._held.items, self._governorate, self._clock()), self._held.version

    def _keep(self, fresh: SignedAnnouncements) -> None:
        if self._cache is None or fresh.version == self._kept_version:
            return
        try:
            self._cache.save(CachedCatalogue(fresh.document, self._clock()))
        except QueueError as exc:
            log.error("announcements.copy_unwritten error=%s", exc)
            return
        self._kept_version = fresh.version

    def _copy(self) -> SignedAnnouncements | None:
        """Central could not be asked: the one held, or the copy on the disk, while young enough."""
        held = self._held
        if held is None and self._cache is not None:
            kept = self._cache.load()
            try:
                held = read_announcements(kept.document, self._keys) if kept is not None else None
            except (ValueError, KeyError, TypeError):
                log.error("announcements.copy_refused reason=malformed_or_altered")
                held = None
        if held is None:
            return None
        if self._keys and self._clock() - held.issued_at > self._max_age_s:
            log.warning("announcements.copy_refused reason=too_old")
            return None
        return held


# ---------------------------------------------------------------- the log lines a collect-logs command sends


LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


class RecentLogLines(logging.Handler):
    """The kiosk's newest log lines, formatted, kept in memory (a bounded deque) for collect-logs."""

    def __init__(self, capacity: int = 2 * wire.LOG_LINES_MAX) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
        self._lines: collections.deque[str] = collections.deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.extend(self.format(record).splitlines())
        except Exception:                 # a record that cannot be formatted is not kept
            self.handleError(record)

    def lines(self) -> list[str]:
        return list(self._lines)

    def install(self) -> RecentLogLines:
        """Kept from every logger from now on (the root's handlers; again if they were replaced since)."""
        root = logging.getLogger()
        if self not in root.handlers:
            root.addHandler(self)
        return self


_RECENT = RecentLogLines()


def recent_log_lines() -> RecentLogLines:
    """The process's one ring of recent log lines, installed on the root logger."""
    return _RECENT.install()


def collected_lines(lines: Sequence[str]) -> tuple[list[str], int]:
    """(the newest of `lines` that may leave the kiosk, oldest first, within `wire.LOG_LINES_MAX` and
    `wire.LOG_BYTES_MAX`; how many were left out because they failed the check)."""
    safe = [line for line in lines if wire.is_safe_log_line(line)]
    dropped = len(lines) - len(safe)
    kept: list[str] = []
    size = 0
    for line in reversed(safe[-wire.LOG_LINES_MAX:]):
        size += len(line) + 1
        if size > wire.LOG_BYTES_MAX:
            break
        kept.append(line)
    kept.reverse()
    return kept, dropped


# ---------------------------------------------------------------- events into the session, effects out of it


@dataclass(frozen=True)
class CommandTaken:
    """A command checked and taken: the session carries it out between sessions, within `seconds_left`."""

    command: Command
    seconds_left: float


@dataclass(frozen=True)
class CommandRefused:
    """An envelope refused on arrival (`reason`; reported when it names a command id), or a command taken
    that a stopped run never finished (`taken`: refused as interrupted at the next start)."""

    command_id: str | None
    action: str
    reason: Refusal
    taken: bool = False


@dataclass(frozen=True)
class CommandFinished:
    """The runtime carried out a command (`ok`), or could not (`reason`)."""

    command_id: str
    ok: bool
    reason: Refusal | None = None


@dataclass(frozen=True)
class CentralDecisionLoaded:
    """At start: whether central's last word was out of service (it outlives a restart)."""

    out_of_service: bool


@dataclass(frozen=True)
class AnnouncementsLoaded:
    announcement: Announcement | None
    version: str = ""                # of the announcements it was chosen from ("" none could be had)


@dataclass(frozen=True)
class VersionsAnnounced:
    """The heartbeat's answer named central's catalogue and announcements versions now ("" not named)."""

    catalogue: str = ""
    announcements: str = ""


@dataclass(frozen=True)
class RunCommand:
    """Reboot, resync's outbox, selftest or collect-logs: carried out by the runtime on a worker."""

    command: Command


@dataclass(frozen=True)
class FinishCommand:
    """What became of a command, written in the ledger and the audit log at once, then reported to
    central; `taken` False for an envelope refused on arrival."""

    command_id: str | None
    action: str
    outcome: CommandOutcome
    reason: str | None = None
    taken: bool = True


def audit_detail(action: str, reason: str | None) -> str:
    """`<action>` or `<action>:<reason>`, as a code (kiosk/ports/audit.py)."""
    text = "%s:%s" % (action or "unknown", reason) if reason else (action or "unknown")
    return text[:64]


# ---------------------------------------------------------------- the desk: envelopes in, results out


@dataclass(frozen=True)
class CommandTools:
    """What the runtime's commands need of the device (the composition root gives the real ones)."""

    reboot: Callable[[], None] | None = None             # the technician's reboot (`systemctl reboot`)
    resync_outbox: Callable[[], None] | None = None      # every message waiting due now, the worker woken
    selftest: Callable[[], bool | None] | None = None    # run beside the kiosk and reported; None: not reported
    recent_lines: Callable[[], list[str]] | None = None  # the kiosk's newest log lines


class CommandDesk:
    """The kiosk's side of central's commands, beside the session: takes the envelopes a heartbeat's answer
    brings (`receive`, from the telemetry's thread: handed to the desk's own worker), carries out the
    runtime's part of a command (`run`, on the runtime's commands worker), writes what became of each
    (`finish`, on the session's thread) and reports it to central (on the desk's worker). Events for the
    session go through `post` (`attach`: the runtime's, which runs them on the session's thread)."""

    def __init__(self, central: Central, ledger: CommandLedger, *, device_id: str,
                 keys: Iterable[Ed25519PublicKey], tools: CommandTools = CommandTools(),
                 clock: Callable[[], float] = time.time) -> None:
        self._central = central
        self.ledger = ledger
        self._device_id = device_id
        self._keys = tuple(keys)
        self._tools = tools
        self._clock = clock
        self._post: Callable[[object], None] = lambda _event: None
        self._report_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._report_queued = False                   # a report round waits on the worker: no second one is queued
        self._worker: ThreadPoolExecutor | None = None

    def start(self, post: Callable[[object], None]) -> list[object]:
        """Start the desk's worker, events going to `post`; the events the session must hear first:
        central's last word on service, and the commands a stopped run took and never finished."""
        self._post = post
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commands-desk")
        first: list[object] = []
        try:
            self.ledger.forget_old(self._clock())
            if self.ledger.out_of_service():
                first.append(CentralDecisionLoaded(True))
            first += [CommandRefused(left.command_id, left.action, Refusal.INTERRUPTED, taken=True)
                      for left in self.ledger.unfinished()]
        except QueueError as exc:
            log.error("commands.ledger_unreadable error=%s", exc)
        self.report_soon()                 # what a stopped run could not tell central
        return first

    def stop(self) -> None:
        """Stop the worker once what it was given is done: a result written is told to central now if it
        can be (else at the next start)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown(wait=True)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until what was handed to the desk's worker so far is done (tests, and a stop)."""
        worker = self._worker
        if worker is None:
            return True
        try:
            worker.submit(lambda: None).result(timeout=timeout)
        except (TimeoutError, RuntimeError):
            return False
        return True

    def _submit(self, work: Callable[[], object]) -> bool:
        worker = self._worker
        try:
            if worker is not None:
                worker.submit(work)
                return True
        except RuntimeError:              # shut down meanwhile
            pass
        log.warning("commands.desk_stopped")
        return False

    # -- arrivals ---------------------------------------------------------------------------------------

    def receive(self, envelopes: list) -> None:
        """The command envelopes of a heartbeat's answer (the telemetry's `on_commands` hook): checked and
        taken, or refused, one by one on the desk's worker; returns at once."""
        self._submit(lambda: self._receive_all(list(envelopes)))

    def heard(self, answer: object) -> None:
        """A heartbeat's answer: the catalogue and announcements versions it names, told to the session."""
        if not isinstance(answer, dict):
            return
        versions = {key: answer.get(key + "_version") for key in ("catalogue", "announcements")}
        versions = {key: value if isinstance(value, str) else "" for key, value in versions.items()}
        if any(versions.values()):
            self._post(VersionsAnnounced(**versions))

    def _receive_all(self, envelopes: list) -> None:
        for envelope in envelopes:
            try:
                self._receive_one(envelope)
            except Exception:             # one bad envelope (or a disk error) never stops the rest
                log.exception("commands.receive_failed")

    def _receive_one(self, envelope: object) -> None:
        now = self._clock()
        try:
            command = read_envelope(envelope, keys=self._keys, device_id=self._device_id, now=now)
        except EnvelopeRefused as exc:
            log.warning("commands.refused command=%s action=%s reason=%s", exc.command_id or "-",
                        exc.action or "-", exc.reason.value)
            self._post(CommandRefused(exc.command_id, exc.action, exc.reason))
            return
        if not self.ledger.take(command, now):
            log.warning("commands.refused command=%s action=%s reason=%s", command.command_id,
                        command.action.value, Refusal.REPLAYED.value)
            self._post(CommandRefused(command.command_id, command.action.value, Refusal.REPLAYED))
            return
        log.info("commands.taken command=%s action=%s", command.command_id, command.action.value)
        self._post(CommandTaken(command, command.expires_at - now))

    # -- the runtime's part -----------------------------------------------------------------------------

    def run(self, command: Command) -> CommandFinished | None:
        """Reboot, resync (the outbox), selftest, collect-logs; None for a reboot under way."""
        action = command.action
        if action is CommandAction.RESYNC:
            if self._tools.resync_outbox is not None:
                self._tools.resync_outbox()
            return CommandFinished(command.command_id, True)
        if action is CommandAction.COLLECT_LOGS:
            return self._collect_logs(command)
        if action is CommandAction.SELFTEST:
            if self._tools.selftest is None:
                return CommandFinished(command.command_id, False, Refusal.UNAVAILABLE)
            reported = self._tools.selftest()
            return CommandFinished(command.command_id, bool(reported), None if reported else Refusal.UNREACHABLE)
        if action is CommandAction.REBOOT:
            if self._tools.reboot is None:
                return CommandFinished(command.command_id, False, Refusal.UNAVAILABLE)
            # Written done, and told to central if it can be now, before the device goes down.
            self.ledger.finish(command.command_id, CommandOutcome.DONE, None, self._clock())
            self.report()
            log.warning("commands.reboot command=%s", command.command_id)
            self._tools.reboot()
            return None
        return CommandFinished(command.command_id, False, Refusal.UNKNOWN_ACTION)

    def _collect_logs(self, command: Command) -> CommandFinished:
        lines, dropped = collected_lines(self._tools.recent_lines() if self._tools.recent_lines else [])
        sent = self._central.send_command_logs(command.command_id, lines, dropped)
        log.info("commands.logs_sent command=%s lines=%d dropped=%d answered=%s", command.command_id, len(lines),
                 dropped, sent)
        if sent is None:
            return CommandFinished(command.command_id, False, Refusal.UNREACHABLE)
        return CommandFinished(command.command_id, sent, None if sent else Refusal.FAILED)

    # -- results --------------------------------------------------------------------------------------------

    def finish(self, effect: FinishCommand) -> None:
        """Write what became of a command (on the session's thread, at once: before anything it records
        goes on), then tell central on the desk's worker. QueueError when the ledger cannot be written."""
        if effect.command_id is None:
            return
        at = self._clock()
        if effect.taken:
            self.ledger.finish(effect.command_id, effect.outcome, effect.reason, at)
        else:
            self.ledger.note_refusal(effect.command_id, effect.reason or Refusal.FAILED.value, at)
        self.report_soon()

    def report_soon(self) -> None:
        """A report round on the desk's worker, unless one waits there already."""
        with self._queue_lock:
            if self._report_queued:
                return
            self._report_queued = True
        if not self._submit(self._report_round):
            with self._queue_lock:
                self._report_queued = False

    def _report_round(self) -> None:
        with self._queue_lock:
            self._report_queued = False
        self.report()

    def report(self) -> int:
        """Tell central every result it has not heard, oldest first, until it cannot be reached; how many
        it now holds. One caller at a time."""
        told = 0
        with self._report_lock:
            while True:
                try:
                    pending = self.ledger.unreported()
                except QueueError as exc:
                    log.error("commands.ledger_unreadable error=%s", exc)
                    return told
                if not pending:
                    return told
                for report in pending:
                    answer = self._central.report_command(report.command_id, report.outcome.value, report.reason)
                    if answer is None:
                        log.info("commands.report_waits command=%s", report.command_id)
                        return told
                    if answer is False:
                        log.error("commands.report_refused command=%s", report.command_id)
                    self.ledger.reported(report.seq)
                    told += 1
