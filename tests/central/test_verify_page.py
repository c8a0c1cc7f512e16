"""Central's verification page, GET /verify/<serial>: its HTML, and how a real browser shows it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from central.server import RunningCentral
from drivers.card_sim.issuer import IssuerKey
from tests.central.cards import CardInReader
from tests.central.stub_acquirer import StubAcquirer
from tests.central.stub_http import ApiClient

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

PLACE = {"ar": "دمشق - المزة", "en": "Damascus - Mazzeh"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# The verdict's colour bar (CSS: .valid, .voided, .unknown border colours).
BAR = {"valid": (0x1E, 0x7B, 0x34), "voided": (0xB3, 0x26, 0x1E), "unknown": (0x6B, 0x6B, 0x6B)}


@pytest.fixture(scope="module")
def site(central: RunningCentral) -> Iterator[ApiClient]:
    """Central's root, where the page is (not under /api/v1)."""
    with ApiClient(central.url) as client:
        yield client


@pytest.fixture(scope="module")
def documents(http: ApiClient, acquirer: StubAcquirer, issuer: IssuerKey, seed_citizens: dict,
              fees_by_code: dict[str, int]) -> dict[str, dict]:
    """One valid and one voided document, issued at PLACE, each citizen's card proven in the pre-check."""
    made = {}
    fee = {"amount_minor": fees_by_code["civil-status-extract"], "currency": "SYP"}
    for state, name in (("valid", "Khaled"), ("voided", "Mariam")):
        citizen = seed_citizens[name]
        pre_check = http.post("/requests/eligibility", json={
            **CardInReader(citizen, issuer).answer(http), "service_code": "civil-status-extract", "fee": fee,
            "catalogue_version": ""}).json()
        body = {"request_id": "req-page-" + state, "service_code": "civil-status-extract",
                "presence_id": pre_check["presence_id"], "language": "ar",
                "payment_id": acquirer.pay(fee["amount_minor"]), "place": PLACE}
        made[state] = {**http.post("/requests", json=body).json()["document"], "citizen": citizen}
    made["voided"]["voided_at"] = http.post("/requests/req-page-voided/void").json()["voided_at"]
    return made


@pytest.fixture(scope="module")
def fees_by_code(http: ApiClient) -> dict[str, int]:
    return {s["code"]: s["fee"]["amount_minor"] for s in http.get("/catalogue").json()["services"]}


