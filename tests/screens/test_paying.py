"""What the citizen is shown while paying, and after a payment that did not go through,
chosen from the session's view without a window: the paying screen's texts, its QR
code (read back as a phone would), the declined and failed screens' words and buttons.
How it all lays out is tests/screens/test_fit.py's (on Xvfb)."""

from __future__ import annotations

import re

import pytest
import zxingcpp
from PIL import Image

from kiosk import i18n
from kiosk.bidi_text import display_line
from kiosk.catalogue import Service
from kiosk.events import Back, Cancel, RetryPayment
from kiosk.money import Money
from kiosk.ports.payment_terminal import PaymentMethod, PaymentReason, PromptKind
from kiosk.session import Reason, Step, View
from screens.message import message_for
from screens.paying import paying_for, time_left
from screens.qr_code import QUIET_ZONE, qr_matrix, qr_pixels

SERVICE = Service("family-statement", {"ar": "بيان عائلي", "en": "Family statement"}, Money.of(200000, "SYP"))
REQUEST = "fakepay://pay?sale=8f14e45fceea167a5a36dedd4bea2543&amount=200000&currency=SYP"


def wallet_view(language: str = "en", **fields) -> View:
    values = dict(selected=SERVICE, payment_method=PaymentMethod.WALLET, payment_prompt=PromptKind.SCAN_QR,
                  payment_qr=REQUEST, payment_seconds_left=105)
    values.update(fields)
    return View(Step.PAYING, language, **values)


def card_view(language: str = "en", **fields) -> View:
    values = dict(selected=SERVICE, payment_method=PaymentMethod.CARD, payment_prompt=PromptKind.PRESENT_CARD)
    values.update(fields)
    return View(Step.PAYING, language, **values)


def read_qr(data: str) -> list[str]:
    """The QR code as the screen draws it (rows bottom first, as a texture), read by a phone's decoder."""
    pixels = qr_pixels(data)
    picture = Image.frombytes("RGBA", (pixels.side, pixels.side), pixels.rgba).transpose(Image.FLIP_TOP_BOTTOM)
    picture = picture.convert("L").resize((pixels.side * 8, pixels.side * 8), Image.NEAREST)
    return [result.text for result in zxingcpp.read_barcodes(picture)]


# ---------------------------------------------------------------- paying by mobile app


def test_a_wallet_request_is_shown_as_a_qr_code_with_the_time_left_to_pay():
    shown = paying_for(wallet_view())
    assert shown.wallet and shown.qr == REQUEST
    assert read_qr(shown.qr) == [REQUEST]
    assert shown.countdown == "Time left to pay: 1:45"
    assert shown.instruction == i18n.text("paying.scan_qr", "en")
    assert shown.title == "Pay by mobile app"
    assert shown.service == "Family statement" and shown.amount == "Fee: 2,000 SYP"
    assert shown.cancellable and not shown.busy


def test_the_countdown_reads_in_arabic_indic_digits_on_an_arabic_screen_that_shows_them():
    shown = paying_for(wallet_view("ar", payment_seconds_left=65))
    assert shown.countdown == i18n.text("paying.time_left", "ar", time="1:05")
    drawn = display_line(shown.countdown, "ar", digits="arabic-indic")
    assert "١:٠٥" in drawn and not re.search(r"[0-9]", drawn)
    assert "1:05" in display_line(shown.countdown, "ar", digits="western")


@pytest.mark.parametrize("seconds, shown", [(0, "0:00"), (9, "0:09"), (60, "1:00"), (125, "2:05"), (-3, "0:00")])
def test_time_left_is_minutes_and_seconds(seconds, shown):
    assert time_left(seconds) == shown


def is_finder(grid: list[list[bool]], top: int, left: int) -> bool:
    """A QR finder pattern (7x7: dark ring, light ring, dark 3x3) with its top-left module at (top, left)."""
    for r in range(7):
        for c in range(7):
            ring = max(abs(r - 3), abs(c - 3))
            if grid[top + r][left + c] != (ring != 2):
                return False
    return True


def test_the_qr_code_comes_bottom_row_first_as_a_texture_takes_it_never_mirrored():
    pixels = qr_pixels(REQUEST)
    side = pixels.side
    bottom_first = [[pixels.rgba[(y * side + x) * 4] == 0 for x in range(side)] for y in range(side)]
    shown = bottom_first[::-1]                       # as the screen draws it: the texture's first row at the bottom
    assert shown == qr_matrix(REQUEST)
    first, last = QUIET_ZONE, side - QUIET_ZONE - 7
    # Finder patterns top left, top right and bottom left, none bottom right: the code reads the right way round.
    assert is_finder(shown, first, first) and is_finder(shown, first, last) and is_finder(shown, last, first)
    assert not is_finder(shown, last, last)


def test_the_qr_code_is_dark_on_light_with_its_quiet_zone_whatever_the_theme():
    pixels = qr_pixels(REQUEST)
    assert len(pixels.rgba) == pixels.side * pixels.side * 4
    rows = [pixels.rgba[y * pixels.side * 4:(y + 1) * pixels.side * 4] for y in range(pixels.side)]
    white = b"\xff\xff\xff\xff" * pixels.side
    assert rows[:QUIET_ZONE] == [white] * QUIET_ZONE and rows[-QUIET_ZONE:] == [white] * QUIET_ZONE
    assert all(row[:QUIET_ZONE * 4] == white[:QUIET_ZONE * 4] for row in rows)
    assert any(b"\x00\x00\x00\xff" in row for row in rows)


