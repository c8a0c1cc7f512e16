"""Staged rollouts (central/rollouts.py): which kiosks central offers a release to (a percentage of the fleet,
stable when widened; a governorate; device ids), pause and resume, a failing kiosk that pauses its rollout,
reports counted once, and a rollback that carries the cohorts forward to the old code under a newer
version; over loopback with real signed kiosk calls, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central import cli
from central.db import Database, iso_utc, utc_now
from central.devices import Devices
from central.models import Device, Rollout, RolloutReport
from central.releases.repository import ReleaseRepository
from central.rollouts import PAUSED, ROLLED_BACK, Cohort, RolloutError, Rollouts
from central.server import RunningCentral
from kiosk import wire
from kiosk.central_client import signed_by
from kiosk.provisioning import public_key_hex
from tests.central.conftest import new_id
from tests.central.stub_http import ApiClient

OFFER = wire.ROLLOUT[len(wire.API):]
REPORT = wire.ROLLOUT_REPORT[len(wire.API):]
RUNNING = "0.1.0"


@dataclass
class Kiosk:
    device_id: str
    client: ApiClient
    platform: str

    def offer(self, running: str = RUNNING) -> dict:
        """What central offers this kiosk now, as its updater asks (kiosk/updates/offer.py)."""
        response = self.client.get(OFFER, params={"platform": self.platform, "version": running})
        assert response.status_code == 200, response.text
        return response.json()

    def report(self, rollout_id: str, version: str, outcome: str, *, event_id: str | None = None,
               reason: str | None = None) -> requests.Response:
        return self.client.post(REPORT, json={
            "rollout_id": rollout_id, "version": version, "outcome": outcome,
            "event_id": event_id or uuid.uuid4().hex, "at": iso_utc(utc_now()), "reason": reason})


@pytest.fixture
def platform() -> str:
    """A platform of the test's own: the rollouts of other tests, on the same central, are not its kiosks'."""
    return "test_%s" % uuid.uuid4().hex[:12]


@pytest.fixture
def rollouts(central_database: Database) -> Rollouts:
    """Central's rollouts as its staff reach them (`kiosk-central rollout ...`)."""
    return Rollouts(central_database)


@pytest.fixture
def kiosk_in(central: RunningCentral, devices: Devices, platform: str) -> Iterator[Callable[..., Kiosk]]:
    """`kiosk_in(governorate)`: a kiosk of the test's own, enrolled with a code for that governorate (or none),
    signing its calls."""
    clients: list[ApiClient] = []

    def enrolled(governorate: str | None = None) -> Kiosk:
        device_id = new_id("kiosk")
        code, _expires = devices.issue_code(device_id, governorate=governorate)
        key = Ed25519PrivateKey.generate()
        response = requests.post(central.url + wire.ENROL, timeout=10,
                                 json={"device_id": device_id, "code": code, "public_key": public_key_hex(key)})
        assert response.status_code == 200, response.text
        clients.append(ApiClient(central.url + wire.API, timeout_s=10, auth=signed_by(device_id, key)))
        return Kiosk(device_id, clients[-1], platform)

    yield enrolled
    for client in clients:
        client.close()


def fleet(database: Database, size: int) -> list[str]:
    """`size` kiosks enrolled at once (their rows, as enrolment leaves them): a fleet to take percentages of."""
    ids = [new_id("fleet") for _ in range(size)]
    at = iso_utc(utc_now())
    with database.writing() as session:
        session.add_all(Device(device_id=device_id, public_key="00" * 32, enrolled_at=at) for device_id in ids)
    return ids


def offered_to(rollouts: Rollouts, device_ids: list[str], platform: str) -> set[str]:
    """The kiosks among `device_ids` that central offers a release to (its answer to each one's updater)."""
    return {device_id for device_id in device_ids
            if rollouts.offer(device_id, platform, RUNNING).body["version"] is not None}


# -- cohorts ---------------------------------------------------------------------------------------------------


