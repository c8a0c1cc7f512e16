"""The dashboard's commands and announcements in a real browser (Debian's Chromium, as
test_dashboard_browser.py), against central served on loopback whose kiosks enrolled and talk to it over
the wire, signed. An operator sends a kiosk a command from its page; the kiosk's heartbeat, through
central's telemetry route, carries it (signed by central, addressed to it); the kiosk sends its logs and
its result; the page shows it delivered, then done, and the logs. A reboot of every kiosk is asked again
before it goes; a kiosk's refusal shows with its reason. The operator publishes an announcement that the
kiosks' signed fetch then carries, and withdraws it. A viewer sees the lists and no form, and a form sent
anyway is refused. Screenshots (20- to 29-) go to a folder the test prints (and /tmp/dashboard-shots/):
Arabic right to left, nothing overlapping."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from central.dashboard.accounts import StaffAccounts
from central.dashboard.roles import Role
from central.db import Database
from central.models import StaffAuditEntry
from central.server import RunningCentral
from kiosk import wire
from kiosk.catalogue_supply import check_signature, load_public_key
from kiosk.central_client import signed_by
from tests.central.stub_http import ApiClient
from tests.central.test_dashboard_browser import (  # noqa: F401 (fixtures)
    PASSWORD, Staff, browser, central_db_url, enrol_fleet, send_heartbeat, shots)

pytestmark = pytest.mark.realstack   # central over HTTP and a browser: see README

KIOSKS = {"dam-mazzeh-01": "damascus", "dam-midan-02": "damascus", "alp-aziziyeh-01": "aleppo"}
LOG_LINES = ["2026-11-29T10:00:01Z INFO kiosk.session state=attract",
             "2026-11-29T10:00:02Z WARNING printer.status_changed status=paper_near_end"]


@pytest.fixture(scope="module")
def fleet(central: RunningCentral, central_database: Database) -> dict[str, Ed25519PrivateKey]:
    return enrol_fleet(central, central_database, {device_id: (governorate, {})
                                                   for device_id, governorate in KIOSKS.items()})


@pytest.fixture(scope="module")
def central_key(central: RunningCentral, tmp_path_factory: pytest.TempPathFactory):
    """Central's public key, as a kiosk holds it."""
    path = tmp_path_factory.mktemp("key") / "central.pem"
    path.write_text(requests.get(central.url + wire.SIGNING_KEY, timeout=10).text)
    return load_public_key(path)


def submit(staff: Staff, selector: str | None = None) -> None:
    """Click `selector` (None: reload the page) and wait for the page it brings, whatever its address (a form
    may answer on the same one)."""
    from selenium.webdriver.support import expected_conditions

    before = staff.find("html")
    if selector is None:
        staff.driver.refresh()
    else:
        staff.find(selector).click()
    staff.wait.until(expected_conditions.staleness_of(before))
    staff.wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def states(staff: Staff) -> dict[str, list[str]]:
    """Each kiosk's commands' states (with the kiosk's reason), as the list shows them."""
    shown: dict[str, list[str]] = {}
    for row in staff.all("#commands tbody tr"):
        cells = row.find_elements(staff.by.CSS_SELECTOR, "td")
        shown.setdefault(cells[1].text, []).append(cells[3].text)
    return shown