def test_an_expired_request_is_no_longer_shown():
    shown = paying_for(wallet_view(payment_seconds_left=0))
    assert shown.qr == "" and shown.countdown == ""
    assert shown.instruction == i18n.text("paying.qr_expired", "en") and shown.busy and shown.cancellable


def test_once_the_app_has_paid_the_code_goes_and_the_screen_waits_for_the_bank():
    shown = paying_for(wallet_view(payment_prompt=PromptKind.PROCESSING))
    assert shown.qr == "" and shown.countdown == "" and shown.busy and not shown.cancellable
    assert shown.instruction == i18n.text("paying.wallet_processing", "en")


def test_before_the_terminal_answers_with_its_request_the_screen_says_it_is_coming():
    shown = paying_for(wallet_view(payment_qr=None, payment_seconds_left=None))
    assert shown.qr == "" and shown.busy and shown.instruction == i18n.text("paying.qr_coming", "en")


# ---------------------------------------------------------------- paying by bank card


def test_a_card_payment_asks_for_the_card_and_says_where_its_pin_goes():
    shown = paying_for(card_view())
    assert not shown.wallet and shown.qr == "" and shown.countdown == ""
    assert shown.instruction == "Insert, tap or swipe your bank card on the payment terminal."
    assert "never on this screen" in shown.hint
    assert shown.cancellable and not shown.busy


def test_while_the_bank_answers_the_screen_waits_and_offers_no_cancel():
    shown = paying_for(card_view(payment_prompt=PromptKind.PROCESSING))
    assert shown.busy and not shown.cancellable
    assert shown.instruction == i18n.text("paying.processing", "en")


@pytest.mark.parametrize("view", [card_view(cancelling=True), wallet_view(cancelling=True)])
def test_after_cancel_the_screen_says_cancelling_and_hides_the_request(view):
    shown = paying_for(view)
    assert shown.instruction == "Cancelling the payment… Please wait."
    assert shown.busy and not shown.cancellable and shown.qr == ""


@pytest.mark.parametrize("view", [card_view("ar"), wallet_view("ar"), card_view("ar", cancelling=True)])
def test_the_paying_screen_speaks_arabic(view):
    shown = paying_for(view)
    for text in (shown.title, shown.amount, shown.instruction):
        assert re.search(r"[\u0600-\u06FF]", text), text
    assert "2,000 ل.س" in shown.amount


# ---------------------------------------------------------------- declined, and no terminal at all


@pytest.mark.parametrize("language", ["ar", "en"])
def test_each_reason_a_payment_did_not_go_through_has_its_own_words_and_advice(language):
    bodies, advice = set(), set()
    for reason in PaymentReason:
        message = message_for("payment_declined", View(Step.PAYMENT_DECLINED, language, payment_reason=reason))
        for text in (message.body, message.advice):
            assert text and not re.fullmatch(r"[a-z_.]+", text), (reason, text)
        assert message.failure and message.note == i18n.text("payment_declined.body", language)
        bodies.add(message.body)
        advice.add(message.advice)
    assert len(bodies) == len(PaymentReason)
    assert len(advice) == len(PaymentReason)


def test_not_enough_funds_says_so_and_that_nothing_was_charged():
    message = message_for("payment_declined", View(Step.PAYMENT_DECLINED, "en",
                                                   payment_reason=PaymentReason.INSUFFICIENT_FUNDS))
    assert message.body == "Your bank declined the payment: not enough funds."
    assert message.note == "Nothing was charged."
    assert message.advice == "Try another card, or pay by mobile app."


def test_after_a_declined_payment_the_citizen_pays_by_card_or_app_goes_back_or_cancels():
    message = message_for("payment_declined", View(Step.PAYMENT_DECLINED, "en",
                                                   payment_reason=PaymentReason.WRONG_PIN))
    assert [(a.tap_id, a.event) for a in message.actions] == [
        ("retry", RetryPayment(PaymentMethod.CARD)), ("retry_wallet", RetryPayment(PaymentMethod.WALLET)),
        ("back", Back()), ("cancel", Cancel())]
    assert [i18n.text(a.msgid, "en") for a in message.actions] == [
        "Try again by card", "Pay by mobile app", "Back", "Cancel"]


@pytest.mark.parametrize("language", ["ar", "en"])
def test_no_payment_terminal_says_paid_services_are_unavailable_and_nothing_was_charged(language):
    message = message_for("failed", View(Step.FAILED, language, reason=Reason.PAYMENT_UNAVAILABLE))
    assert message.failure
    assert message.body == i18n.text("reason.payment_unavailable", language)
    assert message.advice == i18n.text("advice.payment_unavailable", language)
    assert message.note == i18n.text("failed.not_charged", language)
    if language == "en":
        assert message.body == "The payment terminal is not available right now."
        assert message.advice.startswith("Paid certificates cannot be requested for now.")
