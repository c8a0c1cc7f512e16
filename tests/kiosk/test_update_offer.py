"""The kiosk installs only what its staged rollout offers (kiosk/updates/offer.py), verified through TUF, and
tells central what became of it: against central on loopback, serving its release repository and its
rollouts (central/rollouts.py), with the kiosk's real signed calls."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.db import Database
from central.devices import Devices
from central.releases.repository import ReleaseRepository
from central.rollouts import PAUSED, ROLLED_BACK, Cohort, Rollouts
from central.server import RunningCentral, start_in_thread
from kiosk import config as kiosk_config
from kiosk import wire
from kiosk.provisioning import public_key_hex
from kiosk.updates import fetch, guard, offer
from tests.central.conftest import new_id
from tests.kiosk.updates_support import (RUNNING, Staff, downloads, firmware_root, kiosk_configuration, make_staff,
                                         sha256_of)


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("served") / "release-repo"


@pytest.fixture(scope="module")
def central_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = Database("sqlite:///%s" % (tmp_path_factory.mktemp("central") / "central.sqlite3"))
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def central(central_db: Database, served: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCentral]:
    """Central on loopback, serving the release repository in `served` (each test makes a new one there) and
    the rollouts of its database."""
    ReleaseRepository.create(served, tmp_path_factory.mktemp("offline-keys"))       # central serves only a repository
    running = start_in_thread(central_db.url, release_repo=served)
    yield running
    running.stop()


@pytest.fixture
def staff(served: Path, central: RunningCentral, tmp_path: Path) -> Staff:
    return make_staff(served, tmp_path / "staff")


@pytest.fixture
def rollouts(central_db: Database) -> Iterator[Rollouts]:
    """Central's rollouts as staff reach them; a test's rollouts are stopped after it."""
    rollouts = Rollouts(central_db)
    yield rollouts
    for view in rollouts.list():
        if view.state != ROLLED_BACK:
            rollouts.rollback(view.rollout_id)


def enrolled_kiosk(central: RunningCentral, database: Database, staff: Staff, directory: Path
                   ) -> kiosk_config.KioskConfig:
    """A kiosk of its own, enrolled at central (its device key where its configuration says), whose firmware
    ships the repository's root as it is now."""
    directory.mkdir(parents=True)
    config = kiosk_configuration(directory, central.url + wire.TUF, firmware_root(staff, directory))
    device_id = new_id("kiosk")
    code, _expires = Devices(database).issue_code(device_id)
    key = Ed25519PrivateKey.generate()
    response = requests.post(central.url + wire.ENROL, timeout=10,
                             json={"device_id": device_id, "code": code, "public_key": public_key_hex(key)})
    assert response.status_code == 200, response.text
    key_path = directory / "device-key.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return dataclasses.replace(config, device_id=device_id,
                               central=dataclasses.replace(config.central, device_key_path=key_path))


@pytest.fixture
def kiosk(central: RunningCentral, central_db: Database, staff: Staff, tmp_path: Path) -> kiosk_config.KioskConfig:
    return enrolled_kiosk(central, central_db, staff, tmp_path / "kiosk")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The kiosk's install root (/opt/kiosk on a device), where the guard records what became of a version."""
    path = tmp_path / "opt-kiosk"
    path.mkdir()
    return path


def start_for(rollouts: Rollouts, version: str, *kiosks: kiosk_config.KioskConfig) -> str:
    return rollouts.start(version, Cohort.of(device_ids=[k.device_id for k in kiosks]),
                          platform=fetch.this_platform()).rollout_id


def test_the_kiosk_downloads_the_release_its_rollout_offers_not_the_newest(staff, kiosk, rollouts, root):
    offered = staff.publish("0.2.0")
    staff.publish("0.3.0")                 # published, in no rollout yet
    start_for(rollouts, "0.2.0", kiosk)

    release = offer.offered_release(kiosk, running=RUNNING, root=root)

    assert release is not None and release.version == "0.2.0"
    assert release.path.read_bytes() == offered.read_bytes() and release.sha256 == sha256_of(offered)


def test_a_kiosk_in_no_rollout_downloads_nothing(staff, kiosk, central, central_db, rollouts, root, tmp_path):
    staff.publish("0.2.0")
    other = enrolled_kiosk(central, central_db, staff, tmp_path / "other")
    start_for(rollouts, "0.2.0", other)

    assert offer.offered_release(kiosk, running=RUNNING, root=root) is None
    assert downloads(kiosk) == []


def test_a_version_central_offers_but_the_repository_does_not_list_is_not_downloaded(staff, kiosk, rollouts, root):
    staff.publish("0.2.0")
    start_for(rollouts, "0.4.0", kiosk)    # central chooses; TUF has to prove it, and cannot

    assert offer.offered_release(kiosk, running=RUNNING, root=root) is None
    assert downloads(kiosk) == []


def test_a_version_refused_on_this_kiosk_for_good_is_not_downloaded(staff, kiosk, rollouts, root):
    staff.publish("0.2.0")
    start_for(rollouts, "0.2.0", kiosk)
    guard.save_state(guard.Layout(root), {**guard.empty_state(), "refused": ["0.2.0"]})

    assert offer.offered_release(kiosk, running=RUNNING, root=root) is None
    assert downloads(kiosk) == []


