"""The staff dashboard in a real browser: Debian's Chromium, driven through its chromedriver
(selenium, nothing downloaded), against central served for real on loopback, whose kiosks enrolled and
sent their heartbeats over the wire. An operator signs in with a password and a TOTP code, sees the
fleet in Arabic (right to left) and in English, filters the kiosks, and revokes one; a viewer is
refused. Screenshots of each page go to a folder the test prints (and to /tmp/dashboard-shots/), to be
looked at: Arabic reads right to left, joined, and nothing overlaps."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.dashboard import totp
from central.dashboard.accounts import StaffAccounts
from central.dashboard.roles import Role
from central.db import Database
from central.devices import Devices
from central.models import Device
from central.server import RunningCentral
from kiosk import wire
from kiosk.central_client import signed_by
from kiosk.provisioning import public_key_hex
from tests.central.stub_http import ApiClient

pytestmark = pytest.mark.realstack   # central over HTTP and a browser: see README

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900")
WIDTH, HEIGHT = 1280, 900
SHOTS_FOR_THE_LEAD = Path("/tmp/dashboard-shots")
PASSWORD = "correct horse battery staple"
WAIT_S = 15

# id: governorate and what its heartbeat says (None: it never sent one).
KIOSKS = {
    "dam-mazzeh-01": ("damascus", {}),
    "dam-midan-02": ("damascus", {"paper": "low", "state": "busy"}),
    "alp-aziziyeh-01": ("aleppo", {"door": "open", "state": "out_of_service", "reason": "door_open"}),
    "hms-waer-01": ("homs", {"state": "fault", "reason": "printer_error"}),
    "lat-corniche-01": ("latakia", {"alerts": [{"code": "update.failed", "raised_at": "2026-11-29T09:00:00.000Z"}]}),
    "trt-port-01": ("tartus", None),
}


@pytest.fixture(scope="module")
def central_db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: one browser run (test_dashboard.py runs the pages on PostgreSQL as well)."""
    return "sqlite:///%s" % (tmp_path_factory.mktemp("central") / "central.sqlite3")


@pytest.fixture(scope="module")
def fleet(central: RunningCentral, central_database: Database) -> dict[str, Ed25519PrivateKey]:
    return enrol_fleet(central, central_database, KIOSKS)


def enrol_fleet(central: RunningCentral, central_database: Database,
                kiosks: dict[str, tuple[str, dict | None]]) -> dict[str, Ed25519PrivateKey]:
    """`kiosks` (id: its governorate and what its heartbeat says, None for no heartbeat) enrolled as a
    technician does it (a code from central's staff, with the governorate), each of them then sending
    its heartbeat, signed with its device key; their keys."""
    keys = {}
    devices = Devices(central_database)
    for device_id, (governorate, facts) in kiosks.items():
        code, _expires = devices.issue_code(device_id, governorate=governorate)
        key = Ed25519PrivateKey.generate()
        answer = requests.post(central.url + wire.ENROL, timeout=10,
                               json={"device_id": device_id, "code": code, "public_key": public_key_hex(key)})
        assert answer.status_code == 200, answer.text
        keys[device_id] = key
        if facts is not None:
            assert send_heartbeat(central, device_id, key, **facts).status_code == 200
    return keys


def send_heartbeat(central: RunningCentral, device_id: str, key: Ed25519PrivateKey, **facts: object):
    body = {"sent_at": "2026-11-29T10:00:00Z", "version": "0.1.0", "state": "ready", "queue_depth": 2,
            "dead_letters": 0, "devices": {"card_reader": "ready", "terminal": "ready", "printer": "ready"},
            "paper": "ok", "door": "closed", "disk_free_mb": 5120, "memory_available_mb": 812, **facts}
    with ApiClient(central.url, auth=signed_by(device_id, key)) as kiosk:
        return kiosk.post(wire.TELEMETRY_HEARTBEAT, json=body)


@pytest.fixture(scope="module")
def staff(central: RunningCentral, central_database: Database) -> dict[str, str]:
    """An operator and a viewer, as `kiosk-central staff add` makes them: their TOTP secrets."""
    accounts = StaffAccounts(central_database)
    return {"amal": accounts.add("amal", Role.OPERATOR, PASSWORD).secret,
            "basel": accounts.add("basel", Role.VIEWER, PASSWORD).secret}


