"""The kiosk's reports to central: heartbeats, alerts kept until central has them, the audit log.

One worker thread (`Telemetry`), beside the outbox's sync worker, started and stopped with the
runtime; the UI thread only ever tells it that something changed (`changed`, `alert`, `error`: no
I/O, they return at once). Every call is signed like the kiosk's others (kiosk.central_client's
`send_telemetry`; central/telemetry.py answers). Everything sent is a code, a count or a time:
never a national number, a name, card data, a PIN or what a citizen asked for.

**Heartbeats** (`POST /api/v1/telemetry/heartbeat`) go every `telemetry.heartbeat_s` (60 s), and soon
after a change: the kiosk's state, a device's status, the door, the paper, a new alert; at most one
every `telemetry.debounce_s` (5 s). The body:

    {"sent_at": "2026-11-29T10:00:00Z", "version": "0.1.0",
     "state": "ready" | "busy" | "offline" | "out_of_service" | "fault", "reason": code or null,
     "queue_depth": n, "dead_letters": n, "last_sync_at": time or null,
     "devices": {"card_reader": "no_card", "terminal": "ready", "printer": "paper_near_end"},
     "paper": "ok" | "low" | "out", "door": "closed" | "open",
     "disk_free_mb": n, "memory_available_mb": n or null, "last_error": code or null,
     "alerts": [{"code": "cabinet.door_opened", "raised_at": "2026-11-29T09:58:12.345Z"}, ...]}

`reason` says why the kiosk is out of service (`door_open`, `technician`, `device_refused`, ...) or
in fault (`print_waiting`). A device's status is the one last seen (a print's outcome, a terminal's
check before a sale); at a scheduled heartbeat, while nobody is served, each device is asked anew,
on its own worker (the runtime's `telemetry_facts`).

**Alerts** (`fx.Alert`, and what the outbox, the journal, the audit log and the disk raise) are kept in
the state database (kiosk.ports.telemetry, offline/telemetry_store.py) from the moment they are
raised, on a writer thread of their own, and go with every heartbeat until one that carried them is
answered: a door opened while the link is down reaches central when it is back, even after a restart.
Central keeps each one once.

**The audit log** (kiosk/ports/audit.py) goes after each heartbeat answered, in batches
(`POST /api/v1/telemetry/audit`, at most `wire.AUDIT_BATCH_MAX` entries) from the entry after the
newest central acknowledged; that position is kept in the state database, so a restart resumes where
central is. Central checks the hash chain: a batch that does not continue it is answered 409
`chain_broken` with the newest entry central holds; a kiosk behind central's copy catches up from there,
and one whose log was rewritten is logged (critical) and refused again at each heartbeat.

**Stopping.** As the kiosk stops, a last heartbeat says so (`out_of_service`, reason `stopped`) and
takes the alerts and audit entries that wait, unless the link is down or central was not answering.

**The link.** While the outbox sees the link down, nothing is sent (its probe watches the link, and
the link coming back is a change that sends a heartbeat at once). A call that finds central
unreachable or busy (a timeout, a 5xx, a 429) stops everything but the next scheduled heartbeat. A
kiosk central refuses (not enrolled, revoked) says so once in the log and tries again only at the
schedule, like its other calls (`CentralClient.device_refused` puts it out of service).

**Commands: the hook.** Central's answer to a heartbeat is ``{"status": "ok", "commands": [...]}``.
The command envelopes are handed, as central sent them (not checked here: the commands feature checks
each one's signature, addressee and single use), to the `on_commands` callable the composition root
gives (`kiosk/app.py`: ``Telemetry(..., on_commands=...)``): called on this worker's thread, once per
answer that carried any, with the list; it must pass them to a thread of its own and return at once
(what it raises is logged and dropped). Without one they go nowhere, and only their count is logged
(`telemetry.commands_unhandled count=N`). `changed()` asks for a heartbeat soon (to report a command's
effect), and `send_selftest_report` sends a self-test's report (`kiosk selftest --report`).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Protocol

from kiosk import wire
from kiosk.errors import QueueError
from kiosk.ports.audit import AuditLog
from kiosk.ports.cabinet import CabinetInput, Light
from kiosk.ports.outbox import LinkState
from kiosk.ports.receipt_printer import PrinterStatus
from kiosk.ports.telemetry import KeptAlert, MemoryTelemetryStore, TelemetryStore

log = logging.getLogger(__name__)

MB = 1024 * 1024
LINK_POLL_S = 1.0                 # while the link is down: how often the outbox's view of it is read again
AUDIT_BATCHES_PER_ROUND = 20      # then the rest goes after the next heartbeat, a debounce later
MALFORMED_ALERT = "alert.malformed"
STOPPED = "stopped"               # the reason of the last heartbeat, sent as the kiosk stops
_CODE = re.compile(wire.CODE_PATTERN)
_RETRY_LATER = frozenset({408, 425, 429})

# The kiosk's state, as its status light shows it (kiosk/runtime.py's light for the screen shown).
STATES = {
    Light.READY: "ready",
    Light.BUSY: "busy",
    Light.OFFLINE: "offline",
    Light.OUT_OF_SERVICE: "out_of_service",
    Light.FAULT: "fault",
    Light.OFF: "out_of_service",
}


class Reply(Protocol):
    http_status: int
    body: dict


# send(path, body) -> central's reply, or None when central cannot be reached (CentralClient.send_telemetry)
Send = Callable[[str, dict], "Reply | None"]
OnCommands = Callable[[list], None]


def is_code(text: object) -> bool:
    return isinstance(text, str) and len(text) <= wire.CODE_MAX_LENGTH and _CODE.match(text) is not None


def code_of(member: enum.Enum | None) -> str:
    """A device's status as a heartbeat's code: PrinterStatus.PAPER_NEAR_END -> `paper_near_end`; None -> `unknown`."""
    return "unknown" if member is None else member.name.lower()


def paper_of(printer: PrinterStatus, inputs: frozenset[CabinetInput]) -> str:
    """Out when the printer says so; low when it or the cabinet's sensor says so; else ok."""
    if printer is PrinterStatus.NO_PAPER:
        return "out"
    if printer is PrinterStatus.PAPER_NEAR_END or CabinetInput.PAPER_LOW in inputs:
        return "low"
    return "ok"


