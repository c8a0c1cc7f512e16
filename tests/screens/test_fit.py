"""Every screen lays out at every text size, in both languages and in high
contrast: no text cut off, no widget over another, nothing off the screen.

The test runs this module as a script in a subprocess on an Xvfb display
(Kivy keeps one window per process): the real `KioskApp` with a stand-in
runtime, shown one View after another through `_show`, as the runtime shows
them. After each has laid out, every visible label's text is drawn again
unwrapped and unclipped and compared with its box, and the boxes of every
visible label, image and busy ring are compared with each other, the window
and (for a screen's own widgets) the room below the header. Text colours are
checked against what they are drawn on (WCAG: 4.5:1, 7:1 in high contrast).
A few screens are saved as screenshots at extra large, in both languages and
in high contrast, for a person to look at (`--every-shot`: every case). A
wallet's payment request must come out on the screen large and read back:
the QR code is read from a screenshot as a phone would.

    python -m tests.screens.test_fit --out DIR [--only SCREEN ...] [--every-shot]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIZE = (1024, 600)                       # the kiosk's display (config `display.*`, drivers/demo/stack.py)
# Screenshots for a person to read: (screen, language, text size, high contrast).
SHOTS = [(screen, language, "extra-large", contrast)
         for screen in ("attract", "pin_entry", "identity", "catalogue", "confirm", "paying", "print_waiting", "take_card",
                        "failed")
         for language in ("ar", "en") for contrast in (False, True)]
# The states of the payment screens, each by its case label, at extra large in both languages.
LABELLED_SHOTS = [(screen, label, language, "extra-large", False)
                  for screen, labels in (("paying", ("card", "processing", "wallet", "cancelling")),
                                         ("confirm", ("fee_changed", "needs_link", "claim")),
                                         ("catalogue", ("offline_first", "offline_category")),
                                         ("identity", ("waiting",)), ("printing", ("claim",)),
                                         ("take_card", ("claimed", "collected")),
                                         ("payment_declined", ("insufficient_funds", "card_removed")),
                                         ("failed", ("payment_unavailable",)),
                                         ("out_of_service", ("device_refused", "technician", "central_staff")),
                                         ("attract", ("announcement",)),
                                         ("technician_pin", ("plain", "wrong_pin", "locked")),
                                         ("technician", ("gathering", "status", "out_of_service")))
                  for label in labels for language in ("ar", "en")] + [
                 ("paying", "wallet", language, "extra-large", True) for language in ("ar", "en")]
SLACK = 1.0                              # pixels: rounding of layout and text metrics
CLAIM_REFERENCE = "CLM-WXYZ-WXYZ-WXYZ"   # the widest letters a claim's reference can have
QR_LEAST_SIDE = 240                      # pixels: a wallet request's QR code is at least this large
QR_LEAST_MODULE = 3                      # pixels a module, at least
# A payment request as long as a real wallet's (EMV merchant-presented mode runs to a few hundred characters).
WALLET_REQUEST = ("00020101021226780014com.example.pay0136sale-8f14e45fceea167a5a36dedd4bea2543"
                  "0212KIOSK-0001-DM52049399530376054062000005802SY5912CIVIL REGISTRY6007DAMASCUS"
                  "62290525KSK-2026-000123-8F14E45F6304A1B2")


# ---------------------------------------------------------------- the test


@pytest.mark.realstack     # Xvfb
def test_every_screen_fits_at_every_text_size_in_both_languages(screen, tmp_path):
    env = dict(os.environ, DISPLAY=screen.display)
    run = subprocess.run([sys.executable, "-m", "tests.screens.test_fit", "--out", str(tmp_path)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    report_path = tmp_path / "fit.json"
    assert report_path.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    from screens import SCREENS
    # every screen, both languages, every size
    assert {(c["screen"], c["language"], c["size"]) for c in report["cases"]} >= {
        (name, language, size) for name in SCREENS.values() for language in ("ar", "en")
        for size in ("normal", "large", "extra-large")}
    assert any(c["high_contrast"] for c in report["cases"])
    # every state of paying, the changed fee, every reason a payment did not go through, no terminal
    from kiosk.ports.payment_terminal import PaymentReason
    assert {(c["screen"], c["view"]) for c in report["cases"]} >= {
        ("paying", "card"), ("paying", "processing"), ("paying", "cancelling"), ("paying", "wallet"),
        ("paying", "wallet_processing"), ("paying", "wallet_coming"), ("paying", "wallet_expired"),
        ("confirm", "fee_changed"), ("confirm", "needs_link"), ("catalogue", "offline_first"),
        ("catalogue", "offline_category"), ("confirm", "claim"), ("identity", "waiting"), ("printing", "claim"),
        ("take_card", "claimed"), ("take_card", "collected"), ("failed", "offline_limit"), ("claiming", "plain"),
        ("collecting", "plain"), ("out_of_service", "device_refused"), ("out_of_service", "technician"),
        ("out_of_service", "central_staff"), ("attract", "announcement"),
        ("technician_pin", "wrong_pin"), ("technician_pin", "checking"), ("technician_pin", "locked"),
        ("technician", "gathering"), ("technician", "status"), ("technician", "out_of_service"),
        ("failed", "payment_unavailable")} | {
        ("payment_declined", reason.value) for reason in PaymentReason}
    # the wallet's QR code was read back from the screen at every size (see check_qr)
    assert sum("-qr-wallet" in shot for shot in report["screenshots"]) == 8
    assert report["problems"] == [], "\n".join(report["problems"][:40])
    assert report["taps"] == report["taps_expected"]
    assert all((tmp_path / shot).stat().st_size > 10_000 for shot in report["screenshots"])
    assert run.returncode == 0, run.stderr[-3000:]


# ---------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    screen: str
    label: str               # which representative view of the screen
    view: object             # kiosk.session.View


def representative_views():
    """(screen, label, fields of View) for every screen: the longest texts each can show."""
    from drivers.card_sim.portrait import portrait_jpeg
    from kiosk import i18n
    from kiosk.catalogue import Catalogue
    from kiosk.ports.outbox import LinkState
    from kiosk.ports.payment_terminal import PaymentMethod, PaymentReason, PromptKind
    from kiosk.session import Reason, Step
    from screens import SCREENS

    catalogue = Catalogue.from_json(json.loads((ROOT / "central/seed/catalogue.json").read_text(encoding="utf-8")))
    biggest = max(catalogue.categories, key=lambda c: len(catalogue.in_category(c.code)))
    longest = max(catalogue.services, key=lambda s: len(s.name("en")) + len(s.name("ar")))
    card_reasons = [r for r in Reason if r.value.startswith("card_")]

    def wordiest(reasons):
        return max(reasons, key=lambda r: len(i18n.text("reason." + r.value, "en")) + len(i18n.text("reason." + r.value, "ar")))

    names = {"ar": "عبد الرحمن محمد خير الحسيني", "en": "Abdulrahman Mohammad Kheir Al-Husseini"}
    from kiosk.ports.cabinet import Light
    from kiosk.ports.card_reader import ReaderStatus
    from kiosk.ports.receipt_printer import PrinterStatus
    from kiosk.technician import TechnicianAction, TechnicianStatus
    # The longest each fact can say, in both languages.
    TECHNICIAN_STATUS = TechnicianStatus(
        reader=ReaderStatus.CARD_ERROR, terminal=None, printer=PrinterStatus.PAPER_NEAR_END,
        light=Light.OUT_OF_SERVICE, pending=123456, dead=9999, last_sync="2026-11-29 23:59",
        link=LinkState.OFFLINE, version="10.20.300", device_id="town-hall-kiosk-0001.ab:cd_ef")
    # Central's announcement at its longest (central/announcements.py's TEXT_MAX), in wide words.
    from kiosk.commands import Announcement
    from kiosk.wire import ANNOUNCEMENT_MAX_CHARS as TEXT_MAX
    words = {"ar": "سيُغلق مركز خدمة المواطن يوم الجمعة للصيانة، ويمكنكم استخدام الكشك في ساعات العمل المعتادة ",
             "en": "The citizen service centre closes on Friday for maintenance; this kiosk works as usual meanwhile. "}
    announcement = Announcement("a1", {lang: (text * 9)[:TEXT_MAX].strip() for lang, text in words.items()}, "",
                                "2026-11-29T10:00:00Z", None)
    special = {
        "attract": [("plain", {}), ("announcement", dict(announcement=announcement))],
        "pin_entry": [("wrong_pin", dict(pin_length=8, tries_left=1))],
        "identity": [("photo", dict(holder_name=names, photo=portrait_jpeg("fit"))),
                     ("idle_warning", dict(holder_name=names, idle_warning=True, seconds_left=15)),
                     ("waiting", dict(holder_name=names, photo=portrait_jpeg("fit"), waiting_documents=12))],
        "printing": [("plain", {}), ("claim", dict(selected=longest, claim_reference=CLAIM_REFERENCE))],
        "catalogue": [("first", dict(categories=catalogue.categories, services=catalogue.most_asked())),
                      ("category", dict(categories=catalogue.categories, category=biggest,
                                        services=catalogue.in_category(biggest.code))),
                      # Central unreachable: each certificate says whether it still works.
                      ("offline_first", dict(categories=catalogue.categories, services=catalogue.most_asked(),
                                             link=LinkState.OFFLINE)),
                      ("offline_category", dict(categories=catalogue.categories, category=biggest,
                                                services=catalogue.in_category(biggest.code),
                                                link=LinkState.OFFLINE))],
        "confirm": [("longest", dict(selected=longest)), ("fee_changed", dict(selected=longest, fee_changed=True)),
                    ("needs_link", dict(selected=longest, needs_link=True, link=LinkState.OFFLINE)),
                    ("claim", dict(selected=longest, claim=True, link=LinkState.OFFLINE))],
        "paying": [
            ("card", dict(selected=longest, payment_method=PaymentMethod.CARD, payment_prompt=PromptKind.PRESENT_CARD)),
            ("processing", dict(selected=longest, payment_method=PaymentMethod.CARD,
                                payment_prompt=PromptKind.PROCESSING)),
            ("cancelling", dict(selected=longest, payment_method=PaymentMethod.CARD,
                                payment_prompt=PromptKind.PRESENT_CARD, cancelling=True)),
            ("wallet", dict(selected=longest, payment_method=PaymentMethod.WALLET, payment_prompt=PromptKind.SCAN_QR,
                            payment_qr=WALLET_REQUEST, payment_seconds_left=105)),
            ("wallet_processing", dict(selected=longest, payment_method=PaymentMethod.WALLET,
                                       payment_prompt=PromptKind.PROCESSING, payment_qr=WALLET_REQUEST,
                                       payment_seconds_left=40)),
            ("wallet_coming", dict(selected=longest, payment_method=PaymentMethod.WALLET,
                                   payment_prompt=PromptKind.SCAN_QR)),
            ("wallet_expired", dict(selected=longest, payment_method=PaymentMethod.WALLET,
                                    payment_prompt=PromptKind.SCAN_QR, payment_qr=WALLET_REQUEST,
                                    payment_seconds_left=0)),
        ],
        "payment_declined": [(reason.value, dict(payment_reason=reason)) for reason in PaymentReason],
        "card_refused": [("reason", dict(reason=wordiest(card_reasons), expiry=date(2024, 1, 31)))],
        "failed": [("refunded", dict(reason=wordiest(list(Reason)), refunded=True)),
                   ("payment_unavailable", dict(reason=Reason.PAYMENT_UNAVAILABLE)),
                   ("offline_limit", dict(reason=Reason.OFFLINE_LIMIT)),
                   ("collection_failed", dict(reason=Reason.COLLECTION_FAILED))],
        "take_card": [("printed", dict(printed=True, serial="KSK-2026-000123")),
                      ("reason", dict(reason=wordiest(list(Reason)))),
                      ("claimed", dict(selected=longest, claim_reference=CLAIM_REFERENCE, claim_slip_printed=False)),
                      ("collected", dict(collected=("2026-ABCDEFGH", "2026-BCDEFGHJ", "2026-CDEFGHJK",
                                                    "2026-DEFGHJKM")))],
        "print_waiting": [("countdown", dict(reprint_seconds_left=300))],
        "out_of_service": [("no_reader", dict(reason=Reason.NO_READER)),
                           ("device_refused", dict(reason=Reason.DEVICE_REFUSED)),
                           ("technician", dict(reason=Reason.TECHNICIAN, taken_out_of_service=True)),
                           ("central_staff", dict(reason=Reason.CENTRAL_STAFF, out_of_service_by_central=True))],
        "technician_pin": [("plain", {}), ("wrong_pin", dict(technician_pin_length=12, technician_tries_left=4)),
                           ("checking", dict(technician_checking=True)),
                           ("locked", dict(technician_locked_s=300))],
        "technician": [("gathering", {}),
                       ("status", dict(technician_status=TECHNICIAN_STATUS, technician_action=TechnicianAction.TEST_PRINT,
                                       technician_outcome="failed")),
                       ("out_of_service", dict(technician_status=TECHNICIAN_STATUS, taken_out_of_service=True,
                                               technician_action=TechnicianAction.LIGHT_WALK,
                                               technician_outcome="under_way"))],
    }
    steps = {}
    for step, name in SCREENS.items():
        steps.setdefault(name, step)
    steps["out_of_service"] = Step.OUT_OF_SERVICE
    for name, step in sorted(steps.items()):
        for label, fields in special.get(name, [("plain", {})]):
            yield name, label, step, fields


def cases(only: set[str] | None = None) -> list[Case]:
    from kiosk.events import TextSize
    from kiosk.session import View

    from kiosk.ports.outbox import LinkState

    # The header's link badge in each of its states: the longest is offline, at extra large.
    links = {TextSize.NORMAL: LinkState.ONLINE, TextSize.LARGE: LinkState.UNKNOWN,
             TextSize.EXTRA_LARGE: LinkState.OFFLINE}
    found = []
    for name, label, step, fields in representative_views():
        if only and name not in only:
            continue
        for language in ("ar", "en"):
            values = {k: (v[language] if k == "holder_name" else v) for k, v in fields.items()}
            for size in TextSize:
                for contrast in (False, True) if size is TextSize.EXTRA_LARGE else (False,):
                    view = View(step, language, text_size=size, high_contrast=contrast,
                                **{"link": links[size], **values})
                    found.append(Case(name, label, view))
    return found


# ---------------------------------------------------------------- checking a laid-out screen


def _rect(widget):
    x, y = widget.to_window(*widget.pos)
    return (x, y, x + widget.width, y + widget.height)


def _chain(widget):
    while widget is not None:
        yield widget
        if widget.parent is widget:
            return
        widget = widget.parent


def _shown(widget) -> bool:
    return all(w.opacity > 0 for w in _chain(widget)) and widget.width > 0 and widget.height > 0


def _intersection(a, b):
    return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))


def _name(widget) -> str:
    tag = getattr(widget, "tap_id", "") or getattr(widget, "logical", "") or getattr(widget, "text", "")
    return "%s(%s)" % (type(widget).__name__, str(tag).replace("\n", " ")[:40])


def leaves(app):
    """Every visible thing drawn: labels with text, images, busy rings; each
    with its box clipped by any scroll view it is in, and its region."""
    from kivy.uix.image import Image
    from kivy.uix.label import Label
    from kivy.uix.screenmanager import ScreenManager
    from kivy.uix.scrollview import ScrollView

    from screens.kiosk_app import IdleWarning
    from screens.widgets import BusyIndicator

    found = []
    for widget in app.root.walk(restrict=True):
        if isinstance(widget, Label):
            if not widget.text.strip():
                continue
        elif isinstance(widget, Image):
            if widget.texture is None:
                continue
        elif not (isinstance(widget, BusyIndicator) and widget.active):
            continue
        if not _shown(widget):
            continue
        chain = list(_chain(widget))
        rect = _rect(widget)
        scroll = next((w for w in chain[1:] if isinstance(w, ScrollView)), None)
        if scroll is not None:
            rect = _intersection(rect, _rect(scroll))
            if rect[2] - rect[0] <= 0 or rect[3] - rect[1] <= 0:
                continue
        if any(isinstance(w, IdleWarning) for w in chain):
            region = "overlay"
        elif any(isinstance(w, ScreenManager) for w in chain):
            region = "screen"
        else:
            region = "header"
        found.append((widget, rect, region))
    return found


def drawn_size(label):
    """The size the label's text takes when nothing wraps or clips it."""
    from kivy.core.text import Label as CoreLabel

    options = label._label.options
    core = CoreLabel(text=label.text, font_size=options["font_size"], font_name=label.font_name,
                     bold=label.bold, italic=label.italic, line_height=label.line_height)
    core.refresh()
    return core.content_width, core.content_height