@pytest.fixture
def shots(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "dashboard-shots"
    folder.mkdir()
    print("\ndashboard screenshots: %s (copied to %s)" % (folder, SHOTS_FOR_THE_LEAD))
    yield folder
    SHOTS_FOR_THE_LEAD.mkdir(exist_ok=True)
    for picture in folder.glob("*.png"):
        shutil.copy(picture, SHOTS_FOR_THE_LEAD / picture.name)


@pytest.fixture
def browser(tmp_path: Path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make apt)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument("--user-data-dir=%s" % (tmp_path / "chromium-profile"))
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class Staff:
    """A member of staff at the browser."""

    def __init__(self, driver, central: RunningCentral, shots: Path) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
        self.driver, self.central, self.shots, self.by = driver, central, shots, By
        self.wait = WebDriverWait(driver, WAIT_S)

    def find(self, selector: str):
        return self.driver.find_element(self.by.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list:
        return self.driver.find_elements(self.by.CSS_SELECTOR, selector)

    def open(self, path: str) -> None:
        self.driver.get(self.central.url + path)

    def click_and_wait(self, selector: str, path: str) -> None:
        """Click, and wait for the next page, whose path (without the query) is `path`: the page clicked on
        gone first (a form sent to its own path changes no path to wait for), then the next one loaded."""
        from selenium.webdriver.support.expected_conditions import staleness_of

        before = self.find("html")
        self.find(selector).click()
        self.wait.until(staleness_of(before))
        self.wait.until(lambda d: d.current_url.split("?")[0] == self.central.url + path
                        and d.execute_script("return document.readyState") == "complete")

    def sign_in(self, username: str, secret: str) -> None:
        self.open("/dashboard")
        self.wait.until(lambda d: "/dashboard/login" in d.current_url)
        self.find("#username").send_keys(username)
        self.find("#password").send_keys(PASSWORD)
        self.click_and_wait("#sign-in", "/dashboard/second-factor")
        self.find("#code").send_keys(totp.code_at(secret, time.time()))
        self.click_and_wait("#verify", "/dashboard")

    def html(self) -> tuple[str, str]:
        root = self.find("html")
        return root.get_attribute("dir"), root.get_attribute("lang")

    def shoot(self, name: str) -> Path:
        """The whole page, its full height: the viewport made as tall as the page (DevTools), then shot."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": WIDTH, "height": max(HEIGHT, height), "deviceScaleFactor": 1, "mobile": False})
        path = self.shots / ("%s.png" % name)
        try:
            assert self.driver.save_screenshot(str(path)), name
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return path

    def x_centre(self, selector: str) -> float:
        """The middle of the text of the element `selector` matches (not of its box, which may be the
        page's width)."""
        return self.driver.execute_script(
            "const range = document.createRange();"
            "range.selectNodeContents(document.querySelector(arguments[0]));"
            "const box = range.getBoundingClientRect(); return box.left + box.width / 2;", selector)

    def overlapping(self, selector: str) -> list[tuple[str, str]]:
        """Pairs of the elements matched whose boxes overlap (each pair once, by its text)."""
        boxes = [(e.text, e.rect) for e in self.all(selector) if e.rect["width"] and e.rect["height"]]
        found = []
        for i, (text_a, a) in enumerate(boxes):
            for text_b, b in boxes[i + 1:]:
                if (a["x"] < b["x"] + b["width"] - 1 and b["x"] < a["x"] + a["width"] - 1
                        and a["y"] < b["y"] + b["height"] - 1 and b["y"] < a["y"] + a["height"] - 1):
                    found.append((text_a, text_b))
        return found


def test_an_operator_sees_the_fleet_in_both_languages_and_revokes_a_kiosk_a_viewer_cannot(
        central: RunningCentral, central_database: Database, fleet: dict, staff: dict, browser, shots: Path) -> None:
    amal = Staff(browser, central, shots)
    amal.open("/dashboard")
    amal.wait.until(lambda d: "/dashboard/login" in d.current_url)
    assert amal.html() == ("rtl", "ar") and "تسجيل الدخول" in amal.find("h1").text
    amal.shoot("01-login-ar")

    amal.sign_in("amal", staff["amal"])
    width = browser.get_window_size()["width"]
    assert amal.html() == ("rtl", "ar")
    assert amal.find("#card-total .figure").text == str(len(KIOSKS))
    assert amal.find("#card-paper .figure").text == "1" and amal.find("#card-door .figure").text == "1"
    assert amal.find("#card-update .figure").text == "1"
    governorates = amal.find("#by-governorate").text
    for name in ("دمشق", "حلب", "حمص", "اللاذقية", "طرطوس"):
        assert name in governorates
    # Right to left: the title on the right, the menu read from the right.
    assert amal.x_centre(".brand") > width * 0.6 and amal.x_centre("h1") > width * 0.5
    assert amal.x_centre("nav a:nth-child(1)") > amal.x_centre("nav a:nth-child(3)")
    assert amal.overlapping(".card") == [] and amal.overlapping("header > *") == []
    amal.shoot("02-overview-ar")

    amal.click_and_wait(".who a[hreflang='en']", "/dashboard")
    assert amal.html() == ("ltr", "en") and amal.find("h1").text == "Fleet overview"
    assert "Damascus" in amal.find("#by-governorate").text
    assert amal.x_centre(".brand") < width * 0.4
    assert amal.x_centre("nav a:nth-child(1)") < amal.x_centre("nav a:nth-child(3)")
    assert amal.overlapping(".card") == []
    amal.shoot("03-overview-en")

    amal.open("/dashboard/kiosks")                       # the session kept English
    assert amal.html() == ("ltr", "en")
    amal.click_and_wait(".who a[hreflang='ar']", "/dashboard/kiosks")
    assert amal.html() == ("rtl", "ar") and len(amal.all("#kiosks tbody tr")) == len(KIOSKS)
    amal.shoot("04-kiosks-ar")
    amal.find("#paper").click()
    amal.click_and_wait(".filters button", "/dashboard/kiosks")
    assert [row.find_element(amal.by.CSS_SELECTOR, "td").text for row in amal.all("#kiosks tbody tr")] \
        == ["dam-midan-02"]
    amal.shoot("05-kiosks-paper-low-ar")

    amal.click_and_wait("#kiosks tbody tr a", "/dashboard/kiosks/dam-midan-02")
    assert "قارب النفاد" in amal.find("#latest").text and "قيد الخدمة" in amal.find("#latest").text
    amal.shoot("06-kiosk-ar")
    amal.click_and_wait("#revoke", "/dashboard/kiosks/dam-midan-02")
    assert "هذا الكشك مُبطَل" in amal.find("#revoked-note").text and amal.all("#revoke") == []
    with central_database.reading() as session:
        assert session.get(Device, "dam-midan-02").revoked_at is not None
    # The kiosk's next call is refused.
    assert send_heartbeat(central, "dam-midan-02", fleet["dam-midan-02"]).status_code == 403
    amal.shoot("07-kiosk-revoked-ar")

    amal.click_and_wait("nav a[href='/dashboard/audit']", "/dashboard/audit")
    trail = amal.find("#staff-audit").text
    assert "إبطال كشك" in trail and "dam-midan-02" in trail and "تسجيل دخول" in trail
    amal.shoot("08-audit-ar")
    amal.click_and_wait(".who button", "/dashboard/login")
    assert "خرجت من اللوحة" in amal.find(".message").text

    basel = Staff(browser, central, shots)
    basel.sign_in("basel", staff["basel"])
    basel.open("/dashboard/kiosks/alp-aziziyeh-01")
    assert basel.all("#revoke") == [] and "صلاحيتك للاطلاع فقط" in basel.find("#viewer-note").text
    assert "مفتوح" in basel.find("#latest").text
    basel.shoot("09-kiosk-as-viewer-ar")
    # The form an operator would have, sent from the viewer's own session with its own form token.
    browser.execute_script("""
        const form = document.createElement('form');
        form.method = 'post';
        form.action = '/dashboard/kiosks/alp-aziziyeh-01/revoke';
        const csrf = document.createElement('input');
        csrf.type = 'hidden'; csrf.name = 'csrf';
        csrf.value = document.querySelector('input[name=csrf]').value;
        form.appendChild(csrf);
        document.body.appendChild(form);
        form.submit();""")
    basel.wait.until(lambda d: d.current_url.endswith("/revoke"))
    assert "لا تسمح صلاحيتك بهذا الإجراء" in basel.find(".message").text
    basel.shoot("10-viewer-refused-ar")
    with central_database.reading() as session:
        assert session.get(Device, "alp-aziziyeh-01").revoked_at is None
    basel.open("/dashboard/audit?lang=en")
    assert "refused" in basel.find("#staff-audit tbody tr").text and "role=viewer" in basel.find("#staff-audit").text
    basel.shoot("11-audit-en")
