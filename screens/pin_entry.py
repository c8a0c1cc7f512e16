"""The on-screen PIN keypad. Digits go straight to the session; the screen
shows only how many were typed."""

from pathlib import Path

from kivy.lang import Builder
from kivy.properties import StringProperty

from kiosk import i18n
from kiosk.events import Cancel, PinDigit, PinErase, PinSubmit
from kiosk.session import PIN_MIN_DIGITS, View
from screens.base import KioskScreen


class PinEntryScreen(KioskScreen):
    dots = StringProperty("")
    warning = StringProperty("")

    def show(self, view: View) -> None:
        super().show(view)
        self.dots = " ".join("●" * view.pin_length) if view.pin_length else ""
        self.warning = i18n.text("pin.tries_left", view.language, tries=view.tries_left) \
            if view.tries_left is not None else ""
        self.ids.key_ok.disabled = view.pin_length < PIN_MIN_DIGITS

    def digit(self, digit: str) -> None:
        self.send(PinDigit(digit))

    def erase(self) -> None:
        self.send(PinErase())

    def submit(self) -> None:
        self.send(PinSubmit())

    def cancel(self) -> None:
        self.send(Cancel())


Builder.load_file(str(Path(__file__).with_name("pin_entry.kv")))
