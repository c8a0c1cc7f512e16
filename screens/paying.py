"""The paying screen: the service and its fee, and what the payment asks of the citizen now.

By bank card, the terminal beside the screen reads the card: the screen
says to insert, tap or swipe it (and that its PIN is typed on the terminal,
never here), then that the bank is answering. By mobile app, the screen
shows the terminal's payment request as a QR code, large, beside the
instruction and the time left to pay, counted down in the citizen's digits.
A Cancel button stops the terminal while it waits for a card or the app;
once pressed, the screen says it is cancelling until the session moves on.

`paying_for` chooses the texts from the view (pure, tested without a
window); `PayingScreen` shows them, and `QrCode` draws the request.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from kivy.clock import Clock
from kivy.graphics.texture import Texture
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.image import Image

from kiosk import i18n
from kiosk.events import Cancel
from kiosk.ports.payment_terminal import PaymentMethod, PromptKind
from kiosk.session import View
from screens.base import KioskScreen
from screens.message import WAITING, progress_text
from screens.qr_code import QrPixels, qr_pixels
from screens.widgets import KioskButton

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Paying:
    """What the paying screen shows, in the view's language (logical text, Western digits)."""

    title: str
    service: str
    amount: str
    instruction: str
    hint: str = ""                # the bank card's PIN goes on the terminal, never on the screen
    countdown: str = ""           # the wallet request's time left to pay
    qr: str = ""                  # the wallet request to show as a QR code; "" when none is to be paid now
    busy: bool = False            # the bank is answering, or the terminal is being stopped
    cancellable: bool = True      # the Cancel button is shown
    wallet: bool = False


def time_left(seconds: int) -> str:
    """Minutes and seconds, 105 -> '1:45' (the screen gives the digits their shapes)."""
    seconds = max(0, seconds)
    return "%d:%02d" % (seconds // 60, seconds % 60)


def paying_for(view: View) -> Paying:
    """What the paying screen shows for `view`: by card or by app, as the terminal asks now."""
    t = lambda msgid, **values: i18n.text(msgid, view.language, **values)  # noqa: E731
    wallet = view.payment_method is PaymentMethod.WALLET
    service = view.selected.name(view.language) if view.selected is not None else ""
    amount = t("confirm.fee", fee=i18n.format_money(view.selected.fee, view.language)) \
        if view.selected is not None else ""
    title = t("paying.wallet_title" if wallet else "paying.title")
    common = dict(title=title, service=service, amount=amount, wallet=wallet)
    if view.cancelling:
        # The terminal is told to stop; the request must not be paid meanwhile.
        return Paying(instruction=t("paying.cancelling"), busy=True, cancellable=False, **common)
    if wallet:
        if view.payment_prompt is PromptKind.PROCESSING:
            # The app has answered and the bank is deciding: the code is done with, and cannot be stopped.
            return Paying(instruction=t("paying.wallet_processing"), busy=True, cancellable=False, **common)
        if view.payment_seconds_left == 0:
            return Paying(instruction=t("paying.qr_expired"), busy=True, **common)
        if not view.payment_qr:
            return Paying(instruction=t("paying.qr_coming"), busy=True, **common)
        countdown = t("paying.time_left", time=time_left(view.payment_seconds_left)) \
            if view.payment_seconds_left is not None else ""
        return Paying(instruction=t("paying.scan_qr"), countdown=countdown, qr=view.payment_qr, **common)
    if view.payment_prompt is PromptKind.PROCESSING:
        # The card was read and the bank is deciding: the terminal cannot be stopped now.
        return Paying(instruction=t("paying.processing"), busy=True, cancellable=False, **common)
    return Paying(instruction=t("paying.present_card"), hint=t("paying.body"), **common)


class QrCode(Image):
    """A QR code of `data`, as large as `room` allows at a whole number of pixels per module.

    The symbol is made on a worker thread and reaches the screen through Kivy's Clock."""

    data = StringProperty("")
    room = NumericProperty(0)        # the side of the square it may take
    modules = NumericProperty(0)     # of the symbol shown, quiet zone included; 0: none shown

    def on_data(self, _widget, data: str) -> None:
        self.texture = None
        self.modules = 0
        if data:
            threading.Thread(target=self._make, args=(data,), name="qr-code", daemon=True).start()

    def _make(self, data: str) -> None:
        try:
            pixels = qr_pixels(data)
        except Exception as error:       # a request too long for a QR code: said once, the screen stays up
            log.error("paying.qr_failed error=%s length=%d", type(error).__name__, len(data))
            return
        Clock.schedule_once(lambda _dt: self._show(pixels))

    def _show(self, pixels: QrPixels) -> None:
        if pixels.data != self.data:     # another request came meanwhile
            return
        texture = Texture.create(size=(pixels.side, pixels.side), colorfmt="rgba")
        texture.blit_buffer(pixels.rgba, colorfmt="rgba", bufferfmt="ubyte")
        texture.mag_filter = "nearest"
        texture.min_filter = "nearest"
        self.modules = pixels.side
        self.texture = texture


class PayingScreen(KioskScreen):
    title = StringProperty("")
    service = StringProperty("")
    amount = StringProperty("")
    instruction = StringProperty("")
    hint = StringProperty("")
    countdown = StringProperty("")
    progress_label = StringProperty("")
    qr = StringProperty("")
    busy = BooleanProperty(False)
    cancellable = BooleanProperty(False)

    _built_for: tuple = ()

    def show(self, view: View) -> None:
        super().show(view)
        paying = paying_for(view)
        self.title, self.service, self.amount = paying.title, paying.service, paying.amount
        self.instruction, self.hint, self.countdown = paying.instruction, paying.hint, paying.countdown
        self.busy, self.cancellable = paying.busy, paying.cancellable
        self.qr = paying.qr                  # the code and its time left beside the words, while there is one
        self.progress_label = progress_text(WAITING["paying"][0], view.language)
        if (view.language, paying.cancellable) != self._built_for:
            self._build_actions(view.language, paying.cancellable)

    def _build_actions(self, language: str, cancellable: bool) -> None:
        """The Cancel button while the terminal can be stopped, made again only when that changes."""
        self._built_for = (language, cancellable)
        row = self.ids.actions
        row.clear_widgets()
        if cancellable:
            button = KioskButton(tap_id="cancel", kind="secondary", language=language,
                                 logical=i18n.text("button.cancel", language))
            button.bind(on_release=lambda _b: self.send(Cancel()))
            row.add_widget(button)

    def on_leave(self, *args) -> None:
        self.busy = False
        self.qr = ""                     # the texture goes; the next sale makes its own


Builder.load_file(str(Path(__file__).with_name("paying.kv")))