def test_valid_document_page_in_arabic_shows_what_the_qr_code_shows(site, documents) -> None:
    document = documents["valid"]
    page = site.get("/verify/%s" % document["serial"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert html.startswith("<!DOCTYPE html>\n<html dir=\"rtl\" lang=\"ar\">")
    assert "وثيقة صحيحة" in html and document["serial"] in html
    assert "إخراج قيد فردي" in html and PLACE["ar"] in html and "خالد الحداد" in html
    # Nothing else about the holder: no national number, parents, birth date or card.
    citizen = document["citizen"]
    for private in (citizen["national_number"], citizen["card_number"], citizen["father_name_ar"],
                    citizen["date_of_birth"], citizen["mother_name_ar"]):
        assert private not in html
    assert "<script" not in html


def test_valid_document_page_in_english(site, documents) -> None:
    html = site.get("/verify/%s" % documents["valid"]["serial"], params={"lang": "en"}).text
    assert '<html dir="ltr" lang="en">' in html
    assert "Valid: issued by the Civil Registry" in html and "Civil status extract" in html
    assert PLACE["en"] in html and '<bdi dir="rtl" lang="ar">خالد الحداد</bdi>' in html


def test_voided_document_page_says_so_with_the_date(site, documents) -> None:
    document = documents["voided"]
    day, time = document["voided_at"][:10], document["voided_at"][11:16]
    for language, words in (("ar", "وثيقة ملغاة منذ"), ("en", "Voided on")):
        page = site.get("/verify/%s" % document["serial"], params={"lang": language})
        assert page.status_code == 200
        assert words in page.text and "%s %s UTC" % (day, time) in page.text
        assert "وثيقة صحيحة" not in page.text and "Valid:" not in page.text


def test_unknown_serial_is_a_404_page_that_shows_nothing_else(site) -> None:
    page = site.get("/verify/2026-ZZZZZZZZ")
    assert page.status_code == 404 and "لا توجد وثيقة بهذا الرقم التسلسلي" in page.text
    assert "2026-ZZZZZZZZ" in page.text
    assert site.get("/verify/2026-ZZZZZZZZ", params={"lang": "en"}).text.count("No document has this serial") == 1


def test_page_escapes_what_it_shows(site, http, request_body, seed_citizens) -> None:
    body = request_body(seed_citizens["Lina"], "birth-certificate", language="en",
                        place={"en": "<script>alert(1)</script>\"'&"})
    document = http.post("/requests", json=body).json()["document"]
    html = site.get("/verify/%s" % document["serial"], params={"lang": "en"}).text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;" in html
    # A serial that is not one is neither looked up nor echoed.
    page = site.get("/verify/%3Cb%3Ehello%3Cb%3E", params={"lang": "<en>"})
    assert page.status_code == 404 and "<b>" not in page.text and "hello" not in page.text
    assert '<html dir="rtl" lang="ar">' in page.text                # an unknown language is Arabic


def test_page_loads_nothing_runs_nothing_and_is_never_cached(site, documents) -> None:
    headers = site.get("/verify/%s" % documents["valid"]["serial"]).headers
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert headers["cache-control"] == "no-store" and headers["x-content-type-options"] == "nosniff"


def test_page_shows_the_place_in_the_other_language_when_it_has_only_that_one(site, http, request_body,
                                                                              seed_citizens) -> None:
    body = request_body(seed_citizens["Lina"], "birth-certificate", language="en", place={"en": "Damascus"})
    document = http.post("/requests", json=body).json()["document"]
    assert "<bdi dir=\"auto\">Damascus</bdi>" in site.get("/verify/%s" % document["serial"]).text


# --- in a real browser ------------------------------------------------------------------

@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[str], Image.Image]:
    """A headless Chromium's picture of a URL, 800 x 900."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")

    def take(url: str) -> Image.Image:
        out = tmp_path / ("shot-%d.png" % len(list(tmp_path.glob("shot-*.png"))))
        with tempfile.TemporaryDirectory() as profile:
            run = subprocess.run(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + profile,
                 "--screenshot=" + str(out), "--window-size=800,900", url],
                capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and out.exists(), run.stderr[-2000:]
        return Image.open(out).convert("RGB")
    return take


def bar_x(picture: Image.Image, colour: tuple[int, int, int]) -> float | None:
    """The mean x of the columns holding a bar of `colour` (40 pixels of it, within a small
    tolerance), or None when there is none. Text never makes such a column."""
    difference = ImageChops.difference(picture, Image.new("RGB", picture.size, colour))
    close = [channel.point(lambda v: 255 if v <= 6 else 0) for channel in difference.split()]
    mask = ImageChops.darker(ImageChops.darker(close[0], close[1]), close[2])
    per_column = mask.resize((picture.width, 1), Image.Resampling.BOX).tobytes()   # mean of each column
    columns = [x for x, mean in enumerate(per_column) if mean * picture.height / 255 >= 40]
    return sum(columns) / len(columns) if columns else None


@pytest.mark.parametrize("state", ["valid", "voided", "unknown"])
def test_browser_draws_the_verdict_on_the_reading_side_of_each_language(central, documents, screenshot,
                                                                        state) -> None:
    """The verdict's bar starts the line: on the right in Arabic, on the left in English, in its colour."""
    serial = documents[state]["serial"] if state in documents else "2026-ZZZZZZZZ"
    for language, side in (("ar", "right"), ("en", "left")):
        picture = screenshot("%s/verify/%s?lang=%s" % (central.url, serial, language))
        x = bar_x(picture, BAR[state])
        assert x is not None, "no %s bar in the %s page" % (state, language)
        assert (x > picture.width * 0.75) if side == "right" else (x < picture.width * 0.25)
        for other, colour in BAR.items():
            if other != state:
                assert bar_x(picture, colour) is None