def background(app, label, region):
    from screens.widgets import KioskButton
    if isinstance(label, KioskButton):
        if label.kind in ("primary", "secondary", "key"):
            return tuple(label.colour)
        return tuple(app.bar) if region == "header" else tuple(app.paper)
    return {"header": tuple(app.bar), "overlay": tuple(app.surface)}.get(region, tuple(app.paper))


def check(app, case: Case) -> list[str]:
    from kivy.core.window import Window
    from kivy.uix.label import Label

    from screens.widgets import BidiText, contrast_ratio

    where = "%s[%s] %s %s%s" % (case.screen, case.label, case.view.language, case.view.text_size.value,
                                " high-contrast" if case.view.high_contrast else "")
    problems = []
    found = leaves(app)
    window = (0, 0, Window.width, Window.height)
    below_header = _rect(app.manager)
    for widget, rect, region in found:
        what = "%s: %s" % (where, _name(widget))
        if isinstance(widget, Label):
            pad = widget.padding
            width, height = drawn_size(widget)
            room = (widget.width - pad[0] - pad[2], widget.height - pad[1] - pad[3])
            if width > room[0] + SLACK or height > room[1] + SLACK:
                problems.append("%s: text %dx%d does not fit its box %dx%d" % (what, width, height, *room))
            if isinstance(widget, BidiText) and widget.opacity == 1 and not widget.disabled:
                ratio = contrast_ratio(widget.drawn_colour(), background(app, widget, region))
                least = 7.0 if app.high_contrast else 4.5
                if ratio < least:
                    problems.append("%s: contrast %.1f:1 below %.1f:1" % (what, ratio, least))
        bounds = below_header if region == "screen" else window
        if rect[0] < bounds[0] - SLACK or rect[1] < bounds[1] - SLACK or rect[2] > bounds[2] + SLACK \
                or rect[3] > bounds[3] + SLACK:
            problems.append("%s: off the %s at %s" % (what, "screen" if region != "screen" else "room below the header",
                                                      tuple(round(v) for v in rect)))
    for i, (a, ra, region_a) in enumerate(found):
        for b, rb, region_b in found[i + 1:]:
            if (region_a == "overlay") != (region_b == "overlay"):
                continue                      # the idle warning is over everything, by design
            x0, y0, x1, y1 = _intersection(ra, rb)
            if x1 - x0 > SLACK and y1 - y0 > SLACK:
                problems.append("%s: %s overlaps %s by %dx%d" % (where, _name(a), _name(b), x1 - x0, y1 - y0))
    return problems


