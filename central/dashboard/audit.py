"""The staff audit trail: every sign-in and refused sign-in, every form a member of staff sent (done or
refused, and why), and the accounts' changes made at the console. Entries are only ever added; the
dashboard shows them newest first. An entry names the account (None when no account had the name
typed: a mistyped password in the name field is not kept), what was done, to what, and how it ended;
never a password, a code or a token."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from central.db import Database, iso_utc, utc_now
from central.models import StaffAuditEntry

CONSOLE = "(console)"       # `kiosk-central staff ...` at central's own console


class Outcome(enum.Enum):
    OK = "ok"
    FAILED = "failed"         # a wrong password or code
    REFUSED = "refused"       # not allowed: role, form token, lock, expired session


@dataclass(frozen=True)
class AuditRow:
    at: str
    username: str | None
    action: str
    target: str | None
    outcome: str
    detail: str


def add_entry(session: Session, at: datetime, username: str | None, action: str, outcome: Outcome,
              target: str | None = None, detail: str = "") -> None:
    """One entry, in the caller's transaction."""
    session.add(StaffAuditEntry(at=iso_utc(at), username=username, action=action[:64],
                                target=target[:128] if target else None, outcome=outcome.value, detail=detail[:200]))


class StaffAudit:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._database = database
        self._clock = clock

    def record(self, username: str | None, action: str, outcome: Outcome, target: str | None = None,
               detail: str = "") -> None:
        with self._database.writing() as session:
            add_entry(session, self._clock(), username, action, outcome, target, detail)

    def recent(self, *, limit: int = 200, target: str | None = None) -> list[AuditRow]:
        """The newest `limit` entries (about `target` only, when given), newest first."""
        query = select(StaffAuditEntry).order_by(StaffAuditEntry.id.desc()).limit(limit)
        if target is not None:
            query = query.where(StaffAuditEntry.target == target)
        with self._database.reading() as session:
            return [AuditRow(e.at, e.username, e.action, e.target, e.outcome, e.detail)
                    for e in session.scalars(query)]
