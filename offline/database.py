"""The kiosk's state database: one SQLite file that holds the outbox and the transaction journal.

One file, so that a message and the transaction it belongs to live in one
store and can be written in one transaction, never in two half-copies. It
is opened for a machine with no UPS: write-ahead log, every commit synced
to the disk (`synchronous=FULL`), the file and its `-wal`/`-shm` readable
by the kiosk's user alone (0600) in a directory of its own (0700: made so, or
made so when the kiosk's user owns it). One connection, shared by the kiosk's threads under a
lock; `transaction()` holds the lock across several statements that must
all be written or none.

What is deleted is overwritten (`secure_delete`), and the file gives freed
pages back to the disk (`auto_vacuum=INCREMENTAL`, `reclaim_space()`).

At every start the file is checked (`PRAGMA quick_check`). A file that is
not a database, or is damaged (a torn write, a bad sector), is moved aside
with its side files (`<name>.corrupt-<time>`), reported in the log and to
`alert`, and a fresh one is started; every row that can still be read from
the old file is copied into it (`offline.salvage`), with the counts
reported. The old file stays where it was moved, for a technician.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kiosk.errors import QueueError

log = logging.getLogger(__name__)

MEMORY = ":memory:"
_FILE_MODE = 0o600
_DIR_MODE = 0o700
_SIDE_FILES = ("-wal", "-shm", "-journal")
CORRUPT_ALERT = "state.corrupt_moved_aside"


@dataclass(frozen=True)
class Recovery:
    """What happened to a damaged database file at start."""

    moved_to: Path                       # where the damaged file now is
    problem: str                         # SQLite's words for the damage (no data)
    copied: dict[str, int]               # table -> rows copied into the fresh file
    unreadable: dict[str, int]           # table -> rows (or row ids) that could not be read


class StateDatabase:
    def __init__(self, path: Path | str, *, alert: Callable[[str], None] | None = None,
                 check: bool = True) -> None:
        """Open (or create) the database at `path`; QueueError when it cannot be opened. `check`
        runs the integrity check and moves a damaged file aside (a technician's tool that only
        reads leaves it off)."""
        self.path = Path(path)
        self._memory = str(path) == MEMORY
        self._lock = threading.RLock()
        self._depth = 0                  # transactions open on the holder of the lock
        self.recovery: Recovery | None = None
        try:
            if not self._memory:
                make_private_dir(self.path.parent)
                _keep_private(self.path.parent)
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, _FILE_MODE))
                os.chmod(self.path, _FILE_MODE)
            problem = self._connect(check=check)
            if problem is not None:
                self._start_afresh(problem, alert)
            self._keep_side_files_private()
        except (sqlite3.Error, OSError) as exc:
            raise QueueError("cannot open the state database at %s: %s" % (path, exc)) from exc
        log.info("state.opened path=%s", path)

    def __repr__(self) -> str:
        return "StateDatabase(%s)" % self.path

    @property
    def in_memory(self) -> bool:
        return self._memory

    def _connect(self, *, check: bool) -> str | None:
        """Connect and set the file up; SQLite's words for the damage when the file is damaged."""
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            # auto_vacuum first: it is fixed when the first table is made, and WAL mode writes the header.
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA secure_delete=ON")
            if check:
                verdict = [row[0] for row in self._db.execute("PRAGMA quick_check(5)").fetchall()]
                if verdict != ["ok"]:
                    return "; ".join(str(v) for v in verdict)[:300]
            if check and self._db.execute("PRAGMA auto_vacuum").fetchone()[0] == 0 and self._has_tables():
                self._db.execute("VACUUM")      # a file made before auto_vacuum: converted once
        except sqlite3.DatabaseError as exc:     # "file is not a database", "database disk image is malformed"
            if not check or self._memory:
                raise
            return str(exc)[:300]
        return None

    def _has_tables(self) -> bool:
        return self._db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] > 0

    def _start_afresh(self, problem: str, alert: Callable[[str], None] | None) -> None:
        """Move the damaged file aside, start a fresh one, copy over what can be read."""
        from offline.salvage import salvage            # only ever needed on this rare path

        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name("%s.corrupt-%s" % (self.path.name, stamp))
        for suffix in ("",) + _SIDE_FILES:
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.path.with_name(self.path.name + suffix), aside.with_name(aside.name + suffix))
        log.critical("state.corrupt path=%s moved_to=%s problem=%s", self.path, aside.name, problem)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, _FILE_MODE))
        again = self._connect(check=True)
        if again is not None:
            raise QueueError("a fresh state database at %s is damaged too: %s" % (self.path, again))
        copied, unreadable = salvage(aside, self)
        self.recovery = Recovery(aside, problem, copied, unreadable)
        log.critical("state.salvaged path=%s from=%s copied=%s unreadable=%s", self.path, aside.name,
                     _counts(copied), _counts(unreadable))
        if alert is not None:
            alert(CORRUPT_ALERT)

    def run(self, sql: str, parameters: tuple | dict = (), *,
            error: type[QueueError] = QueueError) -> list[tuple]:
        """One statement and its rows; a full disk, a broken or closed file is `error`."""
        with self._lock:
            try:
                return self._db.execute(sql, parameters).fetchall()
            except sqlite3.Error as exc:
                raise error("the state database cannot %s: %s" % (sql.split()[0].lower(), exc)) from exc

    def run_many(self, sql: str, rows: list[tuple], *, error: type[QueueError] = QueueError) -> None:
        """One statement for each of `rows` (inside a transaction when the caller needs all or none)."""
        with self._lock:
            try:
                self._db.executemany(sql, rows)
            except sqlite3.Error as exc:
                raise error("the state database cannot %s: %s" % (sql.split()[0].lower(), exc)) from exc

    @contextlib.contextmanager
    def transaction(self, *, error: type[QueueError] = QueueError) -> Iterator[StateDatabase]:
        """Statements run inside are written together or not at all; the lock is held throughout,
        so no other thread's statement falls in between. Nested, it joins the outer transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self.run("BEGIN IMMEDIATE", error=error)
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self._depth = 0
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise error("the state database cannot commit: %s" % exc) from exc

    def reclaim_space(self) -> int:
        """Give the file's free pages back to the disk and empty the write-ahead log into the file
        (its length back to zero); the pages given back. QueueError when the file cannot."""
        with self._lock:
            if self._depth:
                return 0                     # never inside a transaction: the next call does it
            try:
                free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
                if free:
                    # executescript steps the pragma to its end (execute() frees one page only).
                    self._db.executescript("PRAGMA incremental_vacuum;")
                if not self._memory:
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                return free - self._db.execute("PRAGMA freelist_count").fetchone()[0]
            except sqlite3.Error as exc:
                raise QueueError("the state database cannot reclaim its space: %s" % exc) from exc

    def size_bytes(self) -> tuple[int, int]:
        """(the file, its write-ahead log) in bytes; (0, 0) in memory."""
        if self._memory:
            return 0, 0
        sizes = []
        for name in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                sizes.append(name.stat().st_size)
            except FileNotFoundError:
                sizes.append(0)
        return sizes[0], sizes[1]

    def close(self) -> None:
        """Close the file; what was committed stays. Using it afterwards is a QueueError."""
        with self._lock:
            self._db.close()
        log.info("state.closed path=%s", self.path)

    def _keep_side_files_private(self) -> None:
        """SQLite gives the side files it creates the database file's mode; side files left by an
        older, laxer kiosk are made private too."""
        if self._memory:
            return
        for suffix in _SIDE_FILES:
            side = self.path.with_name(self.path.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                if side.stat().st_mode & 0o777 != _FILE_MODE:
                    os.chmod(side, _FILE_MODE)


def _counts(counts: dict[str, int]) -> str:
    return ",".join("%s:%d" % item for item in sorted(counts.items())) or "none"


def _keep_private(directory: Path) -> None:
    """The state's own directory, when the kiosk's user owns it, is the kiosk's alone (0700), however
    it was made (a package, a technician); one owned by someone else is left as it is."""
    info = directory.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        try:
            os.chmod(directory, _DIR_MODE)
        except OSError:
            return
        log.warning("state.directory_made_private path=%s was=%03o", directory, info.st_mode & 0o777)


def make_private_dir(directory: Path) -> None:
    """Create `directory` and any missing parent as 0700; one that already exists is left as it is."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for created in reversed(missing):
        with contextlib.suppress(FileExistsError):       # another process made it meanwhile
            created.mkdir(mode=_DIR_MODE)
        os.chmod(created, _DIR_MODE)          # whatever the umask
