"""Signed-in browsers, kept server-side: the cookie holds a random token (256 bits), central keeps only
its SHA-256, with the account, the form token (CSRF) its forms carry and its language.

A session begins when the password is accepted, good only for the second factor, for SECOND_FACTOR_WAIT;
the code accepted, it is replaced by a new one (a new token: whatever was known of the first is worth
nothing) that opens the dashboard until it has been idle for IDLE or has lasted ABSOLUTE. A disabled
account's sessions end at once; its role is read afresh on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from central.dashboard.roles import Role
from central.db import Database, iso_utc, utc_now
from central.models import StaffAccount, StaffSession

IDLE = timedelta(minutes=15)
ABSOLUTE = timedelta(hours=8)
SECOND_FACTOR_WAIT = timedelta(minutes=5)
TOKEN_BYTES = 32
LANGUAGES = ("ar", "en")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True, repr=False)
class Staff:
    """The member of staff behind a request, as their session says."""

    username: str
    role: Role
    language: str
    csrf_token: str
    signed_in: bool            # False: the password only, the second factor still awaited

    def __repr__(self) -> str:
        return "Staff(username=%s, role=%s, signed_in=%s)" % (self.username, self.role.value, self.signed_in)


class StaffSessions:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._database = database
        self._clock = clock

    def _new(self, session: Session, username: str, language: str, *, signed_in: bool, now: datetime) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session.add(StaffSession(token_digest=_digest(token), username=username,
                                 second_factor_at=iso_utc(now) if signed_in else None,
                                 csrf_token=secrets.token_urlsafe(TOKEN_BYTES),
                                 language=language if language in LANGUAGES else LANGUAGES[0],
                                 created_at=iso_utc(now), last_seen_at=iso_utc(now)))
        return token

    def begin(self, username: str, language: str) -> str:
        """A session awaiting the second factor, after the password; its token (for the cookie)."""
        with self._database.writing() as session:
            return self._new(session, username, language, signed_in=False, now=self._clock())

    def complete(self, token: str) -> str | None:
        """The second factor accepted: the waiting session replaced by a signed-in one; its token, or None
        when the waiting session is gone."""
        now = self._clock()
        with self._database.writing() as session:
            waiting = session.get(StaffSession, _digest(token))
            if waiting is None or waiting.second_factor_at is not None:
                return None
            session.delete(waiting)
            return self._new(session, waiting.username, waiting.language, signed_in=True, now=now)

    def find(self, token: str | None) -> Staff | None:
        """The session of `token` while it is valid (its last use noted), else None (an expired one ends)."""
        if not token or len(token) > 100:
            return None
        now = self._clock()
        with self._database.writing() as session:
            row = session.get(StaffSession, _digest(token))
            if row is None:
                return None
            account = session.get(StaffAccount, row.username)
            if row.second_factor_at is None:
                expired = row.created_at < iso_utc(now - SECOND_FACTOR_WAIT)
            else:
                expired = row.last_seen_at < iso_utc(now - IDLE) or row.created_at < iso_utc(now - ABSOLUTE)
            if expired or account is None or account.disabled_at is not None:
                session.delete(row)
                return None
            row.last_seen_at = iso_utc(now)
            return Staff(row.username, Role(account.role), row.language, row.csrf_token,
                         row.second_factor_at is not None)

    def set_language(self, token: str, language: str) -> None:
        if language not in LANGUAGES:
            return
        with self._database.writing() as session:
            row = session.get(StaffSession, _digest(token))
            if row is not None:
                row.language = language

    def end(self, token: str) -> None:
        with self._database.writing() as session:
            session.execute(delete(StaffSession).where(StaffSession.token_digest == _digest(token)))

    def end_expired(self) -> int:
        """Delete every session past its time (those never used again are otherwise kept); how many."""
        now = self._clock()
        with self._database.writing() as session:
            result = session.execute(delete(StaffSession).where(
                (StaffSession.created_at < iso_utc(now - ABSOLUTE))
                | (StaffSession.last_seen_at < iso_utc(now - IDLE))))
            return result.rowcount or 0