def check_qr(app, case: Case, screenshot) -> list[str]:
    """A wallet's request on the paying screen: large, whole pixels a module, and readable
    from the screen as a phone would read it. `screenshot(label)` saves the window, answers the path."""
    import zxingcpp
    from PIL import Image

    from screens.paying import paying_for
    from screens.qr_code import qr_matrix

    view = case.view
    if case.screen != "paying" or not paying_for(view).qr:
        return []
    where = "%s[%s] %s %s%s" % (case.screen, case.label, view.language, view.text_size.value,
                                " high-contrast" if view.high_contrast else "")
    qr = app.manager.get_screen("paying").ids.qr
    if not qr.modules or qr.texture is None or not _shown(qr):
        return ["%s: no QR code shown" % where]
    problems = []
    if qr.width < QR_LEAST_SIDE or qr.width / qr.modules < QR_LEAST_MODULE:
        problems.append("%s: QR code %dx%d px (%d modules) is too small" % (where, qr.width, qr.height, qr.modules))
    with Image.open(screenshot("qr-" + case.label)) as shot:
        shot = shot.convert("L")
        read = [result.text for result in zxingcpp.read_barcodes(shot)]
        # Module by module as qr_code made it, top row first: drawn whole and not mirrored (a decoder reads both).
        made = qr_matrix(view.payment_qr)
        module = qr.width / qr.modules
        left, bottom = qr.to_window(*qr.pos)
        top = shot.height - (bottom + qr.height)
        seen = [[shot.getpixel((int(left + (col + 0.5) * module), int(top + (row + 0.5) * module))) < 128
                 for col in range(qr.modules)] for row in range(qr.modules)]
    if read != [view.payment_qr]:
        problems.append("%s: the QR code on the screen reads %r" % (where, read))
    if seen != made:
        problems.append("%s: the QR code on the screen is not the one made for the request" % where)
    return problems