def test_a_percentage_cohort_keeps_its_kiosks_when_widened(rollouts, central_database, platform):
    ids = fleet(central_database, 400)
    started = rollouts.start("0.2.0", Cohort.of(percent=10), platform=platform)
    first = offered_to(rollouts, ids, platform)
    assert 15 <= len(first) <= 70                       # 10% of 400 by a hash of each kiosk's id (4 sd and more)
    assert offered_to(rollouts, ids, platform) == first    # asked again: the same kiosks

    widened = rollouts.widen(started.rollout_id, Cohort.of(percent=50))
    second = offered_to(rollouts, ids, platform)
    assert first < second and 150 <= len(second) <= 250
    one, two = widened.cohorts[0], rollouts.show(started.rollout_id).cohorts[1]
    assert one.kiosks == one.offered == len(first)      # the first 10% still count in the first cohort
    assert two.kiosks == two.offered == len(second) - len(first)


def test_a_governorate_cohort_is_offered_to_its_kiosks_only(rollouts, kiosk_in):
    damascus, also_damascus, aleppo = kiosk_in("damascus"), kiosk_in("damascus"), kiosk_in("aleppo")
    started = rollouts.start("0.2.0", Cohort.of(governorate="damascus"), platform=damascus.platform)
    assert damascus.offer() == also_damascus.offer() == {"version": "0.2.0", "rollout_id": started.rollout_id}
    assert aleppo.offer() == {"version": None, "rollout_id": None}


def test_a_cohort_of_device_ids_is_offered_to_those_kiosks_only(rollouts, kiosk_in):
    named, other = kiosk_in(), kiosk_in()
    started = rollouts.start("0.2.0", Cohort.of(device_ids=[named.device_id]), platform=named.platform)
    assert named.offer() == {"version": "0.2.0", "rollout_id": started.rollout_id}
    assert other.offer() == {"version": None, "rollout_id": None}
    assert rollouts.show(started.rollout_id).cohorts[0].offered == 1


def test_a_kiosk_in_no_cohort_is_offered_nothing(rollouts, kiosk_in):
    inside, outside = kiosk_in("homs"), kiosk_in("tartus")
    rollouts.start("0.2.0", Cohort.of(governorate="homs"), platform=inside.platform)
    assert outside.offer() == {"version": None, "rollout_id": None}


def test_a_kiosk_already_on_the_version_or_newer_is_offered_nothing(rollouts, kiosk_in):
    kiosk = kiosk_in()
    rollouts.start("0.2.0", Cohort.of(device_ids=[kiosk.device_id]), platform=kiosk.platform)
    assert kiosk.offer(running="0.2.0")["version"] is None
    assert kiosk.offer(running="0.10.0")["version"] is None
    assert kiosk.offer(running="0.1.9")["version"] == "0.2.0"


def test_the_newest_release_whose_cohort_holds_the_kiosk_is_offered(rollouts, kiosk_in):
    canary, other = kiosk_in("idlib"), kiosk_in("idlib")
    rollouts.start("0.2.0", Cohort.of(governorate="idlib"), platform=canary.platform)
    newer = rollouts.start("0.3.0", Cohort.of(device_ids=[canary.device_id]), platform=canary.platform)
    assert canary.offer() == {"version": "0.3.0", "rollout_id": newer.rollout_id}
    assert other.offer()["version"] == "0.2.0"


@pytest.mark.parametrize("cohort, problem", [
    (dict(governorate="nowhere"), "no enrolled kiosk in nowhere"),
    (dict(device_ids=["kiosk-never-enrolled"]), "no kiosk kiosk-never-enrolled is enrolled"),
    (dict(percent=0), "1 to 100"),
    (dict(percent=101), "1 to 100"),
])
def test_a_cohort_that_names_no_kiosk_is_refused(rollouts, platform, cohort, problem):
    with pytest.raises(RolloutError, match=problem):
        rollouts.start("0.2.0", Cohort.of(**cohort), platform=platform)


# -- pause, resume, failures -------------------------------------------------------------------------------


