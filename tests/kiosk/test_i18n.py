"""Every text a citizen sees is in both catalogues."""

import re
from pathlib import Path

import pytest

from kiosk import i18n
from kiosk.money import Money
from kiosk.session import Reason, Step, View
from screens import SCREENS

ROOT = Path(__file__).resolve().parents[2]
LITERAL_IDS = re.compile(r"""(?:i18n\.text|\btr|\bt)\(\s*['"]([a-z_]+(?:\.[a-z_]+)+)['"]""")


def ids_used_in_code():
    found = set()
    for path in list(ROOT.glob("kiosk/**/*.py")) + list(ROOT.glob("screens/*.py")) + list(ROOT.glob("screens/*.kv")):
        found |= set(LITERAL_IDS.findall(path.read_text(encoding="utf-8")))
    return found


def test_both_catalogues_hold_the_same_ids():
    assert i18n.message_ids("ar") == i18n.message_ids("en")


def test_every_id_in_the_code_is_in_the_catalogues():
    used = ids_used_in_code()
    assert len(used) > 30
    assert used - i18n.message_ids("ar") == set()


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_its_message(reason):
    assert "reason." + reason.value in i18n.message_ids("ar")


MESSAGE_SCREENS = sorted(set(SCREENS.values()) - {"attract", "pin_entry", "identity", "catalogue", "confirm",
                                                  "technician_pin", "technician"})


@pytest.mark.parametrize("screen", MESSAGE_SCREENS)
def test_every_message_screen_shows_translated_text(screen):
    from screens.message import message_for
    step = next(s for s, name in SCREENS.items() if name == screen)
    for language in ("ar", "en"):
        message = message_for(screen, View(step, language, reason=Reason.NO_READER))
        assert message.title and not re.fullmatch(r"[a-z_.]+", message.title)


def test_arabic_catalogue_is_in_arabic():
    for msgid in i18n.message_ids("ar"):
        text = i18n.text(msgid, "ar")
        if msgid.startswith("language.name.") or msgid in ("pin.ok",):
            continue
        assert re.search(r"[\u0600-\u06FF]", text), msgid


def test_money_is_shown_with_its_currency_in_each_language():
    fee = Money.of(150000, "SYP")
    assert i18n.format_money(fee, "en") == "1,500 SYP"
    assert i18n.format_money(fee, "ar") == "1,500 ل.س"


def test_missing_id_shows_the_id_rather_than_failing():
    assert i18n.text("no.such.message", "en") == "no.such.message"


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_says_what_to_do_next(reason):
    assert "advice." + reason.value in i18n.message_ids("ar")


WAITING_STEPS = {Step.READING_CARD: "reading_card", Step.VERIFYING: "verifying", Step.PREPARING: "preparing",
                 Step.PAYING: "paying", Step.ISSUING: "issuing", Step.PRINTING: "printing",
                 Step.PRINT_WAITING: "print_waiting"}


@pytest.mark.parametrize("step, screen", WAITING_STEPS.items())
@pytest.mark.parametrize("language", ["ar", "en"])
def test_every_waiting_screen_shows_progress_and_what_comes_next(step, screen, language):
    from screens.message import JOURNEY, message_for, progress_text
    assert SCREENS[step] == screen
    message = message_for(screen, View(step, language, reprint_seconds_left=120))
    assert message.busy and 1 <= message.progress <= len(JOURNEY)
    what_next = message.coming or message.note         # print_waiting: its note says what comes next
    assert what_next and not what_next.startswith("next.")
    assert str(len(JOURNEY)) in progress_text(message.progress, language)


def test_the_journey_moves_forward_through_the_waiting_screens():
    from screens.message import message_for
    steps = [message_for(screen, View(step, "en")).progress for step, screen in WAITING_STEPS.items()]
    assert steps == sorted(steps)


@pytest.mark.parametrize("screen, view", [
    ("card_refused", View(Step.CARD_REFUSED, "ar", reason=Reason.CARD_FORGED)),
    ("failed", View(Step.FAILED, "ar", reason=Reason.PRINTER_UNAVAILABLE)),
    ("out_of_service", View(Step.OUT_OF_SERVICE, "ar", reason=Reason.NO_CATALOGUE)),
    ("payment_declined", View(Step.PAYMENT_DECLINED, "ar")),
])
@pytest.mark.parametrize("language", ["ar", "en"])
def test_every_failure_screen_says_what_happened_and_what_to_do(screen, view, language):
    from dataclasses import replace
    from screens.message import message_for
    message = message_for(screen, replace(view, language=language))
    assert message.failure and message.title and message.body and message.advice
    assert message.advice != message.body
    if language == "ar":
        assert re.search(r"[\u0600-\u06FF]", message.advice)


def test_a_failed_request_says_whether_money_moved():
    from screens.message import message_for
    refunded = message_for("failed", View(Step.FAILED, "en", reason=Reason.PRINT_FAILED, refunded=True))
    kept = message_for("failed", View(Step.FAILED, "en", reason=Reason.PRINTER_UNAVAILABLE))
    assert refunded.note == i18n.text("failed.refunded", "en") and kept.note == i18n.text("failed.not_charged", "en")


def test_the_end_screen_sums_up_the_service_the_fee_and_the_serial():
    from kiosk.catalogue import Service
    from screens.message import message_for
    service = Service("family-statement", {"ar": "بيان عائلي", "en": "Family statement"}, Money.of(200000, "SYP"))
    view = View(Step.TAKE_CARD, "en", selected=service, printed=True, serial="2026-ABCD1234")
    assert message_for("take_card", view).summary == (
        "Certificate: Family statement", "Fee paid: 2,000 SYP", "Serial number: 2026-ABCD1234")
    arabic = message_for("take_card", View(Step.TAKE_CARD, "ar", selected=service, printed=True, serial="2026-ABCD1234"))
    assert "بيان عائلي" in arabic.summary[0] and "2,000 ل.س" in arabic.summary[1] and "2026-ABCD1234" in arabic.summary[2]


def test_starting_is_not_out_of_service_and_says_so_in_both_languages():
    from screens.message import message_for
    assert SCREENS[Step.STARTING] == "starting"
    message = message_for("starting", View(Step.STARTING, "ar"))
    assert message.busy and not message.failure
    assert message.title == i18n.text("starting.title", "ar") and message.other_title == i18n.text("starting.title", "en")
