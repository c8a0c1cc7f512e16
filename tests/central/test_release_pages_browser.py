"""The dashboard's releases in a real browser (Debian's Chromium, as test_dashboard_browser.py), against
central serving a release repository on loopback: a publisher uploads a bundle, is told a misnamed one is
refused, sees the release listed in Arabic (right to left) and English, and starts a rollout of it from the
list; a kiosk, over the wire and signed, is then offered it. Screenshots go to a folder the test prints (and
/tmp/dashboard-shots/, prefixed 3x-)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.dashboard.accounts import StaffAccounts
from central.dashboard.roles import Role
from central.db import Database
from central.releases.repository import ReleaseRepository
from central.server import RunningCentral, start_in_thread
from kiosk import wire
from kiosk.central_client import signed_by
from tests.central.stub_http import ApiClient
from tests.central.test_dashboard_browser import (  # noqa: F401 (fixtures)
    PASSWORD, Staff, browser, central_db_url, enrol_fleet, shots)
from tests.central.test_release_pages import bundle

pytestmark = pytest.mark.realstack   # central over HTTP and a browser: see README

PLATFORM = "linux_x86_64"
KIOSKS = {"dam-mazzeh-01": ("damascus", None)}


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> ReleaseRepository:
    work = tmp_path_factory.mktemp("releases")
    repository, _root_keys = ReleaseRepository.create(work / "release-repo", work / "offline")
    return repository


@pytest.fixture(scope="module")
def central(central_db_url: str, repository: ReleaseRepository) -> Iterator[RunningCentral]:
    """Central serving the release repository, as `kiosk-central serve --release-repo DIR`."""
    running = start_in_thread(central_db_url, release_repo=repository.directory)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def central_database(central: RunningCentral, central_db_url: str) -> Iterator[Database]:
    database = Database(central_db_url)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def fleet(central: RunningCentral, central_database: Database) -> dict[str, Ed25519PrivateKey]:
    return enrol_fleet(central, central_database, KIOSKS)


def test_a_publisher_uploads_a_bundle_sees_it_listed_and_starts_its_rollout(
        central: RunningCentral, central_database: Database, fleet: dict, repository: ReleaseRepository,
        browser, shots: Path, tmp_path: Path) -> None:
    secret = StaffAccounts(central_database).add("nadia", Role.PUBLISHER, PASSWORD).secret
    nadia = Staff(browser, central, shots)
    nadia.sign_in("nadia", secret)
    width = browser.get_window_size()["width"]
    name, content = bundle("0.2.0", platform=PLATFORM)
    good = tmp_path / name
    good.write_bytes(content)
    misnamed = tmp_path / "firmware-0.2.0.tar"
    misnamed.write_bytes(content)

    nadia.click_and_wait("nav a[href='/dashboard/releases']", "/dashboard/releases")
    assert nadia.html() == ("rtl", "ar") and nadia.find("#publish-form")
    nadia.shoot("3x-releases-01-empty-ar")

    nadia.find("#version").send_keys("0.2.0")
    nadia.find("#bundle").send_keys(str(misnamed))
    nadia.click_and_wait("#publish", "/dashboard/releases")
    assert "اسم الملف ليس اسم حزمة هذا الإصدار" in nadia.find("#error-bundle").text
    assert nadia.find("#version").get_attribute("value") == "0.2.0"
    assert nadia.overlapping("#publish-form > div") == []
    nadia.shoot("3x-releases-02-refused-ar")

    nadia.find("#bundle").send_keys(str(good))
    nadia.click_and_wait("#publish", "/dashboard/releases")
    assert name in nadia.find("#published").text
    row = nadia.find("#releases tbody tr").text
    assert "0.2.0" in row and PLATFORM in row and hashlib.sha256(content).hexdigest()[:16] in row
    assert nadia.x_centre("h1") > width * 0.5 and nadia.overlapping("#releases td") == []
    assert nadia.overlapping("header > *") == []
    nadia.shoot("3x-releases-03-published-ar")

    nadia.click_and_wait(".who a[hreflang='en']", "/dashboard/releases")
    assert nadia.html() == ("ltr", "en") and nadia.x_centre("h1") < width * 0.5
    assert "Start a rollout of this version" in nadia.find("#releases").text
    nadia.shoot("3x-releases-04-published-en")

    nadia.click_and_wait("a.start-rollout", "/dashboard/rollouts")
    assert nadia.find("#version").get_attribute("value") == "0.2.0"
    assert nadia.find("#platform").get_attribute("value") == PLATFORM
    nadia.find("#kind option[value='governorate']").click()
    nadia.find("#value").send_keys("damascus")
    nadia.shoot("3x-releases-05-rollout-form-en")
    nadia.find("#start").click()
    nadia.wait.until(lambda d: "/dashboard/rollouts/" in d.current_url
                     and d.execute_script("return document.readyState") == "complete")
    rollout_id = browser.current_url.rsplit("/", 1)[1].split("?")[0]
    nadia.shoot("3x-releases-06-rollout-en")

    with ApiClient(central.url + wire.API, auth=signed_by("dam-mazzeh-01", fleet["dam-mazzeh-01"])) as kiosk:
        offer = kiosk.get("/rollout", params={"platform": PLATFORM, "version": "0.1.0"}).json()
    assert offer == {"version": "0.2.0", "rollout_id": rollout_id}
    assert [target.path for target in repository.releases()] == [name]
