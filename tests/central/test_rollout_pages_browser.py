"""The dashboard's rollouts in a real browser (Debian's Chromium, as test_dashboard_browser.py): a publisher
starts a rollout to a governorate and widens it from the forms; a kiosk, over the wire and signed, is
offered the release and reports that it failed; the rollout shows itself paused, naming the kiosk, in
Arabic (right to left) and English. Screenshots go to a folder the test prints (and /tmp/dashboard-shots/)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.dashboard.accounts import StaffAccounts
from central.dashboard.roles import Role
from central.db import Database, iso_utc, utc_now
from central.rollouts import Rollouts
from central.server import RunningCentral
from kiosk import wire
from kiosk.central_client import signed_by
from tests.central.stub_http import ApiClient
from tests.central.test_dashboard_browser import (  # noqa: F401 (fixtures)
    PASSWORD, Staff, browser, central_db_url, enrol_fleet, shots)

pytestmark = pytest.mark.realstack   # central over HTTP and a browser: see README

KIOSKS = {"dam-mazzeh-01": "damascus", "dam-midan-02": "damascus", "alp-aziziyeh-01": "aleppo"}


@pytest.fixture(scope="module")
def fleet(central: RunningCentral, central_database: Database) -> dict[str, Ed25519PrivateKey]:
    return enrol_fleet(central, central_database, {device_id: (governorate, None)
                                                   for device_id, governorate in KIOSKS.items()})


def test_a_publisher_rolls_out_and_sees_the_rollout_paused_by_a_failing_kiosk(
        central: RunningCentral, central_database: Database, fleet: dict, browser, shots: Path) -> None:
    secret = StaffAccounts(central_database).add("nadia", Role.PUBLISHER, PASSWORD).secret
    nadia = Staff(browser, central, shots)
    nadia.sign_in("nadia", secret)
    width = browser.get_window_size()["width"]

    nadia.open("/dashboard/rollouts")
    nadia.find("#version").send_keys("0.2.0")
    nadia.find("#kind option[value='governorate']").click()
    nadia.find("#value").send_keys("damascus")
    nadia.find("#start").click()
    nadia.wait.until(lambda d: "/dashboard/rollouts/" in d.current_url
                     and d.execute_script("return document.readyState") == "complete")
    rollout_id = browser.current_url.rsplit("/", 1)[1].split("?")[0]
    nadia.find("#widen-form #kind option[value='percent']").click()
    nadia.find("#widen-form #value").send_keys("50")
    nadia.click_and_wait("#widen", "/dashboard/rollouts/%s" % rollout_id)
    assert len(nadia.all("#cohorts tbody tr")) == 2 and "دمشق" in nadia.find("#cohorts").text

    # A kiosk of Damascus asks, is offered 0.2.0, installs it, and its start fails: it rolls back by itself.
    with ApiClient(central.url + wire.API, auth=signed_by("dam-mazzeh-01", fleet["dam-mazzeh-01"])) as kiosk:
        offer = kiosk.get("/rollout", params={"platform": "linux_aarch64", "version": "0.1.0"}).json()
        assert offer == {"version": "0.2.0", "rollout_id": rollout_id}
        for outcome, reason in (("installed", None), ("failed", "rolled_back")):
            assert kiosk.post("/rollout/report", json={
                "rollout_id": rollout_id, "version": "0.2.0", "outcome": outcome, "event_id": uuid.uuid4().hex,
                "at": iso_utc(utc_now()), "reason": reason}).status_code == 200
    with ApiClient(central.url + wire.API, auth=signed_by("dam-midan-02", fleet["dam-midan-02"])) as other:
        assert other.get("/rollout", params={"platform": "linux_aarch64", "version": "0.1.0"}).json()["version"] \
            is None
    assert Rollouts(central_database).show(rollout_id).state == "paused"

    nadia.open("/dashboard/rollouts/%s" % rollout_id)
    assert nadia.html() == ("rtl", "ar")
    note = nadia.find("#paused-note").text
    assert "dam-mazzeh-01" in note and "عاد الكشك وحده إلى الإصدار السابق" in note
    assert nadia.find("#failures").text.count("dam-mazzeh-01") == 1
    assert nadia.find("#resume") and nadia.x_centre("h1") > width * 0.5
    assert nadia.overlapping("#cohorts td") == [] and nadia.overlapping("header > *") == []
    nadia.shoot("rollout-01-paused-ar")

    nadia.click_and_wait(".who a[hreflang='en']", "/dashboard/rollouts/%s" % rollout_id)
    assert nadia.html() == ("ltr", "en")
    assert "the release failed on kiosk dam-mazzeh-01 (rolled back by the kiosk)" in nadia.find("#paused-note").text
    assert nadia.overlapping("#cohorts td") == []
    nadia.shoot("rollout-02-paused-en")

    nadia.open("/dashboard/rollouts")
    assert rollout_id in nadia.find("#rollouts").text and "paused by kiosk dam-mazzeh-01" in nadia.find(
        "#rollouts").text
    nadia.shoot("rollout-03-list-en")
    nadia.click_and_wait(".who a[hreflang='ar']", "/dashboard/rollouts")
    nadia.shoot("rollout-04-list-ar")