def door_of(inputs: frozenset[CabinetInput]) -> str:
    return "open" if CabinetInput.DOOR_OPENED in inputs else "closed"


def iso_utc(when: float, *, milliseconds: bool = False) -> str:
    moment = datetime.fromtimestamp(when, tz=timezone.utc)
    if milliseconds:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class KioskFacts:
    """What a heartbeat says of the kiosk itself (the runtime's `telemetry_facts`): codes and counts."""

    state: str                         # one of wire.KIOSK_STATES
    reason: str | None = None          # why out of service or in fault: a code
    card_reader: str = "unknown"
    terminal: str = "unknown"
    printer: str = "unknown"
    paper: str = "ok"
    door: str = "closed"
    queue_depth: int = 0
    dead_letters: int = 0
    last_sync_at: float | None = None  # wall time central last answered the outbox

    def signature(self) -> tuple:
        """What counts as a change worth a heartbeat now (the queue's counts do not: they go on schedule)."""
        return self.state, self.reason, self.card_reader, self.terminal, self.printer, self.paper, self.door


@dataclasses.dataclass(frozen=True)
class MachineFacts:
    disk_free_mb: int | None = None
    memory_available_mb: int | None = None


def machine_facts(state_dir: Path) -> MachineFacts:
    """Free space on the state directory's file system and the memory available (Linux's MemAvailable)."""
    disk = memory = None
    try:
        stats = os.statvfs(state_dir)
        disk = stats.f_bavail * stats.f_frsize // MB
    except OSError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    memory = int(line.split()[1]) // 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    return MachineFacts(disk, memory)


def heartbeat_body(facts: KioskFacts, machine: MachineFacts, *, version: str, sent_at: float,
                   last_error: str | None, alerts: list[KeptAlert]) -> dict:
    """The heartbeat, as central/telemetry.py's HeartbeatBody reads it."""
    return {
        "sent_at": iso_utc(sent_at), "version": version, "state": facts.state, "reason": facts.reason,
        "queue_depth": facts.queue_depth, "dead_letters": facts.dead_letters,
        "last_sync_at": None if facts.last_sync_at is None else iso_utc(facts.last_sync_at),
        "devices": {"card_reader": facts.card_reader, "terminal": facts.terminal, "printer": facts.printer},
        "paper": facts.paper, "door": facts.door,
        "disk_free_mb": machine.disk_free_mb, "memory_available_mb": machine.memory_available_mb,
        "last_error": last_error,
        "alerts": [{"code": alert.code, "raised_at": alert.raised_at} for alert in alerts],
    }


class Outcome(enum.Enum):
    OK = "ok"
    NOT_NOW = "not_now"          # unreachable, busy, or a garbled answer: at the next scheduled heartbeat
    REPLAYED = "replayed"        # central saw this signature already: sent again, newly signed, soon
    REFUSED = "refused"          # central does not serve this kiosk
    WRONG = "wrong"              # central refused the body: a bug here, logged