def test_a_paused_rollout_offers_nothing_until_resumed(rollouts, kiosk_in):
    kiosk = kiosk_in()
    started = rollouts.start("0.2.0", Cohort.of(device_ids=[kiosk.device_id]), platform=kiosk.platform)
    paused = rollouts.pause(started.rollout_id, reason="printer firmware to check", by="nadia")
    assert paused.state == PAUSED and paused.reason == "paused by nadia: printer firmware to check"
    assert kiosk.offer()["version"] is None
    rollouts.resume(started.rollout_id)
    assert kiosk.offer() == {"version": "0.2.0", "rollout_id": started.rollout_id}
    with pytest.raises(RolloutError, match="not paused"):
        rollouts.resume(started.rollout_id)


def test_a_failing_kiosk_pauses_its_rollout_and_the_others_are_offered_nothing(rollouts, kiosk_in):
    failing, waiting = kiosk_in("hama"), kiosk_in("hama")
    started = rollouts.start("0.2.0", Cohort.of(governorate="hama"), platform=failing.platform)
    rollout_id = started.rollout_id
    assert failing.offer()["version"] == waiting.offer()["version"] == "0.2.0"
    assert failing.report(rollout_id, "0.2.0", "installed").status_code == 200

    response = failing.report(rollout_id, "0.2.0", "failed", reason="rolled_back")
    assert response.status_code == 200 and response.json() == {"status": "recorded", "counted": True}

    shown = rollouts.show(rollout_id)
    assert shown.state == PAUSED and shown.paused_by_device == failing.device_id
    assert shown.reason == "kiosk %s failed: rolled_back" % failing.device_id
    assert [(f.device_id, f.reason) for f in shown.failures] == [(failing.device_id, "rolled_back")]
    assert (shown.cohorts[0].offered, shown.cohorts[0].installed, shown.cohorts[0].failed) == (2, 1, 1)
    assert "paused since" in shown.lines()[0] and failing.device_id in shown.lines()[0]
    assert waiting.offer() == {"version": None, "rollout_id": None}

    rollouts.resume(rollout_id)         # staff looked, and go on: the kiosk that failed is not offered it again
    assert waiting.offer()["version"] == "0.2.0"
    assert failing.offer()["version"] is None


def test_a_report_sent_twice_counts_once(rollouts, kiosk_in):
    kiosk = kiosk_in()
    started = rollouts.start("0.2.0", Cohort.of(device_ids=[kiosk.device_id]), platform=kiosk.platform)
    kiosk.offer()
    event = uuid.uuid4().hex
    first = kiosk.report(started.rollout_id, "0.2.0", "proven", event_id=event)
    again = kiosk.report(started.rollout_id, "0.2.0", "proven", event_id=event)
    assert first.json()["counted"] is True and again.json() == {"status": "recorded", "counted": False}
    counts = rollouts.show(started.rollout_id).cohorts[0]
    assert (counts.offered, counts.installed, counts.proven, counts.failed) == (1, 1, 1, 0)


def test_a_failure_sent_again_after_staff_resumed_does_not_pause_again(rollouts, kiosk_in, central_database):
    kiosk = kiosk_in()
    started = rollouts.start("0.2.0", Cohort.of(device_ids=[kiosk.device_id]), platform=kiosk.platform)
    kiosk.offer()
    event = uuid.uuid4().hex
    kiosk.report(started.rollout_id, "0.2.0", "failed", event_id=event, reason="refused_after_strikes")
    rollouts.resume(started.rollout_id)
    assert kiosk.report(started.rollout_id, "0.2.0", "failed", event_id=event).json()["counted"] is False
    assert rollouts.show(started.rollout_id).state == "active"
    with central_database.reading() as session:
        assert session.get(RolloutReport, (kiosk.device_id, event)).reason == "refused_after_strikes"


def test_a_report_for_a_rollout_that_offered_this_kiosk_nothing_is_refused_404(rollouts, kiosk_in):
    offered, other = kiosk_in(), kiosk_in()
    started = rollouts.start("0.2.0", Cohort.of(device_ids=[offered.device_id]), platform=offered.platform)
    offered.offer()
    for kiosk, rollout_id, version in ((other, started.rollout_id, "0.2.0"),        # never offered
                                       (offered, started.rollout_id, "0.3.0"),      # not that rollout's version
                                       (offered, "no-such-rollout", "0.2.0")):
        response = kiosk.report(rollout_id, version, "failed", reason="rolled_back")
        assert response.status_code == 404 and response.json()["reason"] == wire.UNKNOWN_ROLLOUT
    assert rollouts.show(started.rollout_id).state == "active"


