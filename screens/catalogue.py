"""The certificates on offer, each with its fee."""

from pathlib import Path

from kivy.lang import Builder

from kiosk import i18n
from kiosk.events import Cancel, ServiceChosen
from kiosk.session import View
from screens.base import KioskScreen
from screens.widgets import KioskButton


class CatalogueScreen(KioskScreen):
    def show(self, view: View) -> None:
        shown = (view.language, view.services)
        if getattr(self, "_shown", None) != shown:
            self._shown = shown
            grid = self.ids.services
            grid.clear_widgets()
            for service in view.services:
                label = "%s\n%s" % (service.name(view.language), i18n.format_money(service.fee, view.language))
                button = KioskButton(tap_id="service_" + service.code, kind="secondary", language=view.language,
                                     logical=label, font_size="21sp", height=96)
                button.bind(on_release=lambda _b, code=service.code: self.send(ServiceChosen(code)))
                grid.add_widget(button)
        super().show(view)

    def cancel(self) -> None:
        self.send(Cancel())


Builder.load_file(str(Path(__file__).with_name("catalogue.kv")))