def _reason(reply: Reply) -> str:
    reason = reply.body.get("reason")
    return reason if isinstance(reason, str) and reason.isidentifier() else "unreadable"


def classify(call: str, reply: Reply | None) -> Outcome:
    """What central's reply to a telemetry call means (one log line for the unusual)."""
    if reply is None:
        return Outcome.NOT_NOW
    status = reply.http_status
    if status == 200 and reply.body.get("status") == "ok":
        return Outcome.OK
    if status in (401, 403):
        return Outcome.REPLAYED if _reason(reply) == wire.REPLAYED else Outcome.REFUSED
    if status >= 500 or status in _RETRY_LATER or status == 200:
        log.warning("telemetry.unavailable call=%s http=%d", call, status)
        return Outcome.NOT_NOW
    log.error("telemetry.refused call=%s http=%d reason=%s", call, status, _reason(reply))
    return Outcome.WRONG


def send_selftest_report(send: Send, report: dict) -> bool:
    """A self-test's report (kiosk.selftest.Report.to_json()) to central, once; False when it did not take it."""
    outcome = classify("selftest", send(wire.TELEMETRY_SELFTEST, report))
    if outcome is Outcome.REPLAYED:
        outcome = classify("selftest", send(wire.TELEMETRY_SELFTEST, report))
    log.info("telemetry.selftest_report outcome=%s", outcome.value)
    return outcome is Outcome.OK


def _no_link() -> LinkState:
    return LinkState.UNKNOWN


def _not_started(*, ask_devices: bool) -> KioskFacts:
    raise RuntimeError("the telemetry was not started: it has no facts to send")