@pytest.mark.parametrize("body", [
    {"outcome": "exploded"}, {"event_id": "not-hex"}, {"at": "yesterday"}, {"reason": "Rolled Back!"},
    {"version": "v2"}, {"extra": 1},
])
def test_a_report_that_does_not_validate_is_refused_400(rollouts, kiosk_in, body):
    kiosk = kiosk_in()
    started = rollouts.start("0.2.0", Cohort.of(device_ids=[kiosk.device_id]), platform=kiosk.platform)
    kiosk.offer()
    report = {"rollout_id": started.rollout_id, "version": "0.2.0", "outcome": "failed",
              "event_id": uuid.uuid4().hex, "at": iso_utc(utc_now()), "reason": "rolled_back", **body}
    assert kiosk.client.post(REPORT, json=report).status_code == 400
    assert rollouts.show(started.rollout_id).state == "active"


def test_every_rollout_call_from_anyone_but_an_enrolled_kiosk_is_refused_401(rollouts, kiosk_in, anonymous,
                                                                              count_rows):
    kiosk = kiosk_in()
    started = rollouts.start("0.2.0", Cohort.of(device_ids=[kiosk.device_id]), platform=kiosk.platform)
    kiosk.offer()
    reports_before = count_rows(RolloutReport)
    offer = anonymous.get(OFFER, params={"platform": kiosk.platform, "version": RUNNING})
    report = anonymous.post(REPORT, json={"rollout_id": started.rollout_id, "version": "0.2.0", "outcome": "failed",
                                          "event_id": uuid.uuid4().hex, "at": iso_utc(utc_now()), "reason": None})
    assert (offer.status_code, report.status_code) == (401, 401)
    assert offer.json()["reason"] == report.json()["reason"] == "unauthenticated"
    assert count_rows(RolloutReport) == reports_before and rollouts.show(started.rollout_id).state == "active"


def test_a_revoked_kiosk_is_refused_403(rollouts, kiosk_in, devices):
    kiosk = kiosk_in()
    rollouts.start("0.2.0", Cohort.of(device_ids=[kiosk.device_id]), platform=kiosk.platform)
    assert devices.revoke(kiosk.device_id)
    response = kiosk.client.get(OFFER, params={"platform": kiosk.platform, "version": RUNNING})
    assert response.status_code == 403 and response.json()["reason"] == "device_revoked"


# -- rollback ------------------------------------------------------------------------------------------------


def test_a_rolled_back_rollout_offers_nothing_and_its_cohorts_go_forward_to_the_old_code(rollouts, kiosk_in):
    took_it, not_yet, elsewhere = kiosk_in("daraa"), kiosk_in("daraa"), kiosk_in("raqqa")
    bad = rollouts.start("0.3.0", Cohort.of(governorate="daraa"), platform=took_it.platform)
    took_it.offer()
    took_it.report(bad.rollout_id, "0.3.0", "proven")

    stopped, replacement = rollouts.rollback(bad.rollout_id, by="nadia")
    assert stopped.state == ROLLED_BACK and replacement is None
    assert not_yet.offer() == {"version": None, "rollout_id": None}
    assert took_it.offer(running="0.3.0") == {"version": None, "rollout_id": None}

    with pytest.raises(RolloutError, match="never goes down a version"):
        rollouts.rollback(bad.rollout_id, to_version="0.2.0")
    stopped, replacement = rollouts.rollback(bad.rollout_id, to_version="0.3.1")   # 0.2.0's code, as 0.3.1
    assert stopped.superseded_by == replacement.rollout_id and replacement.supersedes == bad.rollout_id
    assert [c.cohort for c in replacement.cohorts] == [c.cohort for c in stopped.cohorts]
    assert took_it.offer(running="0.3.0") == {"version": "0.3.1", "rollout_id": replacement.rollout_id}
    assert not_yet.offer()["version"] == "0.3.1"
    assert elsewhere.offer()["version"] is None
    with pytest.raises(RolloutError, match="already"):
        rollouts.rollback(bad.rollout_id, to_version="0.3.2")