def signature(app):
    return tuple((id(w), tuple(round(v) for v in rect), getattr(w, "text", "")) for w, rect, _ in leaves(app))


# ---------------------------------------------------------------- the walk, in the app


class StandInRuntime:
    """What KioskApp needs of the runtime: the first view, and somewhere to send events."""

    def __init__(self, view) -> None:
        self._view = view
        self.events: list = []
        self.session = self

    def view(self):
        return self._view

    def listen(self, _callback) -> None:
        pass

    def dispatch(self, event) -> None:
        self.events.append(event)

    def tick(self) -> None:
        pass

    def touched(self) -> None:
        pass


def walk(app, runtime, all_cases: list[Case], out: Path, report: dict, every_shot: bool = False):
    """A generator run one step per frame: show, let it settle, check, screenshot."""
    from kivy.core.window import Window

    from kiosk.events import AudioGuidanceChosen, ContrastChosen, TextSize, TextSizeChosen
    from screens.journey import Tap

    def settle():
        last, stable = None, 0
        for _ in range(120):
            yield
            now = signature(app)
            stable = stable + 1 if now == last else 0
            last = now
            if stable >= 3:
                return

    def screenshot(label):
        target = out / "screens" / (label + ".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        written = Window.screenshot(name=str(target))
        os.replace(written, target)
        report["screenshots"].append(str(target.relative_to(out)))
        return target

    def qr_made(case):
        """A wallet request's QR code is made on a worker thread: wait for it to come (a few frames)."""
        from screens.paying import paying_for
        if case.screen != "paying" or not paying_for(case.view).qr:
            return
        qr = app.manager.get_screen("paying").ids.qr
        for _ in range(600):
            if qr.modules:
                return
            yield

    def name(case):
        return "%s-%s-%s-%s%s" % (case.screen, case.label, case.view.language, case.view.text_size.value,
                                  "-contrast" if case.view.high_contrast else "")

    shots = set(SHOTS)
    labelled = set(LABELLED_SHOTS)
    for case in all_cases:
        app._show(case.view)
        yield from qr_made(case)
        yield from settle()
        report["cases"].append({"screen": case.screen, "view": case.label, "language": case.view.language,
                                "size": case.view.text_size.value, "high_contrast": case.view.high_contrast})
        report["problems"] += check(app, case)
        report["problems"] += check_qr(app, case, lambda label: screenshot(name(case) + "-" + label))
        key = (case.screen, case.view.language, case.view.text_size.value, case.view.high_contrast)
        if key in shots:
            shots.discard(key)
            screenshot("%s-%s-%s%s" % (case.screen, case.view.language, case.view.text_size.value,
                                       "-contrast" if case.view.high_contrast else ""))
        labelled_key = (case.screen, case.label) + key[1:]
        if labelled_key in labelled or every_shot:
            labelled.discard(labelled_key)
            screenshot(name(case))

    # The controls answer a real touch: on the attract screen and in the header.
    from kiosk.session import Step, View
    for view in (View(Step.ATTRACT, "ar"), View(Step.IDENTITY, "en", holder_name="Test")):
        for tap_id in ("text_large", "text_extra_large", "contrast") + (("audio", "listen") if view.step is Step.IDENTITY else ()):
            app._show(view)
            yield from settle()
            targets = [w for w, _rect, _region in leaves(app) if getattr(w, "tap_id", "") == tap_id and not w.disabled]
            if len(targets) != 1:
                report["problems"].append("%s: %d touchable %s" % (view.step.value, len(targets), tap_id))
                continue
            touch = Tap(*targets[0].to_window(*targets[0].center))
            touch.touch_down()
            yield
            touch.touch_up()
            yield
    report["taps"] = [type(e).__name__ + ":" + str(getattr(e, "size", getattr(e, "high", getattr(e, "on", ""))))
                      for e in runtime.events]
    report["taps_expected"] = [type(e).__name__ + ":" + str(getattr(e, "size", getattr(e, "high", getattr(e, "on", ""))))
                               for e in (TextSizeChosen(TextSize.LARGE), TextSizeChosen(TextSize.EXTRA_LARGE),
                                         ContrastChosen(True)) * 2 + (AudioGuidanceChosen(True),)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--every-shot", action="store_true", help="a screenshot of every case, for a person to read")
    args = parser.parse_args(argv)
    for key, value in (("KIVY_NO_ARGS", "1"), ("KIVY_LOG_MODE", "PYTHON"), ("KIVY_NO_FILELOG", "1"),
                       ("KIVY_NO_CONFIG", "1")):
        os.environ.setdefault(key, value)
    from kivy.config import Config
    Config.set("graphics", "width", str(SIZE[0]))
    Config.set("graphics", "height", str(SIZE[1]))
    Config.set("graphics", "fullscreen", "0")
    Config.set("graphics", "resizable", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    from kivy.clock import Clock

    from kiosk.session import Step, View
    from screens.kiosk_app import KioskApp

    all_cases = cases(set(args.only) if args.only else None)
    runtime = StandInRuntime(View(Step.ATTRACT, "ar"))
    report = {"cases": [], "problems": [], "screenshots": [], "taps": [], "taps_expected": []}
    args.out.mkdir(parents=True, exist_ok=True)

    def started(app):
        steps = walk(app, runtime, all_cases, args.out, report, every_shot=args.every_shot)

        def step(_dt):
            try:
                next(steps)
            except StopIteration:
                event.cancel()
                app.stop()
            except Exception as error:      # a broken walk is a failed test, not a hung one
                report["problems"].append("the walk failed: %r" % (error,))
                event.cancel()
                app.stop()
                raise
        event = Clock.schedule_interval(step, 0)

    try:
        KioskApp(runtime, on_started=started).run()
    finally:
        (args.out / "fit.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    for problem in report["problems"]:
        print(problem)
    print("%d cases, %d problems" % (len(report["cases"]), len(report["problems"])))
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
