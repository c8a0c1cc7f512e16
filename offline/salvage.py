"""What can still be read from a damaged state database, copied into a fresh one.

Used once, at start, when the state database's file failed its integrity
check and was moved aside (`offline.database`). Every table the damaged
file still names is made again in the fresh file with the same definition,
and its rows are copied in row-id order, a page of rows at a time. Where a
page cannot be read, the copy steps past it one row id at a time, counting
the row ids it could not read (an upper bound on the rows lost), and gives
the table up after a long run of them (a damaged inner page hides
everything under it). Rows
are copied as they are: sealed values stay sealed (the device key is a file
of its own, untouched). Nothing here logs a value, only names and counts.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offline.database import StateDatabase

log = logging.getLogger(__name__)

PAGE_ROWS = 200
GIVE_UP_AFTER = 10_000        # consecutive unreadable row ids before a table is given up
_LOWEST_ROWID = -(2 ** 63)


def salvage(damaged: Path, into: StateDatabase) -> tuple[dict[str, int], dict[str, int]]:
    """Copy every readable row of `damaged` into `into`; (rows copied, row ids unreadable) by table.
    A file with no readable schema at all copies nothing."""
    copied: dict[str, int] = {}
    unreadable: dict[str, int] = {}
    try:
        source = sqlite3.connect(str(damaged), isolation_level=None)
    except sqlite3.Error:
        return copied, unreadable
    try:
        try:
            tables = source.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                                    "AND name NOT LIKE 'sqlite_%' ORDER BY rowid").fetchall()
        except sqlite3.DatabaseError as exc:
            log.error("salvage.no_schema file=%s problem=%s", damaged.name, exc)
            return copied, unreadable
        for name, definition in tables:
            try:
                columns = [row[1] for row in source.execute("PRAGMA table_info(%s)" % _quoted(name)).fetchall()]
                into.run(definition.replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1))
            except Exception as exc:        # unreadable here, or refused by the fresh file (a QueueError)
                log.error("salvage.table_skipped table=%s problem=%s", name, type(exc).__name__)
                unreadable[name] = unreadable.get(name, 0) + 1
                continue
            copied[name], unreadable[name] = _copy_table(source, into, name, columns)
    finally:
        with contextlib.suppress(sqlite3.Error):
            source.close()
    return copied, {name: count for name, count in unreadable.items() if count}


def _copy_table(source: sqlite3.Connection, into: StateDatabase, name: str,
                columns: list[str]) -> tuple[int, int]:
    listed = ", ".join(_quoted(c) for c in columns)
    select = "SELECT rowid, %s FROM %s WHERE rowid > ? ORDER BY rowid LIMIT %d" % (listed, _quoted(name), PAGE_ROWS)
    insert = "INSERT OR IGNORE INTO %s (rowid, %s) VALUES (%s)" % (
        _quoted(name), listed, ", ".join("?" * (len(columns) + 1)))
    copied = unreadable = misses = 0
    after = _LOWEST_ROWID
    while misses < GIVE_UP_AFTER:
        try:
            rows = source.execute(select, (after,)).fetchall()
        except sqlite3.DatabaseError:
            after += 1                      # a damaged page: step past it, a row id at a time
            misses += 1
            unreadable += 1
            continue
        if not rows:
            break
        misses = 0
        try:
            with into.transaction():
                into.run_many(insert, rows)
        except Exception as exc:           # the fresh file cannot take them: reported, never silent
            log.error("salvage.rows_not_written table=%s rows=%d problem=%s", name, len(rows), type(exc).__name__)
            unreadable += len(rows)
        else:
            copied += len(rows)
        after = rows[-1][0]
    if misses >= GIVE_UP_AFTER:
        log.error("salvage.table_given_up table=%s after_rowid=%d", name, after)
    return copied, unreadable


def _quoted(name: str) -> str:
    return '"%s"' % name.replace('"', '""')
