"""The state database: private on the disk, synced at every commit, all or nothing in a transaction."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kiosk.errors import JournalError, QueueError
from offline.database import StateDatabase


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_file_and_its_side_files_are_the_kiosks_alone(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        database = StateDatabase(tmp_path / "var" / "kiosk" / "state.sqlite3")
        database.run("CREATE TABLE t (x)")
        database.run("INSERT INTO t VALUES (1)")
    finally:
        os.umask(old_umask)
    directory = tmp_path / "var" / "kiosk"
    assert (mode(directory), mode(directory.parent)) == (0o700, 0o700)
    files = sorted(p.name for p in directory.iterdir())
    assert files == ["state.sqlite3", "state.sqlite3-shm", "state.sqlite3-wal"]
    assert {name: mode(directory / name) for name in files} == dict.fromkeys(files, 0o600)
    assert database.run("PRAGMA journal_mode") == [("wal",)]
    assert database.run("PRAGMA synchronous") == [(2,)]                 # FULL
    database.close()


def test_side_files_left_readable_by_others_are_made_private(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    StateDatabase(path).close()
    left = tmp_path / "state.sqlite3-wal"
    left.write_bytes(b"x" * 64)                     # not empty: SQLite itself would fix an empty one
    os.chmod(left, 0o644)
    database = StateDatabase(path)
    assert mode(left) == 0o600
    database.close()


def test_a_transaction_writes_all_or_nothing(tmp_path: Path) -> None:
    database = StateDatabase(tmp_path / "state.sqlite3")
    database.run("CREATE TABLE t (x)")
    with pytest.raises(RuntimeError):
        with database.transaction():
            database.run("INSERT INTO t VALUES (1)")
            with database.transaction():                                # joins the outer one
                database.run("INSERT INTO t VALUES (2)")
            raise RuntimeError("power cut")
    assert database.run("SELECT x FROM t") == []
    with database.transaction():
        database.run("INSERT INTO t VALUES (1)")
        with database.transaction():
            database.run("INSERT INTO t VALUES (2)")
    database.close()
    reopened = StateDatabase(tmp_path / "state.sqlite3")
    assert reopened.run("SELECT x FROM t ORDER BY x") == [(1,), (2,)]
    reopened.close()


def test_errors_are_queue_errors_or_the_callers_kind(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(QueueError):
        StateDatabase(blocker / "state.sqlite3")                        # its directory is a file
    database = StateDatabase(tmp_path / "state.sqlite3")
    with pytest.raises(QueueError):
        database.run("INSERT INTO missing VALUES (1)")
    database.close()
    with pytest.raises(JournalError):
        database.run("SELECT 1", error=JournalError)
    with pytest.raises(JournalError):
        with database.transaction(error=JournalError):
            pass


def test_what_is_deleted_is_overwritten_and_freed_pages_go_back_to_the_disk(tmp_path: Path) -> None:
    database = StateDatabase(tmp_path / "state.sqlite3")
    assert database.run("PRAGMA secure_delete") == [(1,)]
    assert database.run("PRAGMA auto_vacuum") == [(2,)]                 # INCREMENTAL
    database.run("CREATE TABLE t (x BLOB)")
    with database.transaction():
        for _ in range(500):
            database.run("INSERT INTO t VALUES (?)", (b"secret" * 200,))
    database.reclaim_space()
    full = database.size_bytes()[0]
    database.run("DELETE FROM t")
    assert database.reclaim_space() > 0
    assert database.size_bytes() == (database.size_bytes()[0], 0)       # the log emptied into the file
    assert database.size_bytes()[0] < full / 10
    assert b"secret" not in (tmp_path / "state.sqlite3").read_bytes()
    database.close()


def test_a_file_from_before_auto_vacuum_is_converted_once(tmp_path: Path) -> None:
    import sqlite3
    old = sqlite3.connect(tmp_path / "state.sqlite3")
    old.execute("CREATE TABLE t (x)")
    old.execute("INSERT INTO t VALUES (1)")
    old.commit()
    old.close()
    database = StateDatabase(tmp_path / "state.sqlite3")
    assert database.run("PRAGMA auto_vacuum") == [(2,)] and database.run("SELECT x FROM t") == [(1,)]
    database.close()


def damage(path: Path, *, at: float = 0.5, length: int = 4096) -> None:
    """Overwrite part of a closed database file, as a bad sector or a torn write would."""
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    data[start:start + length] = b"\xa5" * min(length, len(data) - start)
    path.write_bytes(bytes(data))


def test_a_damaged_file_is_moved_aside_reported_and_what_can_be_read_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    database = StateDatabase(path)
    database.run("CREATE TABLE t (id INTEGER PRIMARY KEY, x BLOB)")
    with database.transaction():
        for i in range(2000):
            database.run("INSERT INTO t (id, x) VALUES (?, ?)", (i, b"%04d" % i * 100))
    database.run("PRAGMA wal_checkpoint(TRUNCATE)")
    database.close()
    damage(path, at=0.5)
    alerts: list[str] = []
    reopened = StateDatabase(path, alert=alerts.append)
    recovery = reopened.recovery
    assert alerts == ["state.corrupt_moved_aside"] and recovery is not None
    assert recovery.moved_to.exists() and recovery.moved_to.name.startswith("state.sqlite3.corrupt-")
    copied = reopened.run("SELECT count(*) FROM t")[0][0]
    assert copied == recovery.copied["t"] and 1000 < copied < 2000       # most rows read back, the damaged ones not
    assert recovery.unreadable["t"] > 0
    assert reopened.run("PRAGMA quick_check") == [("ok",)]
    assert all(x == b"%04d" % i * 100 for i, x in reopened.run("SELECT id, x FROM t"))
    assert mode(path) == 0o600
    reopened.close()


def test_a_file_that_is_not_a_database_is_moved_aside_and_a_fresh_one_started(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not an SQLite file at all" * 100)
    alerts: list[str] = []
    database = StateDatabase(path, alert=alerts.append)
    assert alerts == ["state.corrupt_moved_aside"] and database.recovery.copied == {}
    database.run("CREATE TABLE t (x)")
    assert database.recovery.moved_to.read_bytes().startswith(b"this is not")
    database.close()


def test_a_state_directory_left_open_to_others_is_made_the_kiosks_alone(tmp_path: Path) -> None:
    directory = tmp_path / "kiosk"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    StateDatabase(directory / "state.sqlite3").close()
    assert mode(directory) == 0o700
