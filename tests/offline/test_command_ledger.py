"""The commands a kiosk took, in its state database (offline/command_ledger.py): an id is taken once,
across restarts; a result is written once and reported until central holds it; central's last word on
service is kept; old commands are forgotten, that last word never."""

from __future__ import annotations

import pytest

from kiosk.commands import Command, Report, Unfinished
from kiosk.wire import CommandAction, CommandOutcome
from offline.command_ledger import KEEP_AFTER_EXPIRY_S, SqliteCommandLedger
from offline.database import StateDatabase

DAY = 24 * 3600.0


def command(command_id: str, action: CommandAction = CommandAction.RESYNC, *, expires_at: float = 10_000.0) -> Command:
    return Command(command_id, action, issued_at=expires_at - 3600, expires_at=expires_at)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "state" / "kiosk.sqlite3"


def opened(path) -> tuple[StateDatabase, SqliteCommandLedger]:
    database = StateDatabase(path)
    return database, SqliteCommandLedger(database)


def test_an_id_is_taken_once_also_after_a_restart(path):
    database, ledger = opened(path)
    assert ledger.take(command("c1"), 1.0) is True
    assert ledger.take(command("c1", CommandAction.REBOOT), 2.0) is False     # whatever else it says
    database.close()
    database, ledger = opened(path)
    try:
        assert ledger.take(command("c1"), 3.0) is False
        assert ledger.take(command("c2"), 3.0) is True
        assert ledger.unfinished() == [Unfinished("c1", "resync"), Unfinished("c2", "resync")]
    finally:
        database.close()


def test_a_result_is_written_once_and_reported_until_central_holds_it(path):
    database, ledger = opened(path)
    try:
        ledger.take(command("c1"), 1.0)
        assert ledger.finish("c1", CommandOutcome.DONE, None, 2.0) is True
        assert ledger.finish("c1", CommandOutcome.REFUSED, "failed", 3.0) is False
        ledger.note_refusal("c9", "wrong_device", 4.0)
        reports = ledger.unreported()
        assert [(r.command_id, r.outcome, r.reason) for r in reports] == [
            ("c1", CommandOutcome.DONE, None), ("c9", CommandOutcome.REFUSED, "wrong_device")]
        ledger.reported(reports[0].seq)
        assert ledger.unreported() == [Report(reports[1].seq, "c9", CommandOutcome.REFUSED, "wrong_device")]
        assert ledger.unfinished() == []
    finally:
        database.close()


def test_the_last_word_on_service_is_the_last_one_carried_out(path):
    database, ledger = opened(path)
    try:
        assert ledger.out_of_service() is False
        ledger.take(command("c1", CommandAction.OUT_OF_SERVICE), 1.0)
        ledger.finish("c1", CommandOutcome.DONE, None, 2.0)
        assert ledger.out_of_service() is True
        ledger.take(command("c2", CommandAction.IN_SERVICE), 3.0)
        assert ledger.out_of_service() is True              # taken, not carried out yet
        ledger.finish("c2", CommandOutcome.REFUSED, "expired", 4.0)
        assert ledger.out_of_service() is True              # refused: nothing changed
        ledger.take(command("c3", CommandAction.IN_SERVICE), 5.0)
        ledger.finish("c3", CommandOutcome.DONE, None, 6.0)
        assert ledger.out_of_service() is False
    finally:
        database.close()


def test_old_commands_are_forgotten_but_never_the_last_word_on_service(path):
    database, ledger = opened(path)
    try:
        ledger.take(command("old-out", CommandAction.OUT_OF_SERVICE, expires_at=100.0), 1.0)
        ledger.finish("old-out", CommandOutcome.DONE, None, 2.0)
        ledger.take(command("old-resync", expires_at=100.0), 3.0)
        ledger.finish("old-resync", CommandOutcome.DONE, None, 4.0)
        ledger.take(command("old-unfinished", expires_at=100.0), 5.0)
        ledger.take(command("recent", expires_at=100.0 + KEEP_AFTER_EXPIRY_S), 6.0)
        ledger.finish("recent", CommandOutcome.DONE, None, 7.0)
        assert ledger.forget_old(100.0 + KEEP_AFTER_EXPIRY_S + DAY) == 1
        assert ledger.take(command("old-resync"), 8.0) is True      # long expired: its envelope is refused anyway
        assert ledger.take(command("old-out"), 8.0) is False
        assert ledger.take(command("recent"), 8.0) is False
        assert ledger.out_of_service() is True
    finally:
        database.close()
