"""Commands from central's staff to kiosks: one kiosk, a governorate's, or all of them.

    kiosk-central command send ACTION (--device ID ... | --governorate G | --all) [--expires-minutes 60]
    kiosk-central command list [--device ID] [--batch B]
    kiosk-central command logs COMMAND_ID

ACTION is one of `kiosk.wire.CommandAction`: out-of-service, in-service,
reboot, resync, selftest, collect-logs. Each kiosk gets a command of its own,
with a random id: its envelope

    {"command_id", "device_id", "action", "issued_at", "expires_at", "key_id",
     "signature": {"alg": "Ed25519", "key_id", "value"}}

is signed by central's key as the catalogue is (central/signing.py's
`sign_document`, under `wire.COMMAND_CONTEXT`), when it first rides in the
answer to the kiosk's heartbeat (`for_heartbeat`); the kiosk checks it
(kiosk/commands.py): central's key, addressed to it, not expired, never
taken before. A command delivered that has no result after
`REDELIVER_AFTER_S` rides again (the answer may have been lost on the way);
a kiosk that took it already refuses it as replayed, which changes nothing
here.

What happens to a command is its `state` (sent, delivered, done, refused with
the kiosk's reason; expired when its time passed without a result) and, one
row each, its events (central's side of the audit): sent, delivered, and
every result a kiosk reported, also those that change nothing (a replay
refused, a result from a kiosk the command was not for, a second result).

    POST /api/v1/commands/{command_id}/result {"outcome": "done" | "refused", "reason": code or null}
        200 {"status": "recorded", "command_id"}
        404 {"status": "rejected", "reason": "unknown_command"}       (no such command)
    POST /api/v1/commands/{command_id}/logs {"lines": [...], "dropped": n}     (a collect-logs command's)
        200 {"status": "recorded", "command_id", "lines"}
        404 {"status": "rejected", "reason": "unknown_command"}       (not this kiosk's collect-logs command)
        422 {"status": "rejected", "reason": "unsafe_log_line"}       (a line fails `wire.is_safe_log_line`)

Logs carry ids and codes only.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from central import signing
from central.db import Database, iso_utc, utc_now
from central.models import Device, KioskCommand, KioskCommandEvent, KioskCommandLogs
from central.wire import Answer, Body, rejected
from kiosk import wire
from kiosk.wire import CommandAction, CommandOutcome

log = logging.getLogger(__name__)

DEFAULT_LIFETIME = timedelta(minutes=60)
LONGEST_LIFETIME = timedelta(days=7)
REDELIVER_AFTER_S = 300          # a command delivered without a result rides again after this long
PER_ANSWER = 20                  # the most commands one heartbeat answer carries, oldest first
FINAL = frozenset({CommandOutcome.DONE.value, CommandOutcome.REFUSED.value})
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
GOVERNORATE_PATTERN = r"^[a-z][a-z0-9-]{0,63}$"


class ResultBody(Body):
    outcome: Literal["done", "refused"]
    reason: Code | None = None


class LogsBody(Body):
    lines: Annotated[list[Annotated[str, Field(max_length=wire.LOG_LINE_MAX_CHARS)]],
                     Field(max_length=wire.LOG_LINES_MAX)]
    dropped: Annotated[int, Field(ge=0, le=10 ** 6)] = 0


class CohortError(ValueError):
    """The kiosks named cannot all be sent a command (unknown, revoked, none at all); says which."""


@dataclass(frozen=True)
class CommandRow:
    """A command as `kiosk-central command list` shows it."""

    command_id: str
    batch_id: str
    device_id: str
    action: str
    state: str                   # sent | delivered | done | refused | expired
    reason: str | None
    issued_at: str
    expires_at: str
    delivered_at: str | None
    finished_at: str | None

    def line(self) -> str:
        return "\t".join((self.command_id, self.device_id, self.action,
                          self.state + (" (%s)" % self.reason if self.reason else ""),
                          "issued %s" % self.issued_at, "expires %s" % self.expires_at,
                          "delivered %s" % (self.delivered_at or "-"), "finished %s" % (self.finished_at or "-")))


@dataclass(frozen=True)
class CommandLogs:
    command_id: str
    device_id: str
    received_at: str
    lines: tuple[str, ...]
    dropped: int


def _shown_state(row: KioskCommand, now: str) -> str:
    return "expired" if row.state not in FINAL and row.expires_at <= now else row.state


def _row(command: KioskCommand, now: str) -> CommandRow:
    return CommandRow(command.command_id, command.batch_id, command.device_id, command.action,
                      _shown_state(command, now), command.reason, command.issued_at, command.expires_at,
                      command.delivered_at, command.finished_at)


def _event(session: Session, command_id: str, device_id: str, at: str, event: str, detail: str = "") -> None:
    session.add(KioskCommandEvent(command_id=command_id, device_id=device_id, at=at, event=event, detail=detail))


def envelope(command: KioskCommand, signing_key: Ed25519PrivateKey) -> dict:
    """`command`'s envelope, signed by central's key."""
    return signing.sign_document(signing_key, {
        "command_id": command.command_id, "device_id": command.device_id, "action": command.action,
        "issued_at": command.issued_at, "expires_at": command.expires_at,
        "key_id": signing.key_id(signing_key.public_key()).hex()}, context=wire.COMMAND_CONTEXT)


class Commands:
    """Commands to kiosks, in central's database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- central's staff ----------------------------------------------------------------------------------

    def cohort(self, *, device_ids: Sequence[str] = (), governorate: str | None = None,
               everyone: bool = False) -> list[str]:
        """The enrolled, unrevoked kiosks named: by id (each must be one), in a governorate, or all;
        CohortError when one named is not, or none is found."""
        with self._database.reading() as session:
            if device_ids:
                rows = {d.device_id: d for d in session.scalars(select(Device).where(
                    Device.device_id.in_(list(device_ids))))}
                unknown = [d for d in device_ids if d not in rows]
                if unknown:
                    raise CohortError("no kiosk %s is enrolled" % ", ".join(unknown))
                revoked = [d for d in device_ids if rows[d].revoked_at is not None]
                if revoked:
                    raise CohortError("kiosk %s is revoked" % ", ".join(revoked))
                return list(dict.fromkeys(device_ids))
            query = select(Device.device_id).where(Device.revoked_at.is_(None)).order_by(Device.device_id)
            if governorate is not None:
                query = query.where(Device.governorate == governorate)
            elif not everyone:
                raise CohortError("name the kiosks: --device ID, --governorate G or --all")
            found = list(session.scalars(query))
        if not found:
            raise CohortError("no enrolled kiosk %s" % ("in %s" % governorate if governorate else "at all"))
        return found

    def send(self, action: CommandAction, device_ids: Sequence[str], *, lifetime: timedelta = DEFAULT_LIFETIME,
             issued_by: str | None = None) -> list[CommandRow]:
        """One command of `action` to each of `device_ids` (see `cohort`), valid for `lifetime`; each
        waits for its kiosk's next heartbeat."""
        if not timedelta(minutes=1) <= lifetime <= LONGEST_LIFETIME:
            raise ValueError("a command lives from one minute to seven days")
        now = utc_now()
        issued_at, expires_at = iso_utc(now), iso_utc(now + lifetime)
        batch_id = secrets.token_hex(8)
        rows = []
        with self._database.writing() as session:
            for device_id in device_ids:
                command = KioskCommand(command_id=secrets.token_hex(16), batch_id=batch_id, device_id=device_id,
                                       action=CommandAction(action).value, issued_at=issued_at,
                                       expires_at=expires_at, issued_by=issued_by, state="sent")
                session.add(command)
                _event(session, command.command_id, device_id, issued_at, "sent", command.action)
                rows.append(_row(command, issued_at))
        log.info("commands.sent action=%s batch=%s devices=%d expires_at=%s", CommandAction(action).value, batch_id,
                 len(rows), expires_at)
        return rows

    def list(self, *, device_id: str | None = None, batch_id: str | None = None, limit: int = 200) -> list[CommandRow]:
        """The newest commands first (of one kiosk, or one batch)."""
        now = iso_utc(utc_now())
        query = select(KioskCommand).order_by(KioskCommand.issued_at.desc(), KioskCommand.command_id).limit(limit)
        if device_id is not None:
            query = query.where(KioskCommand.device_id == device_id)
        if batch_id is not None:
            query = query.where(KioskCommand.batch_id == batch_id)
        with self._database.reading() as session:
            return [_row(command, now) for command in session.scalars(query)]

    def events(self, command_id: str) -> list[tuple[str, str, str, str]]:
        """(at, device, event, detail) of `command_id`, oldest first."""
        with self._database.reading() as session:
            return [(e.at, e.device_id, e.event, e.detail) for e in session.scalars(
                select(KioskCommandEvent).where(KioskCommandEvent.command_id == command_id)
                .order_by(KioskCommandEvent.id))]

    def logs(self, command_id: str) -> CommandLogs | None:
        with self._database.reading() as session:
            kept = session.get(KioskCommandLogs, command_id)
            command = session.get(KioskCommand, command_id)
            if kept is None or command is None:
                return None
            return CommandLogs(command_id, command.device_id, kept.received_at,
                               tuple(kept.lines.split("\n")) if kept.lines else (), kept.dropped)

    # -- the kiosks' side ---------------------------------------------------------------------------------

    def for_heartbeat(self, device_id: str, signing_key: Ed25519PrivateKey) -> list[dict]:
        """The envelopes waiting for `device_id`, oldest first, marked delivered: the commands sent and not
        expired, and those delivered `REDELIVER_AFTER_S` ago without a result."""
        now = utc_now()
        at = iso_utc(now)
        again_before = iso_utc(now - timedelta(seconds=REDELIVER_AFTER_S))
        due = (KioskCommand.device_id == device_id, KioskCommand.expires_at > at,
               or_(KioskCommand.state == "sent",
                   (KioskCommand.state == "delivered") & (KioskCommand.delivered_at <= again_before)))
        # Nearly every heartbeat finds nothing: looked for first without central's write lock.
        with self._database.reading() as session:
            if session.scalar(select(KioskCommand.command_id).where(*due).limit(1)) is None:
                return []
        envelopes = []
        with self._database.writing() as session:
            waiting = session.scalars(
                select(KioskCommand).where(*due)
                .order_by(KioskCommand.issued_at, KioskCommand.command_id).limit(PER_ANSWER))
            for command in waiting:
                if command.envelope is None:
                    command.envelope = json.dumps(envelope(command, signing_key), sort_keys=True,
                                                  separators=(",", ":"))
                _event(session, command.command_id, device_id, at,
                       "delivered" if command.state == "sent" else "delivered_again")
                command.state, command.delivered_at = "delivered", at
                envelopes.append(json.loads(command.envelope))
        if envelopes:
            log.info("commands.delivered device=%s count=%d", device_id, len(envelopes))
        return envelopes

    def record_result(self, device_id: str, command_id: str, body: ResultBody) -> Answer:
        """A kiosk's result for a command. Only the first result from the kiosk the command was for sets
        its state, and a replay refused never does; every result is one event."""
        if body.outcome == CommandOutcome.REFUSED.value and body.reason is None:
            return rejected("reason_required")
        at = iso_utc(utc_now())
        detail = "%s:%s" % (body.outcome, body.reason) if body.reason else body.outcome
        with self._database.writing() as session:
            command = session.get(KioskCommand, command_id)
            if command is None:
                log.warning("commands.result_unknown device=%s command=%s", device_id, command_id)
                return rejected(wire.UNKNOWN_COMMAND, http_status=404)
            if command.device_id != device_id:
                _event(session, command_id, device_id, at, "reported_by_another", detail)
                log.warning("commands.result_from_another device=%s command=%s for=%s outcome=%s reason=%s",
                            device_id, command_id, command.device_id, body.outcome, body.reason or "-")
            elif command.state in FINAL or body.reason == wire.REPLAYED:
                _event(session, command_id, device_id, at, "reported_again", detail)
                log.info("commands.result_again device=%s command=%s outcome=%s reason=%s", device_id, command_id,
                         body.outcome, body.reason or "-")
            else:
                command.state, command.reason, command.finished_at = body.outcome, body.reason, at
                command.delivered_at = command.delivered_at or at
                _event(session, command_id, device_id, at, body.outcome, body.reason or "")
                log.info("commands.result device=%s command=%s action=%s outcome=%s reason=%s", device_id,
                         command_id, command.action, body.outcome, body.reason or "-")
        return Answer(200, {"status": wire.COMMAND_RECORDED, "command_id": command_id})

    def store_logs(self, device_id: str, command_id: str, body: LogsBody) -> Answer:
        """The lines of this kiosk's collect-logs command, checked line by line (all or none), kept once."""
        if not all(wire.is_safe_log_line(line) for line in body.lines) \
                or sum(len(line) + 1 for line in body.lines) > wire.LOG_BYTES_MAX:
            log.warning("commands.logs_refused device=%s command=%s reason=unsafe_log_line", device_id, command_id)
            return rejected("unsafe_log_line")
        at = iso_utc(utc_now())
        with self._database.writing() as session:
            command = session.get(KioskCommand, command_id)
            if command is None or command.device_id != device_id \
                    or command.action != CommandAction.COLLECT_LOGS.value:
                log.warning("commands.logs_unknown device=%s command=%s", device_id, command_id)
                return rejected(wire.UNKNOWN_COMMAND, http_status=404)
            if session.get(KioskCommandLogs, command_id) is None:
                session.add(KioskCommandLogs(command_id=command_id, received_at=at, lines="\n".join(body.lines),
                                             dropped=body.dropped))
                _event(session, command_id, device_id, at, "logs", "lines:%d:dropped:%d" % (len(body.lines),
                                                                                         body.dropped))
                log.info("commands.logs_kept device=%s command=%s lines=%d dropped=%d", device_id, command_id,
                         len(body.lines), body.dropped)
        return Answer(200, {"status": wire.COMMAND_RECORDED, "command_id": command_id, "lines": len(body.lines)})


