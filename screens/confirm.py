"""The chosen certificate and its fee, before any money moves."""

from pathlib import Path

from kivy.lang import Builder
from kivy.properties import StringProperty

from kiosk import i18n
from kiosk.events import Back, Pay
from kiosk.session import View
from screens.base import KioskScreen


class ConfirmScreen(KioskScreen):
    service_name = StringProperty("")
    fee = StringProperty("")

    def show(self, view: View) -> None:
        super().show(view)
        if view.selected is not None:
            self.service_name = view.selected.name(view.language)
            self.fee = i18n.text("confirm.fee", view.language,
                                 fee=i18n.format_money(view.selected.fee, view.language))

    def pay(self) -> None:
        self.send(Pay())

    def back(self) -> None:
        self.send(Back())


Builder.load_file(str(Path(__file__).with_name("confirm.kv")))