def test_an_operator_commands_kiosks_and_announces_and_a_viewer_gets_no_form(
        central: RunningCentral, central_database: Database, fleet: dict, central_key, browser, shots: Path) -> None:
    accounts = StaffAccounts(central_database)
    secrets = {"amal": accounts.add("amal", Role.OPERATOR, PASSWORD).secret,
               "basel": accounts.add("basel", Role.VIEWER, PASSWORD).secret}
    amal = Staff(browser, central, shots)
    amal.sign_in("amal", secrets["amal"])
    width = browser.get_window_size()["width"]

    # A kiosk's page: collect its logs.
    amal.open("/dashboard/kiosks/dam-mazzeh-01")
    assert amal.html() == ("rtl", "ar")
    amal.find("#command-form #action option[value='collect-logs']").click()
    assert amal.overlapping("#command-form > div") == []
    amal.shoot("20-kiosk-command-form-ar")
    amal.click_and_wait("#send-command", "/dashboard/commands")
    assert "batch=" in browser.current_url
    assert states(amal) == {"dam-mazzeh-01": ["بانتظار الكشك"]}
    command_id = amal.find("#commands tbody tr").get_attribute("id").removeprefix("command-")

    # Its next heartbeat, through central's telemetry route, carries the command, signed for it alone.
    answer = send_heartbeat(central, "dam-mazzeh-01", fleet["dam-mazzeh-01"])
    [envelope] = answer.json()["commands"]
    assert check_signature(envelope, [central_key], context=wire.COMMAND_CONTEXT) is envelope
    assert (envelope["command_id"], envelope["device_id"], envelope["action"]) == (
        command_id, "dam-mazzeh-01", "collect-logs")
    submit(amal)
    assert states(amal) == {"dam-mazzeh-01": ["وصل إلى الكشك"]}
    assert amal.x_centre("h1") > width * 0.5 and amal.overlapping("#commands td") == []
    amal.shoot("21-command-delivered-ar")

    # The kiosk sends its logs and its result, signed.
    with ApiClient(central.url, auth=signed_by("dam-mazzeh-01", fleet["dam-mazzeh-01"])) as kiosk:
        assert kiosk.post(wire.command_logs_path(command_id), json={"lines": LOG_LINES, "dropped": 1}).status_code \
            == 200
        assert kiosk.post(wire.command_result_path(command_id), json={"outcome": "done", "reason": None}
                          ).status_code == 200
    submit(amal)
    assert states(amal) == {"dam-mazzeh-01": ["نُفّذ"]}
    amal.click_and_wait("#commands a.logs", "/dashboard/commands/%s/logs" % command_id)
    assert amal.find("#log-lines").text == "\n".join(LOG_LINES)
    assert amal.overlapping("main > *") == []
    amal.shoot("22-command-logs-ar")

    # Every kiosk rebooted: asked again, naming how many.
    amal.open("/dashboard/commands")
    amal.find("#send-form #action option[value='reboot']").click()
    amal.find("#target-everyone").click()
    amal.find("#minutes").clear()
    amal.find("#minutes").send_keys("30")
    assert amal.overlapping("#send-form .filters > *") == [] and amal.overlapping("fieldset .check > *") == []
    amal.shoot("23-commands-form-ar")
    submit(amal, "#send")
    assert "وعدد الأكشاك 3" in amal.find("#confirm-text").text
    assert len(amal.all("#named a")) == 3 and states(amal) == {}
    amal.shoot("24-confirm-reboot-ar")
    submit(amal, "#confirm")
    assert "batch=" in browser.current_url
    assert states(amal) == {device_id: ["بانتظار الكشك"] for device_id in KIOSKS}

    # One kiosk cannot reboot (no reboot in its build): it says so.
    [reboot] = send_heartbeat(central, "dam-midan-02", fleet["dam-midan-02"]).json()["commands"]
    with ApiClient(central.url, auth=signed_by("dam-midan-02", fleet["dam-midan-02"])) as kiosk:
        assert kiosk.post(wire.command_result_path(reboot["command_id"]),
                          json={"outcome": "refused", "reason": "unavailable"}).status_code == 200
    submit(amal)
    submit(amal, ".who a[hreflang='en']")
    assert amal.html() == ("ltr", "en") and "batch=" in browser.current_url      # the same list, in English
    assert states(amal) == {"alp-aziziyeh-01": ["sent"], "dam-mazzeh-01": ["sent"],
                            "dam-midan-02": ["refused this kiosk cannot do it"]}
    assert amal.x_centre("h1") < width * 0.5 and amal.overlapping("#commands td") == []
    amal.shoot("25-commands-batch-en")
    amal.find("#device").send_keys("dam-mazzeh-01")
    amal.click_and_wait("#filter", "/dashboard/commands")
    assert states(amal) == {"dam-mazzeh-01": ["sent", "done"]}

    # An announcement for Damascus's attract screens.
    amal.open("/dashboard/announcements?lang=ar")
    assert amal.html() == ("rtl", "ar") and amal.all("#announcements") == []
    amal.find("#text_ar").send_keys("تُغلق الصالة يوم الجمعة للصيانة")
    amal.find("#text_en").send_keys("The hall is closed on Friday for maintenance")
    amal.find("#governorate option[value='damascus']").click()
    amal.find("#until").send_keys("2099-12-31")
    assert amal.overlapping("#announce-form .filters > *") == []
    amal.shoot("26-announcement-form-ar")
    submit(amal, "#publish")
    row = amal.find("#announcements tbody tr")
    assert "تُغلق الصالة يوم الجمعة للصيانة" in row.text and "دمشق" in row.text and "معروض" in row.text
    assert amal.overlapping("#announcements td") == []
    amal.shoot("27-announcements-ar")
    with ApiClient(central.url, auth=signed_by("dam-midan-02", fleet["dam-midan-02"])) as kiosk:
        served = kiosk.get(wire.ANNOUNCEMENTS).json()
    assert check_signature(served, [central_key], context=wire.ANNOUNCEMENTS_CONTEXT) is served
    assert [(a["text"]["ar"], a["governorate"]) for a in served["announcements"]] == [
        ("تُغلق الصالة يوم الجمعة للصيانة", "damascus")]
    submit(amal, ".withdraw-form button")
    assert "مسحوب" in amal.find("#announcements tbody tr").text and amal.all(".withdraw-form") == []
    with ApiClient(central.url, auth=signed_by("dam-midan-02", fleet["dam-midan-02"])) as kiosk:
        assert kiosk.get(wire.ANNOUNCEMENTS).json()["announcements"] == []

    amal.open("/dashboard/audit")
    trail = amal.find("#staff-audit").text
    assert "reboot to 3 kiosks (every kiosk)" in trail and "إرسال أمر" in trail
    assert "نشر إعلان" in trail and "سحب إعلان" in trail
    amal.shoot("28-audit-ar")
    amal.click_and_wait(".who button", "/dashboard/login")

    # A viewer: the lists, no form; the operator's form sent anyway is refused.
    basel = Staff(browser, central, shots)
    basel.sign_in("basel", secrets["basel"])
    basel.open("/dashboard/commands")
    assert len(basel.all("#commands tbody tr")) == 4 and basel.all("#send-form") == []
    assert "صلاحيتك للاطلاع فقط" in basel.find("#viewer-note").text and basel.all("a.logs") == []
    basel.shoot("29-commands-as-viewer-ar")
    basel.open("/dashboard/announcements")
    assert basel.all("#announce-form") == [] and basel.all(".withdraw-form") == []
    basel.open("/dashboard/kiosks/dam-mazzeh-01")
    assert basel.all("#command-form") == []
    browser.execute_script("""
        const form = document.createElement('form');
        form.method = 'post';
        form.action = '/dashboard/commands';
        for (const [name, value] of [['csrf', document.querySelector('input[name=csrf]').value],
                                     ['action', 'out-of-service'], ['target', 'everyone'], ['minutes', '60'],
                                     ['confirmed', '3']]) {
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = name; input.value = value;
            form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();""")
    basel.wait.until(lambda d: "لا تسمح صلاحيتك بهذا الإجراء" in d.find_element(basel.by.CSS_SELECTOR, "main").text)
    with central_database.reading() as session:
        last = session.scalars(select(StaffAuditEntry).order_by(StaffAuditEntry.id.desc()).limit(1)).one()
        assert (last.username, last.action, last.outcome, last.detail) == ("basel", "command.send", "refused",
                                                                           "role=viewer")
    basel.open("/dashboard/commands")
    assert len(basel.all("#commands tbody tr")) == 4               # nothing more was sent
