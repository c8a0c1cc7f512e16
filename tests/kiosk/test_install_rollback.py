"""Installed versions switched, proven and rolled back, with real processes and no systemd.

`KioskUnit` (drivers/demo/unit.py) does what systemd does with systemd/kiosk.service: the guard's pre-start (the copy in
the root, with the system's Python), then the current version's own Python, READY=1 awaited on a
notify socket for at most its start timeout, then the guard's post-start, the guard's `stopped`
with $SERVICE_RESULT, $EXIT_CODE and $EXIT_STATUS, and a new start whenever the test says (as
Restart=always would). The version's process stands in for `kiosk run`: it imports the entry
point's module (kiosk.cli) from the version, attaches the version's own kiosk/updates/trial.py to
a runtime whose session shows the attract screen, and sends READY=1 through the version's own
screens/watchdog.py; the self-test's verdict is the test's to give. The versions are the host
bundles of tests/release_bundles.py, installed by the real installer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivers.demo.unit import KioskUnit, Started
from kiosk.updates import guard
from kiosk.updates import install as installer
from tests import release_bundles
from tests.release_bundles import CANNOT_IMPORT, NEVER_READY

# kiosk.service's TimeoutStartSec and the guard's time for a trial's proof, shortened where a test
# waits for one of them to run out (the unit's own are generous: drivers/demo/unit.py).
SHORT_START_TIMEOUT_S = 5.0
SHORT_TRIAL_DEADLINE_S = 4.0


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    return release_bundles.installed_root(tmp_path_factory.getbasetemp())


@pytest.fixture
def unit(device, tmp_path):
    release_bundles.fresh_root(device)
    kiosk = KioskUnit(device.root, tmp_path)
    yield kiosk
    kiosk.stop()


def state(root: Path) -> dict:
    return guard.load_state(guard.Layout(root))


def events(root: Path) -> list[tuple[str, str]]:
    return [(event["code"], event["version"]) for event in json.loads((root / "update-events.json").read_text())]


def reasons(root: Path, code: str) -> list[str]:
    return [event["reason"] for event in json.loads((root / "update-events.json").read_text()) if event["code"] == code]


def installed(root: Path) -> list[str]:
    return guard.Layout(root).complete_versions()


def stage(device, version: str) -> None:
    """The installer takes the bundle of `version` (installed already: it is staged at once)."""
    release_bundles.bring(device, version)
    assert installer.install(device.bundles.paths[version], device.root, say=lambda _line: None).outcome == "pending"


# ------------------------------------------------------------------------------------------ switch and proof


def test_a_staged_version_is_switched_to_between_sessions_and_proves_itself(device, unit):
    assert unit.start() == Started("0.1.0", "running")
    stage(device, "0.2.0")
    ended = unit.wait_for_exit()                    # the running kiosk saw it, at the attract screen
    assert (ended.version, ended.status) == ("0.1.0", 75)
    assert unit.start() == Started("0.2.0", "running")       # on trial; the start ends once it proved itself

    now = state(device.root)
    assert guard.Layout(device.root).current_version() == "0.2.0"
    assert (now["trial"], now["previous"], now["pending"]) == (None, "0.1.0", None)
    assert "0.2.0" in now["proven"]
    assert events(device.root) == [("update.staged", "0.2.0"), ("update.switched", "0.2.0"),
                                   ("update.installed", "0.2.0")]
    assert {"0.1.0", "0.2.0"} <= set(installed(device.root))          # the previous version is kept


def test_a_proven_version_starts_again_without_a_trial(device, unit):
    stage(device, "0.2.0")
    assert unit.start() == Started("0.2.0", "running")
    unit.stop()
    assert unit.start() == Started("0.2.0", "running")
    assert [code for code, _version in events(device.root)].count("update.switched") == 1


# ------------------------------------------------------------------------------------------ rolled back by itself


def test_a_version_that_cannot_import_its_entry_point_is_rolled_back(device, unit):
    stage(device, CANNOT_IMPORT)
    failed = unit.start()
    assert (failed.version, failed.result, failed.status) == (CANNOT_IMPORT, "exit-code", 1)
    assert "kiosk_release_forgot_this" in unit.output

    assert unit.start() == Started("0.1.0", "running")          # systemd's restart: the guard went back
    now = state(device.root)
    assert now["strikes"] == {CANNOT_IMPORT: 1} and now["trial"] is None and now["refused"] == []
    assert events(device.root)[-1] == ("update.rolled_back", CANNOT_IMPORT)
    assert reasons(device.root, "update.rolled_back") == ["it exited with status 1 before it proved itself"]
    assert CANNOT_IMPORT in installed(device.root)               # kept for another try


def test_a_version_that_never_reports_ready_is_rolled_back(device, unit):
    stage(device, NEVER_READY)
    unit.start_timeout_s = SHORT_START_TIMEOUT_S
    failed = unit.start()
    assert (failed.version, failed.result) == (NEVER_READY, "timeout")

    assert unit.start() == Started("0.1.0", "running")
    assert events(device.root)[-1] == ("update.rolled_back", NEVER_READY)
    assert reasons(device.root, "update.rolled_back") == ["it never reported ready (systemd's start timeout)"]


def test_a_version_that_fails_its_selftest_is_rolled_back(device, unit):
    stage(device, "0.2.0")
    failed = unit.start(SELFTEST_FAILS="central,clock")
    assert (failed.version, failed.result, failed.status) == ("0.2.0", "exit-code", 1)

    assert unit.start() == Started("0.1.0", "running")
    assert reasons(device.root, "update.rolled_back") == ["its self-test failed: central, clock"]
    assert state(device.root)["strikes"] == {"0.2.0": 1}


def test_a_version_that_never_reaches_the_attract_screen_is_rolled_back_at_the_deadline(device, unit):
    stage(device, "0.2.0")
    unit.deadline_s = SHORT_TRIAL_DEADLINE_S
    failed = unit.start(NEVER_ATTRACT="1")         # READY=1 at its first frame, then never in service
    assert (failed.version, failed.result) == ("0.2.0", "exit-code")

    assert unit.start() == Started("0.1.0", "running")
    assert reasons(device.root, "update.rolled_back") == [
        "it did not reach the attract screen and pass its self-test within %d s" % SHORT_TRIAL_DEADLINE_S]


def test_a_version_cut_off_during_its_trial_is_rolled_back(device, unit):
    """A power cut (or a kill) before the version proved itself: the next start goes back."""
    stage(device, "0.2.0")
    unit.guard("pre-start")                          # the switch, then the power goes
    assert unit.start() == Started("0.1.0", "running")
    assert reasons(device.root, "update.rolled_back") == [
        "it stopped before it proved itself (a crash, a restart or a power cut)"]


def test_a_version_whose_start_failed_three_times_is_never_tried_again(device, unit):
    for strike in (1, 2, 3):
        stage(device, CANNOT_IMPORT)
        assert unit.start().version == CANNOT_IMPORT
        assert unit.start() == Started("0.1.0", "running")
        unit.stop()
        assert state(device.root)["strikes"] == {CANNOT_IMPORT: strike}

    assert state(device.root)["refused"] == [CANNOT_IMPORT]
    assert events(device.root)[-1] == ("update.refused", CANNOT_IMPORT)
    assert CANNOT_IMPORT not in installed(device.root)           # and its folder is gone
    assert installer.refusal(CANNOT_IMPORT, device.root) == (
        "version %s failed its start 3 times: it is never tried again" % CANNOT_IMPORT)
    with pytest.raises(installer.InstallRefused, match="never tried again"):
        installer.install(device.bundles.paths[CANNOT_IMPORT], device.root)
    assert unit.start() == Started("0.1.0", "running")


# ------------------------------------------------------------------------------------------ what is kept


def test_the_previous_version_is_kept_until_the_next_proves_itself_then_older_ones_go(device, unit):
    stage(device, "0.2.0")
    assert unit.start() == Started("0.2.0", "running")
    unit.stop()
    release_bundles.bring(device, NEVER_READY)                   # another version lying there
    stage(device, "0.3.0")
    unit.stop()
    assert installed(device.root) == ["0.1.0", "0.2.0", "0.3.0", NEVER_READY]

    unit.guard("pre-start")                                      # 0.3.0 on trial: 0.2.0 is what it goes back to
    assert unit.start() == Started("0.2.0", "running")           # its start cut: back to 0.2.0, not 0.1.0
    unit.stop()
    assert installed(device.root) == ["0.1.0", "0.2.0", "0.3.0", NEVER_READY]   # nothing removed on a failure

    stage(device, "0.3.0")
    assert unit.start() == Started("0.3.0", "running")
    assert installed(device.root) == ["0.2.0", "0.3.0"]          # proven: the previous one kept, older ones gone
    assert (state(device.root)["previous"], state(device.root)["current"]) == ("0.2.0", "0.3.0")
