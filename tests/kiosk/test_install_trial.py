"""kiosk/updates/trial.py in the running kiosk: the runtime on the in-process fakes
(tests/kiosk/test_runtime_effects.py's Kiosk), an installed version's root in a temporary folder,
the test thread playing Kivy's part."""

from __future__ import annotations

import dataclasses
import json
import queue
import sys
import threading
from pathlib import Path

import pytest

from kiosk import events as ev
from kiosk.session import CATALOGUE_RETRY_S, Step
from kiosk.technician import RESTART_EXIT_STATUS
from kiosk.updates import guard
from kiosk.updates.trial import Installation, Updates
from tests.kiosk.test_runtime_effects import Kiosk

WAIT_S = 10.0


@pytest.fixture
def root(tmp_path) -> Path:
    for version in ("0.1.0", "0.2.0"):
        (tmp_path / "versions" / version / "venv").mkdir(parents=True)
        (tmp_path / "versions" / version / "manifest.json").write_text("{}")
    return tmp_path


def put_on_trial(root: Path, version: str) -> Path:
    """The guard's pre-start has put `version` on trial."""
    proof = root / "state" / "update-proof.json"
    proof.parent.mkdir(exist_ok=True)
    state = guard.empty_state()
    state["trial"] = {"version": version, "from": "0.1.0", "started": True, "nonce": "nonce-1", "proof": str(proof)}
    guard.save_state(guard.Layout(root), state)
    return proof


def stage(root: Path, version: str) -> None:
    """The installer has staged `version`."""
    layout = guard.Layout(root)
    state = guard.load_state(layout)
    state["pending"] = version
    guard.save_state(layout, state)


class Selftest:
    """The self-test's verdict, given by the test; `gate` holds it until the test opens it."""

    def __init__(self, failed: tuple[str, ...] = (), gate: threading.Event | None = None) -> None:
        self.failed, self.runs, self.gate = failed, 0, gate
        self.running = threading.Event()

    def __call__(self) -> tuple[str, ...]:
        self.runs += 1
        self.running.set()
        if self.gate is not None:
            self.gate.wait(WAIT_S)
        return self.failed


@pytest.fixture
def kiosk():
    kiosk = Kiosk()
    kiosk.exits: list[int] = []
    kiosk.runtime.maintenance = dataclasses.replace(kiosk.runtime.maintenance, exit_app=kiosk.exits.append)
    yield kiosk
    kiosk.runtime.stop()


@pytest.fixture
def attach(kiosk, root):
    made: list[Updates] = []

    def attach(version: str, selftest: Selftest | None = None) -> Updates:
        made.append(Updates(kiosk.runtime, kiosk.posted.put, Installation(root, version), selftest or Selftest(),
                            watch_s=0.01))
        return made[-1]
    yield attach
    for updates in made:
        updates.stop()


def run_posted_until(kiosk, done) -> None:
    """Run what the workers and the watcher post, as Kivy's Clock would, until `done()`."""
    while not done():
        try:
            kiosk.posted.get(timeout=WAIT_S)()
        except queue.Empty:
            pytest.fail("nothing more was posted, and it did not happen")


# ------------------------------------------------------------------------------------------ the proof


def test_a_version_on_trial_writes_its_proof_once_the_attract_screen_shows(kiosk, root, attach):
    proof = put_on_trial(root, "0.2.0")
    selftest = Selftest()
    updates = attach("0.2.0", selftest)
    kiosk.start()                                           # the catalogue is loaded, the reader is there
    assert updates.proof_written.wait(WAIT_S)
    said = json.loads(proof.read_text())
    assert {key: said[key] for key in ("version", "nonce", "ok", "failed")} == {
        "version": "0.2.0", "nonce": "nonce-1", "ok": True, "failed": []}
    assert selftest.runs == 1