def parse_lifetime(minutes: float) -> timedelta:
    """`--expires-minutes`: ValueError outside one minute to seven days."""
    lifetime = timedelta(minutes=minutes)
    if not timedelta(minutes=1) <= lifetime <= LONGEST_LIFETIME:
        raise ValueError("--expires-minutes must be from 1 to %d" % (LONGEST_LIFETIME.total_seconds() // 60))
    return lifetime


# -- `kiosk-central command ...` ---------------------------------------------------------------------------

COMMAND_HELP = """\
Send a command to kiosks, see what became of it, read the logs a kiosk sent.

  send ACTION (--device ID [--device ID ...] | --governorate G | --all) [--expires-minutes 60]
      ACTION: out-of-service, in-service, reboot, resync, selftest, collect-logs. One command a
      kiosk (enrolled, not revoked); each rides in the answer to the kiosk's next heartbeat, signed by
      central's key, and is carried out between two citizens, until it expires. Prints one line a
      kiosk: the command's id, the kiosk, the action, when it expires.
  list [--device ID] [--batch B]
      the newest commands first: id, kiosk, action, state (sent, delivered, done, refused (reason),
      expired), when issued, expires, delivered, finished.
  logs COMMAND_ID
      the log lines a kiosk sent for a collect-logs command.

Exit 2: an unknown action, a kiosk that is not enrolled or is revoked, no kiosk found, a lifetime
out of range, or no such command (logs)."""


def _open(db_url: str) -> tuple[Database, Commands]:
    from central.seeding import prepare_database

    database = Database(db_url)
    prepare_database(database)
    return database, Commands(database)


def _cli_send(args: argparse.Namespace) -> int:
    try:
        lifetime = parse_lifetime(args.expires_minutes)
    except ValueError as exc:
        print("kiosk-central command send: %s" % exc, file=sys.stderr)
        return 2
    database, commands = _open(args.db)
    try:
        targets = commands.cohort(device_ids=args.device or (), governorate=args.governorate, everyone=args.all)
        rows = commands.send(CommandAction(args.action), targets, lifetime=lifetime)
    except CohortError as exc:
        print("kiosk-central command send: %s" % exc, file=sys.stderr)
        return 2
    finally:
        database.dispose()
    for row in rows:
        print("%s\t%s\t%s\texpires %s" % (row.command_id, row.device_id, row.action, row.expires_at))
    print("%d command%s sent (batch %s); each goes with its kiosk's next heartbeat"
          % (len(rows), "" if len(rows) == 1 else "s", rows[0].batch_id))
    return 0


def _cli_list(args: argparse.Namespace) -> int:
    database, commands = _open(args.db)
    try:
        rows = commands.list(device_id=args.device, batch_id=args.batch)
    finally:
        database.dispose()
    for row in rows:
        print(row.line())
    return 0


def _cli_logs(args: argparse.Namespace) -> int:
    database, commands = _open(args.db)
    try:
        kept = commands.logs(args.command_id)
    finally:
        database.dispose()
    if kept is None:
        print("kiosk-central command logs: no logs for command %s" % args.command_id, file=sys.stderr)
        return 2
    print("# %s from %s, received %s: %d lines (%d left out by the kiosk's check)"
          % (kept.command_id, kept.device_id, kept.received_at, len(kept.lines), kept.dropped))
    for line in kept.lines:
        print(line)
    return 0


def add_parser(commands: argparse._SubParsersAction,
               with_db: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    """`command` and its actions, under `kiosk-central` (`with_db` adds its --db option)."""
    command = commands.add_parser("command", help="commands to kiosks: send, list, logs", description=COMMAND_HELP,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = command.add_subparsers(dest="action_name", required=True)
    send = with_db(actions.add_parser("send", help="send a command to one kiosk, a governorate's, or all"))
    send.add_argument("action", choices=[a.value for a in CommandAction])
    target = send.add_mutually_exclusive_group(required=True)
    target.add_argument("--device", action="append", metavar="ID", help="a kiosk's id (again for more)")
    target.add_argument("--governorate", metavar="G", help="every kiosk enrolled in governorate G")
    target.add_argument("--all", action="store_true", help="every kiosk enrolled and not revoked")
    send.add_argument("--expires-minutes", type=float, default=DEFAULT_LIFETIME.total_seconds() / 60,
                      metavar="M", help="how long the command may be carried out (default %(default)g)")
    send.set_defaults(run=_cli_send)
    listing = with_db(actions.add_parser("list", help="the newest commands and their state"))
    listing.add_argument("--device", metavar="ID")
    listing.add_argument("--batch", metavar="B")
    listing.set_defaults(run=_cli_list)
    logs = with_db(actions.add_parser("logs", help="the log lines a kiosk sent for a collect-logs command"))
    logs.add_argument("command_id")
    logs.set_defaults(run=_cli_logs)
