"""The dashboard's rollouts (central/dashboard/rollout_pages.py): a publisher starts, widens, resumes and rolls
back a rollout with its forms, an operator may only pause, a viewer only look; a form without its token is
refused; a rollout paused by a failing kiosk says which and why, in Arabic and English. In-process
(Starlette's TestClient), on SQLite and PostgreSQL; in a real browser: test_rollout_pages_browser.py."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from central.dashboard import rollout_pages
from central.dashboard.roles import Role
from central.dashboard.web import install
from central.db import Database
from central.devices import Devices
from central.rollouts import ReportBody, Rollouts
from tests.central.test_dashboard import Clock, Site, add_kiosk, audit_rows, database, hidden  # noqa: F401


@pytest.fixture
def rollouts(database: Database) -> Rollouts:
    return Rollouts(database)


@pytest.fixture
def site(database: Database, rollouts: Rollouts) -> Iterator[Site]:
    """The dashboard with its rollouts' pages, on an app of its own (central/app.py installs them the same way)."""
    app, clock = FastAPI(), Clock()
    dashboard = install(app, database, Devices(database), clock=clock)
    rollout_pages.install(app, rollouts)
    with TestClient(app, base_url="https://testserver") as client:
        yield Site(client, dashboard, clock, {})


def words(page: str) -> str:
    """What a page says, without its markup."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def signed_in(site: Site, username: str, role: Role) -> None:
    site.add(username, role)
    site.sign_in(username)


def post(site: Site, path: str, page: str, **fields: str):
    return site.client.post(path, data={"csrf": hidden(page), **fields}, follow_redirects=False)


def test_a_publisher_starts_a_rollout_and_sees_its_cohort(site, database):
    for device_id in ("dam-01", "dam-02"):
        add_kiosk(database, device_id, "damascus")
    signed_in(site, "nadia", Role.PUBLISHER)
    page = site.client.get("/dashboard/rollouts").text
    assert 'action="/dashboard/rollouts"' in page and "لا يوجد طرح بعد" in page

    answer = post(site, "/dashboard/rollouts", page, version="0.2.0", platform="linux_aarch64", kind="governorate",
                  value="damascus")
    assert answer.status_code == 303
    rollout_id = answer.headers["location"].rsplit("/", 1)[1]
    shown = site.client.get(answer.headers["location"]).text
    assert "طرح الإصدار" in shown and "0.2.0" in shown and "دمشق" in shown
    assert audit_rows(database)[-1] == ("nadia", "rollout.start", None, "ok", "rollout %s: 0.2.0" % rollout_id)
    listing = site.client.get("/dashboard/rollouts?lang=en").text
    assert rollout_id in listing and "active" in listing


def test_a_cohort_that_names_no_kiosk_is_shown_as_refused(site, database):
    signed_in(site, "nadia", Role.PUBLISHER)
    page = site.client.get("/dashboard/rollouts").text
    answer = post(site, "/dashboard/rollouts", page, version="0.2.0", platform="linux_aarch64", kind="governorate",
                  value="aleppo")
    assert answer.status_code == 422
    assert "الدفعة غير صالحة أو لا تضم أي كشك مسجّل" in answer.text and "no enrolled kiosk in aleppo" in answer.text
    assert audit_rows(database)[-1][1:4] == ("rollout.start", None, "failed")


def test_an_operator_may_pause_but_not_resume_widen_or_roll_back(site, database, rollouts):
    add_kiosk(database, "hms-01", "homs")
    rollout_id = rollouts.start("0.2.0", rollout_pages.cohort_of({"kind": "governorate", "value": "homs"})).rollout_id
    signed_in(site, "amal", Role.OPERATOR)
    page = site.client.get("/dashboard/rollouts/%s" % rollout_id).text
    assert "/pause" in page and "/resume" not in page and "/widen" not in page and "/rollback" not in page
    assert "/dashboard/rollouts\"" not in page.split("<main>")[1]            # no start form either

    answer = post(site, "/dashboard/rollouts/%s/pause" % rollout_id, page, reason="printer firmware")
    assert answer.status_code == 303 and rollouts.show(rollout_id).state == "paused"
    page = site.client.get("/dashboard/rollouts/%s" % rollout_id).text
    assert "أوقفه" in page and "amal" in page and "printer firmware" in page

    for action in ("resume", "widen", "rollback"):
        refused = post(site, "/dashboard/rollouts/%s/%s" % (rollout_id, action), page, kind="percent", value="50")
        assert refused.status_code == 403, action
    assert rollouts.show(rollout_id).state == "paused" and len(rollouts.show(rollout_id).cohorts) == 1
    assert [row[1:4] for row in audit_rows(database)[-3:]] == [
        ("rollout.resume", rollout_id, "refused"), ("rollout.widen", rollout_id, "refused"),
        ("rollout.rollback", rollout_id, "refused")]


def test_a_viewer_sees_the_rollouts_and_may_not_pause(site, database, rollouts):
    add_kiosk(database, "hms-01", "homs")
    rollout_id = rollouts.start("0.2.0", rollout_pages.cohort_of({"kind": "devices", "value": "hms-01"})).rollout_id
    signed_in(site, "basel", Role.VIEWER)
    page = site.client.get("/dashboard/rollouts/%s" % rollout_id).text
    assert "hms-01" in page and "/pause" not in page and "صلاحيتك للاطلاع فقط" in page
    assert post(site, "/dashboard/rollouts/%s/pause" % rollout_id, page).status_code == 403
    assert rollouts.show(rollout_id).state == "active"


def test_a_form_without_its_token_is_refused(site, database, rollouts):
    add_kiosk(database, "hms-01", "homs")
    rollout_id = rollouts.start("0.2.0", rollout_pages.cohort_of({"kind": "percent", "value": "10"})).rollout_id
    signed_in(site, "nadia", Role.PUBLISHER)
    answer = site.client.post("/dashboard/rollouts/%s/pause" % rollout_id, data={"csrf": "forged"},
                              follow_redirects=False)
    assert answer.status_code == 403 and rollouts.show(rollout_id).state == "active"
    assert audit_rows(database)[-1][1:5] == ("rollout.pause", rollout_id, "refused", "csrf")


def test_a_publisher_widens_resumes_and_rolls_back_forward_to_the_old_code(site, database, rollouts):
    add_kiosk(database, "lat-01", "latakia")
    signed_in(site, "nadia", Role.PUBLISHER)
    rollout_id = rollouts.start("0.3.0", rollout_pages.cohort_of({"kind": "governorate", "value": "latakia"})
                                ).rollout_id
    page = site.client.get("/dashboard/rollouts/%s" % rollout_id).text
    assert post(site, "/dashboard/rollouts/%s/widen" % rollout_id, page, kind="percent", value="50").status_code == 303
    assert [c.cohort.describe() for c in rollouts.show(rollout_id).cohorts] == ["governorate latakia",
                                                                                "50% of the fleet"]
    assert post(site, "/dashboard/rollouts/%s/pause" % rollout_id, page).status_code == 303
    assert post(site, "/dashboard/rollouts/%s/resume" % rollout_id, page).status_code == 303
    down = post(site, "/dashboard/rollouts/%s/rollback" % rollout_id, page, to="0.2.0")
    assert down.status_code == 422 and "لا يعود الكشك إلى إصدار أقدم أبداً" in down.text
    forward = post(site, "/dashboard/rollouts/%s/rollback" % rollout_id, page, to="0.3.1")
    assert forward.status_code == 303
    replacement = forward.headers["location"].rsplit("/", 1)[1]
    assert rollouts.show(rollout_id).superseded_by == replacement
    page = site.client.get("/dashboard/rollouts/%s?lang=en" % rollout_id).text
    assert "/rollback" not in page
    assert "Rolled back" in words(page) and "its cohorts go forward to rollout %s" % replacement in words(page)


def test_a_rollout_paused_by_a_failing_kiosk_says_which_and_why(site, database, rollouts):
    add_kiosk(database, "idl-07", "idlib")
    rollout_id = rollouts.start("0.2.0", rollout_pages.cohort_of({"kind": "governorate", "value": "idlib"})
                                ).rollout_id
    rollouts.offer("idl-07", "linux_aarch64", "0.1.0")
    rollouts.report("idl-07", ReportBody(rollout_id=rollout_id, version="0.2.0", outcome="failed",
                                         event_id=uuid.uuid4().hex, at="2026-11-29T10:00:00Z", reason="rolled_back"))
    signed_in(site, "nadia", Role.PUBLISHER)
    arabic = words(site.client.get("/dashboard/rollouts/%s" % rollout_id).text)
    assert "فشل الإصدار في الكشك" in arabic and "idl-07" in arabic and "عاد الكشك وحده إلى الإصدار السابق" in arabic
    english = words(site.client.get("/dashboard/rollouts/%s?lang=en" % rollout_id).text)
    assert "the release failed on kiosk idl-07 (rolled back by the kiosk)" in english and "rolled back by the kiosk" in english
    assert "paused by kiosk idl-07's failure" in words(site.client.get("/dashboard/rollouts").text)


def test_an_unknown_rollout_is_404(site):
    signed_in(site, "basel", Role.VIEWER)
    assert site.client.get("/dashboard/rollouts/nope").status_code == 404
