"""The technician's PIN, once the maintenance key is turned: a keypad like the citizen's. Digits go
straight to the session; the screen shows only how many were typed, the check under way, the tries
left and the lockout's countdown. Turning the key back leaves (there is no cancel)."""

from pathlib import Path

from kivy.lang import Builder
from kivy.properties import BooleanProperty, StringProperty

from kiosk import i18n
from kiosk.events import TechnicianPinDigit, TechnicianPinErase, TechnicianPinSubmit
from kiosk.session import View
from kiosk.technician import PIN_MIN_DIGITS
from screens.base import KioskScreen


def pin_notice(view: View) -> str:
    """What the line under the dots says: the lockout, the check, the tries left, or nothing."""
    if view.technician_locked_s is not None:
        return i18n.text("technician.locked", view.language, seconds=view.technician_locked_s)
    if view.technician_checking:
        return i18n.text("technician.checking", view.language)
    if view.technician_tries_left is not None:
        return i18n.text("technician.tries_left", view.language, tries=view.technician_tries_left)
    return ""


class TechnicianPinScreen(KioskScreen):
    dots = StringProperty("")
    notice = StringProperty("")
    warning = BooleanProperty(False)       # the notice is a refusal (wrong PIN, locked out), not the check
    keys_off = BooleanProperty(False)      # locked out or checking: no digit is taken

    def show(self, view: View) -> None:
        super().show(view)
        self.dots = "●" * view.technician_pin_length
        self.notice = pin_notice(view)
        self.warning = view.technician_locked_s is not None or \
            (view.technician_tries_left is not None and not view.technician_checking)
        self.keys_off = view.technician_locked_s is not None or view.technician_checking
        self.ids.key_ok.disabled = self.keys_off or view.technician_pin_length < PIN_MIN_DIGITS

    def digit(self, digit: str) -> None:
        self.send(TechnicianPinDigit(digit))

    def erase(self) -> None:
        self.send(TechnicianPinErase())

    def submit(self) -> None:
        self.send(TechnicianPinSubmit())


Builder.load_file(str(Path(__file__).with_name("technician_pin.kv")))