def test_a_percentage_rollback_reaches_the_same_kiosks(rollouts, central_database, platform):
    ids = fleet(central_database, 200)
    bad = rollouts.start("0.3.0", Cohort.of(percent=20), platform=platform)
    had_it = offered_to(rollouts, ids, platform)
    _stopped, replacement = rollouts.rollback(bad.rollout_id, to_version="0.3.1")
    back = {d for d in ids if rollouts.offer(d, platform, "0.3.0").body["rollout_id"] == replacement.rollout_id}
    assert back == had_it and had_it


def test_a_second_rollout_of_a_version_still_rolled_out_is_refused(rollouts, platform, kiosk_in):
    kiosk = kiosk_in()
    started = rollouts.start("0.2.0", Cohort.of(device_ids=[kiosk.device_id]), platform=platform)
    with pytest.raises(RolloutError, match="rolled out already by rollout %s" % started.rollout_id):
        rollouts.start("0.2.0", Cohort.of(percent=10), platform=platform)


# -- the command line --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def release_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release repository with 0.2.0 and 0.3.1 published for the Raspberry Pi."""
    work = tmp_path_factory.mktemp("releases")
    repository, _keys = ReleaseRepository.create(work / "repo", work / "root-keys", root_keys=1, threshold=1)
    for version in ("0.2.0", "0.3.1"):
        bundle = work / ("kiosk-%s-linux_aarch64.tar" % version)
        bundle.write_bytes(version.encode() * 100)
        repository.publish(bundle, version)
    return repository.directory


def test_the_command_line_starts_widens_pauses_and_shows_a_rollout(central_db_url, central_database, release_repo,
                                                                  kiosk_in, capsys):
    kiosk = kiosk_in("latakia")
    assert cli.main(["rollout", "start", "0.9.9", "--governorate", "latakia", "--db", central_db_url,
                     "--repo", str(release_repo)]) == 2
    assert "not published" in capsys.readouterr().err
    assert cli.main(["rollout", "start", "0.2.0", "--governorate", "latakia", "--db", central_db_url,
                     "--repo", str(release_repo)]) == 0
    rollout_id = capsys.readouterr().out.split()[1].rstrip(":")
    with central_database.reading() as session:
        assert session.get(Rollout, rollout_id).platform == "linux_aarch64"
    assert Kiosk(kiosk.device_id, kiosk.client, "linux_aarch64").offer()["version"] == "0.2.0"

    assert cli.main(["rollout", "widen", rollout_id, "--percent", "10", "--db", central_db_url]) == 0
    assert cli.main(["rollout", "pause", rollout_id, "--reason", "checking", "--db", central_db_url]) == 0
    capsys.readouterr()
    assert cli.main(["rollout", "show", rollout_id, "--db", central_db_url]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith("rollout %s: 0.2.0 for linux_aarch64, paused since" % rollout_id)
    assert shown[2] == "cohort 1: governorate latakia: 1 kiosks, offered 1, installed 0, proven 0, failed 0"
    assert shown[3].startswith("cohort 2: 10% of the fleet: ")
    assert cli.main(["rollout", "list", "--db", central_db_url]) == 0
    assert any(line.startswith(rollout_id + "\t0.2.0\tlinux_aarch64\tpaused")
               for line in capsys.readouterr().out.splitlines())
    assert cli.main(["rollout", "pause", rollout_id, "--db", central_db_url]) == 2
    assert "is paused, not active" in capsys.readouterr().err

    assert cli.main(["rollout", "rollback", rollout_id, "--to", "0.3.0", "--db", central_db_url,
                     "--repo", str(release_repo)]) == 2                       # not published
    assert cli.main(["rollout", "rollback", rollout_id, "--to", "0.3.1", "--db", central_db_url,
                     "--repo", str(release_repo)]) == 0
    out = capsys.readouterr().out
    assert "rolled back" in out and "rolls back rollout %s" % rollout_id in out
