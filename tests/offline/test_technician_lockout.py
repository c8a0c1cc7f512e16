"""The technician PIN's wrong tries and lockout, kept in the state database across a restart."""

from __future__ import annotations

import stat

from kiosk.ports.technician_lockout import LockoutState
from offline.database import StateDatabase
from offline.technician_lockout import SqliteTechnicianLockout


def test_nothing_kept_reads_no_tries_and_no_lockout(tmp_path):
    assert SqliteTechnicianLockout(StateDatabase(tmp_path / "state.sqlite3")).load() == LockoutState()


def test_what_was_saved_is_there_after_a_power_cut(tmp_path):
    path = tmp_path / "state.sqlite3"
    first = StateDatabase(path)
    kept = SqliteTechnicianLockout(first)
    kept.save(3, None)
    kept.save(0, 1_800_000_300.0)                         # the last save is what counts
    first.close()
    assert SqliteTechnicianLockout(StateDatabase(path)).load() == LockoutState(0, 1_800_000_300.0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600     # the state database's own file, private


def test_a_right_pin_leaves_nothing_kept(tmp_path):
    kept = SqliteTechnicianLockout(StateDatabase(tmp_path / "state.sqlite3"))
    kept.save(4, None)
    kept.save(0, None)
    assert kept.load() == LockoutState()
