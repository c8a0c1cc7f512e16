"""The central database: one engine, its sessions, and the single writer.

Any SQLAlchemy URL works; SQLite is the default. Timestamps are stored as
ISO 8601 UTC text (``2025-01-31T09:15:00Z``), exactly as the API shows them,
so every database keeps them the same way.

Writes go through :meth:`Database.writing`, which holds one process-wide lock
for the whole read-check-write transaction: the idempotency checks (a request
id, a payment used once) are then race-free without relying on
each database's isolation rules. The reference service runs as one process.
On PostgreSQL the transaction also holds an advisory lock, so that writers in
other processes (the `kiosk-central` commands, a second central) take their
turn as they do on SQLite, where the database file is locked for each write.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

_WRITER_LOCK_KEY = 0x6B696F736B01   # pg_advisory_xact_lock's key for central's writers (central/migrate.py: ...00)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso_utc(moment: datetime) -> str:
    """``2025-01-31T09:15:00Z``: how every timestamp is stored and shown."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sqlite_path(db_url: str) -> Path | None:
    """The file of a SQLite database URL; None for other databases and in-memory SQLite."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _make_engine(db_url: str) -> Engine:
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, hide_parameters=True, pool_pre_ping=True)
    connect_args = {"check_same_thread": False, "timeout": 15}
    if sqlite_path(db_url) is None:
        # One shared connection, or every session would see its own empty database.
        engine = create_engine(url, hide_parameters=True, connect_args=connect_args, poolclass=StaticPool)
    else:
        engine = create_engine(url, hide_parameters=True, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _enable_foreign_keys(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


class Database:
    """The engine, a session factory, and the lock every write holds.

    ``hide_parameters`` keeps SQL parameters (personal data) out of every
    database error message.
    """

    def __init__(self, db_url: str) -> None:
        self.url = db_url
        self.engine = _make_engine(db_url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.Lock()

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextlib.contextmanager
    def writing(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error."""
        with self._write_lock, self._sessions() as session, session.begin():
            if self.engine.dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITER_LOCK_KEY})
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