def test_a_failed_selftest_is_the_proofs_verdict(kiosk, root, attach):
    proof = put_on_trial(root, "0.2.0")
    updates = attach("0.2.0", Selftest(("central", "clock")))
    kiosk.start()
    assert updates.proof_written.wait(WAIT_S)
    assert (json.loads(proof.read_text())["ok"], json.loads(proof.read_text())["failed"]) == (
        False, ["central", "clock"])


def test_no_proof_until_the_kiosk_can_serve(kiosk, root, attach):
    """Out of service (central unreachable, no catalogue) proves nothing; in service, it proves."""
    proof = put_on_trial(root, "0.2.0")
    selftest = Selftest()
    updates = attach("0.2.0", selftest)
    kiosk.central.online = False
    kiosk.runtime.start()
    kiosk.run_until(Step.OUT_OF_SERVICE)
    kiosk.settle()
    assert selftest.runs == 0 and not proof.exists()

    kiosk.central.online = True
    kiosk.advance(CATALOGUE_RETRY_S)
    kiosk.run_until(Step.ATTRACT)
    assert updates.proof_written.wait(WAIT_S) and json.loads(proof.read_text())["ok"] is True


def test_a_version_not_on_trial_writes_no_proof(kiosk, root, attach):
    put_on_trial(root, "0.2.0")
    selftest = Selftest()
    attach("0.1.0", selftest)                   # the trial is another version's (a stale state)
    kiosk.start()
    kiosk.settle()
    assert selftest.runs == 0


# ------------------------------------------------------------------------------------------ the switch


def test_a_staged_version_restarts_the_kiosk_between_sessions_not_during_one(kiosk, root, attach):
    updates = attach("0.1.0")
    kiosk.start()
    kiosk.runtime.dispatch(ev.LanguageChosen("en"))       # a citizen starts
    assert kiosk.view.step is Step.INSERT_CARD
    stage(root, "0.2.0")
    run_posted_until(kiosk, lambda: updates.pending == "0.2.0")
    assert kiosk.exits == []                               # not in front of a citizen

    kiosk.advance(60 + 15)                                 # the citizen walked away: the session ends
    kiosk.run_until(Step.ATTRACT)
    assert kiosk.exits == [RESTART_EXIT_STATUS]            # systemd starts it again; the guard switches


def test_a_staged_version_restarts_a_kiosk_out_of_service_at_once(kiosk, root, attach):
    updates = attach("0.1.0")
    kiosk.central.online = False
    kiosk.runtime.start()
    kiosk.run_until(Step.OUT_OF_SERVICE)
    stage(root, "0.2.0")
    run_posted_until(kiosk, lambda: updates.pending == "0.2.0")
    assert kiosk.exits == [RESTART_EXIT_STATUS]


def test_a_version_on_trial_finishes_it_before_switching_to_a_staged_one(kiosk, root, attach):
    put_on_trial(root, "0.2.0")
    stage(root, "0.3.0")
    (root / "versions" / "0.3.0").mkdir()
    gate = threading.Event()
    selftest = Selftest(gate=gate)
    updates = attach("0.2.0", selftest)
    kiosk.runtime.start()
    run_posted_until(kiosk, lambda: updates.pending == "0.3.0" and kiosk.view.step is Step.ATTRACT)
    assert selftest.running.wait(WAIT_S)
    assert kiosk.exits == []                               # its proof is still under way
    gate.set()
    run_posted_until(kiosk, lambda: kiosk.exits == [RESTART_EXIT_STATUS])
    assert updates.proof_written.is_set()


# ------------------------------------------------------------------------------------------ where it runs from


def test_only_an_installed_version_has_an_installation(root):
    assert Installation.running(sys.prefix) is None                     # this checkout's .venv
    assert Installation.running(str(root / "versions/0.2.0/venv")) == Installation(root, "0.2.0")
    (root / "versions/0.2.0/manifest.json").unlink()                    # half installed: never run as one
    assert Installation.running(str(root / "versions/0.2.0/venv")) is None