def test_central_out_of_reach_offers_nothing_and_raises_nothing(staff, kiosk, root):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    unreachable = dataclasses.replace(kiosk, central=dataclasses.replace(kiosk.central,
                                                                         url="http://127.0.0.1:%d" % port))
    assert offer.offered_release(unreachable, running=RUNNING, root=root) is None
    assert offer.report_outcomes(unreachable, root=root) == 0


def test_what_became_of_the_release_is_counted_once_by_its_rollout(staff, kiosk, rollouts, root):
    staff.publish("0.2.0")
    rollout_id = start_for(rollouts, "0.2.0", kiosk)
    assert offer.offered_release(kiosk, running=RUNNING, root=root).version == "0.2.0"
    layout = guard.Layout(root)
    guard.record(layout, guard.STAGED, "0.2.0", from_version=RUNNING)           # as install() and the guard do
    guard.record(layout, guard.SWITCHED, "0.2.0", from_version=RUNNING)
    guard.record(layout, guard.INSTALLED, "0.2.0", from_version=RUNNING)

    assert offer.report_outcomes(kiosk, root=root) == 2                         # installed, proven
    assert offer.report_outcomes(kiosk, root=root) == 0                         # nothing new
    counts = rollouts.show(rollout_id).cohorts[0]
    assert (counts.offered, counts.installed, counts.proven, counts.failed) == (1, 1, 1, 0)

    memory_path = fetch.UpdateSettings.of(kiosk).download_dir.parent / "rollout.json"
    memory = json.loads(memory_path.read_text())
    memory_path.write_text(json.dumps({**memory, "reported": []}))              # as if central's answers were lost
    assert offer.report_outcomes(kiosk, root=root) == 2
    counts = rollouts.show(rollout_id).cohorts[0]
    assert (counts.offered, counts.installed, counts.proven, counts.failed) == (1, 1, 1, 0)


def test_a_release_rolled_back_on_one_kiosk_pauses_the_rollout_for_the_others(staff, kiosk, central, central_db,
                                                                             rollouts, root, tmp_path):
    staff.publish("0.2.0")
    other = enrolled_kiosk(central, central_db, staff, tmp_path / "other")
    rollout_id = start_for(rollouts, "0.2.0", kiosk, other)
    assert offer.offered_release(kiosk, running=RUNNING, root=root) is not None
    layout = guard.Layout(root)
    guard.record(layout, guard.STAGED, "0.2.0", from_version=RUNNING)
    guard.record(layout, guard.ROLLED_BACK, "0.2.0", from_version=RUNNING, reason="its self-test failed: printer",
                 strikes=1)

    assert offer.report_outcomes(kiosk, root=root) == 2

    shown = rollouts.show(rollout_id)
    assert shown.state == PAUSED and shown.paused_by_device == kiosk.device_id
    assert shown.reason == "kiosk %s failed: rolled_back" % kiosk.device_id
    assert offer.ask(other, running=RUNNING) is None
    assert offer.offered_release(other, running=RUNNING, root=tmp_path / "other-root") is None


def test_an_offered_release_that_could_not_be_installed_pauses_its_rollout(staff, kiosk, rollouts, root):
    staff.publish("0.2.0")
    rollout_id = start_for(rollouts, "0.2.0", kiosk)
    release = offer.offered_release(kiosk, running=RUNNING, root=root)
    offer.install_failed(kiosk, release.version, "update_refused")

    assert offer.report_outcomes(kiosk, root=root) == 1
    shown = rollouts.show(rollout_id)
    assert shown.state == PAUSED and [(f.device_id, f.reason) for f in shown.failures] == [
        (kiosk.device_id, "update_refused")]


def test_events_of_versions_no_rollout_offered_are_not_reported(staff, kiosk, rollouts, root):
    staff.publish("0.2.0")
    rollout_id = start_for(rollouts, "0.2.0", kiosk)
    offer.offered_release(kiosk, running=RUNNING, root=root)
    guard.record(guard.Layout(root), guard.ROLLED_BACK, "0.1.5", from_version=RUNNING, strikes=1)   # by hand

    assert offer.report_outcomes(kiosk, root=root) == 0
    assert rollouts.show(rollout_id).state == "active"


def test_update_offer_command_says_what_the_rollout_offers(staff, kiosk, rollouts, tmp_path):
    config_path = tmp_path / "kiosk.toml"
    config_path.write_text(
        'device_id = "%s"\n[central]\nurl = "%s"\ndevice_key_path = "%s"\n[card]\ntrusted_issuers = ["%s"]\n'
        '[printer]\nhost = "127.0.0.1"\n[outbox]\npath = "%s"\n'
        % (kiosk.device_id, kiosk.central.url, kiosk.central.device_key_path, kiosk.card.trusted_issuers[0],
           kiosk.outbox.path))
    running = fetch.running_version()

    def offer_command() -> str:
        done = subprocess.run([sys.executable, "-m", "kiosk.cli", "update", "offer", "--config", str(config_path)],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert offer_command() == ("running %s; no rollout offers this kiosk a newer release for %s (or central cannot "
                               "be reached: see the log)" % (running, fetch.this_platform()))
    rollout_id = start_for(rollouts, "99.0.0", kiosk)
    assert offer_command() == "running %s; rollout %s offers 99.0.0" % (running, rollout_id)