class Telemetry:
    def __init__(self, send: Send, *, version: str, heartbeat_s: float = 60.0, debounce_s: float = 5.0,
                 machine: Callable[[], MachineFacts] = MachineFacts, on_commands: OnCommands | None = None,
                 store: TelemetryStore | None = None, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, audit_batch: int = wire.AUDIT_BATCH_MAX) -> None:
        """`send` is CentralClient.send_telemetry; `machine` tells the disk and memory; `on_commands` is the
        commands' hook (see the module's docstring); `store` keeps alerts and the audit position (given
        later with `keep_in` when the state database is opened after this is built)."""
        if not 0 < debounce_s <= heartbeat_s:
            raise ValueError("a heartbeat's debounce is above zero and at most its interval")
        self._send = send
        self._version = version
        self._heartbeat_s = heartbeat_s
        self._debounce_s = debounce_s
        self._machine = machine
        self._on_commands = on_commands
        self._wall = wall
        self._monotonic = monotonic
        self._audit_batch = max(1, min(audit_batch, wire.AUDIT_BATCH_MAX))
        self._lock = threading.Lock()
        self._keeping = threading.Lock()              # one writer of alerts at a time: they are kept in order
        self._store = store
        self._unkept: list[tuple[str, str]] = []     # alerts not written yet (no store yet, or it failed)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="telemetry-store")
        self._closed = False
        self._last_error: str | None = None
        # The worker's.
        self._facts: Callable[..., KioskFacts] = _not_started
        self._link: Callable[[], LinkState] = _no_link
        self._audit: AuditLog | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._dirty = False
        self._next_beat = 0.0
        self._last_sent = float("-inf")
        self._quiet_until = float("-inf")
        self._quiet: Outcome | None = None          # why nothing is sent before the next scheduled heartbeat
        self._offline = False
        self._sent_signature: tuple | None = None
        self._chain_broken_at: int | None = None

    # -- from any thread: none of these waits on I/O --------------------------------------------------------

    def alert(self, code: str) -> None:
        """A technician must see to something: kept (on the writer thread) until central acknowledges it."""
        if not is_code(code):
            log.error("telemetry.alert_not_a_code")
            code = MALFORMED_ALERT
        raised_at = iso_utc(self._wall(), milliseconds=True)
        with self._lock:
            self._last_error = code
            self._unkept.append((code, raised_at))
            if self._store is not None and not self._closed:
                self._writer.submit(self._keep_alerts)
        self.changed()

    def error(self, code: str) -> None:
        """The kiosk's own fault, shown to a citizen (a print that failed): the heartbeat's last error."""
        if is_code(code):
            self._last_error = code

    def changed(self) -> None:
        """Something a heartbeat says may have changed: one goes soon (debounced) when it did."""
        self._dirty = True
        self._wake.set()

    # -- lifecycle ----------------------------------------------------------------------------------------

    def keep_in(self, store: TelemetryStore) -> None:
        """Where alerts and the audit position are kept; the alerts raised so far are written there now."""
        with self._lock:
            self._store = store
        self._keep_alerts()

    def start(self, facts: Callable[..., KioskFacts], *, link: Callable[[], LinkState] = _no_link,
              audit: AuditLog | None = None) -> None:
        """Start the worker: `facts(ask_devices=...)` says what the kiosk is (the runtime's), `link` what the
        outbox sees of central (`Outbox.link`), `audit` the log to ship (None: none)."""
        if self._thread is not None:
            return
        if self._store is None:
            self.keep_in(MemoryTelemetryStore())
        self._facts, self._link, self._audit = facts, link, audit
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sending. The alerts raised until now are written; then, unless the link is down or central
        was not answering, a last heartbeat says the kiosk stops (`out_of_service`, `stopped`), with the
        alerts and the audit entries that wait."""
        running = self._thread is not None
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        with self._lock:
            self._closed = True
        self._writer.shutdown(wait=True)
        self._keep_alerts()
        if running:
            try:
                self._last_word()
            except Exception:                      # stopping goes on whatever happened
                log.exception("telemetry.last_heartbeat_failed")

    def _last_word(self) -> None:
        now = self._monotonic()
        if self._link() is LinkState.OFFLINE or now < self._quiet_until:
            return
        facts = dataclasses.replace(self._facts(ask_devices=False), state="out_of_service", reason=STOPPED)
        if self._beat(facts, self._kept().alerts(wire.ALERTS_PER_HEARTBEAT), now) is Outcome.OK:
            self._ship_audit()

    def _kept(self) -> TelemetryStore:
        """The store (`start` gives one when none was): none here is a bug, raised as one."""
        store = self._store
        if store is None:
            raise RuntimeError("the telemetry has no store before it starts")
        return store

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the worker ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                wait = self._round()
            except Exception:                      # an unexpected fault never stops the reports
                log.exception("telemetry.round_failed")
                wait = self._heartbeat_s
            self._wake.wait(timeout=max(0.0, wait))
            self._wake.clear()

    def _keep_alerts(self) -> None:
        """Write the alerts raised so far to the store, in the order raised (the writer's, the worker's when
        one could not be written, and at start and stop)."""
        with self._keeping:
            with self._lock:
                store, unkept, self._unkept = self._store, self._unkept, []
            if store is None:
                with self._lock:
                    self._unkept[:0] = unkept
                return
            for index, (code, raised_at) in enumerate(unkept):
                try:
                    store.keep_alert(code, raised_at)
                except QueueError as exc:              # a full disk: kept in memory, written at the next round
                    log.error("telemetry.alert_unwritten code=%s error=%s", code, exc)
                    with self._lock:
                        self._unkept[:0] = unkept[index:]
                    return

    def _round(self) -> float:
        """One heartbeat (and the audit log after it) when one is due; the seconds until the next look."""
        if self._unkept:
            self._keep_alerts()
        now = self._monotonic()
        if self._link() is LinkState.OFFLINE:
            if not self._offline:
                log.info("telemetry.waiting_for_link")
            self._offline = True
            if now >= self._next_beat:
                self._next_beat = now + self._heartbeat_s
            return min(LINK_POLL_S, self._heartbeat_s)
        if self._offline:                          # the link is back: what waited goes now
            self._offline = False
            self._quiet_until = float("-inf")
            self._dirty = True
        scheduled = now >= self._next_beat
        if not scheduled:
            if not self._dirty or now < self._quiet_until:
                return self._next_beat - now
            debounce = self._last_sent + self._debounce_s - now
            if debounce > 0:
                return min(debounce, self._next_beat - now)
        self._dirty = False
        facts = self._facts(ask_devices=scheduled)
        alerts = self._kept().alerts(wire.ALERTS_PER_HEARTBEAT)
        if not scheduled and not alerts and facts.signature() == self._sent_signature:
            return self._next_beat - now
        outcome = self._beat(facts, alerts, now)
        self._last_sent = now
        if scheduled or outcome is not Outcome.OK:
            self._next_beat = now + self._heartbeat_s
        if outcome is Outcome.OK:
            more_alerts = len(alerts) == wire.ALERTS_PER_HEARTBEAT
            if self._ship_audit() or more_alerts:
                self._dirty = True                 # the rest after a debounce
        elif outcome is Outcome.REPLAYED:
            self._dirty = True
        return 0.0 if self._dirty else self._next_beat - self._monotonic()

    def _beat(self, facts: KioskFacts, alerts: list[KeptAlert], now: float) -> Outcome:
        body = heartbeat_body(facts, self._machine(), version=self._version, sent_at=self._wall(),
                              last_error=self._last_error, alerts=alerts)
        reply = self._send(wire.TELEMETRY_HEARTBEAT, body)
        outcome = classify("heartbeat", reply)
        commands = reply.body.get("commands", []) if reply is not None else []
        if outcome is Outcome.OK and not isinstance(commands, list):
            log.error("telemetry.answer_garbled call=heartbeat")
            outcome = Outcome.NOT_NOW
        self._note(outcome, reply, now)
        if outcome is not Outcome.OK:
            return outcome
        if alerts:
            try:
                self._kept().acknowledge([alert.id for alert in alerts])
            except QueueError as exc:              # sent again with the next heartbeat: central keeps it once
                log.error("telemetry.alerts_unacknowledged count=%d error=%s", len(alerts), exc)
        self._sent_signature = facts.signature()
        log.log(logging.INFO if alerts or commands else logging.DEBUG, "telemetry.heartbeat state=%s alerts=%d "
                "commands=%d", facts.state, len(alerts), len(commands))
        if commands:
            self._hand_on(commands)
        return outcome

    def _hand_on(self, commands: list) -> None:
        if self._on_commands is None:
            log.info("telemetry.commands_unhandled count=%d", len(commands))
            return
        try:
            self._on_commands(commands)
        except Exception:
            log.exception("telemetry.commands_hook_failed count=%d", len(commands))

    def _note(self, outcome: Outcome, reply: Reply | None, now: float) -> None:
        """Quiet until the next scheduled heartbeat after a failure, with one log line when it begins and ends."""
        if outcome in (Outcome.OK, Outcome.REPLAYED):
            if self._quiet is not None:
                log.info("telemetry.resumed after=%s", self._quiet.value)
            self._quiet, self._quiet_until = None, float("-inf")
            return
        if outcome is not self._quiet:
            if outcome is Outcome.REFUSED:
                log.warning("telemetry.device_refused reason=%s", _reason(reply) if reply is not None else "-")
            elif outcome is Outcome.NOT_NOW:
                log.info("telemetry.unreachable")
        self._quiet = outcome
        self._quiet_until = now + self._heartbeat_s

    def _ship_audit(self) -> bool:
        """Send the audit log from where central holds it, a batch at a time; True when more is left."""
        if self._audit is None:
            return False
        store = self._kept()
        try:
            position = store.audit_position()
            for _ in range(AUDIT_BATCHES_PER_ROUND):
                entries = self._audit.entries(after=position, limit=self._audit_batch)
                if not entries:
                    return False
                reply = self._send(wire.TELEMETRY_AUDIT, {"entries": [entry.to_json() for entry in entries]})
                held = reply.body.get("held_seq") if reply is not None else None
                if reply is not None and reply.http_status == 409 and reply.body.get("reason") == wire.CHAIN_BROKEN \
                        and type(held) is int:
                    if not self._chain_broken(held, position, entries[-1].seq, reply.body.get("first_bad")):
                        return False
                    position = min(held, entries[-1].seq)
                    store.save_audit_position(position)
                    continue
                outcome = classify("audit", reply)
                if outcome is Outcome.OK and type(held) is not int:
                    log.error("telemetry.answer_garbled call=audit")
                    return False
                if outcome is not Outcome.OK:
                    self._note(outcome, reply, self._monotonic())
                    return outcome is Outcome.REPLAYED
                position = min(held, entries[-1].seq)
                store.save_audit_position(position)
                self._chain_broken_at = None
                log.info("telemetry.audit_shipped count=%d position=%d", len(entries), position)
            return True
        except QueueError as exc:
            log.error("telemetry.audit_unreadable error=%s", exc)
            return False

    def _chain_broken(self, held: int, position: int, last_sent: int, first_bad: object) -> bool:
        """Central's copy does not continue with what was sent: True when sending from `held` may mend it
        (central holds less than this kiosk thought, or kept part of the batch)."""
        if held != position:
            log.warning("telemetry.audit_position_moved from=%d to=%d", position, min(held, last_sent))
            return True
        if first_bad != self._chain_broken_at:
            self._chain_broken_at = first_bad if type(first_bad) is int else None
            log.critical("telemetry.audit_chain_broken held_seq=%d first_bad=%s", held, first_bad)
        return False
