"""The idle kiosk: both languages at once, a language to touch or a card to insert, and central's
announcement (kiosk/commands.py), when there is one for this kiosk, in both languages."""

from pathlib import Path

from kivy.lang import Builder
from kivy.properties import StringProperty

from kiosk import i18n
from kiosk.events import LanguageChosen
from kiosk.session import View
from screens.base import KioskScreen


def announcement_line(view: View, language: str) -> str:
    """"Announcement: <its text>" in `language`, or "" when there is none to show."""
    if view.announcement is None:
        return ""
    return "%s: %s" % (i18n.text("attract.announcement", language), view.announcement.text(language))


class AttractScreen(KioskScreen):
    announcement_ar = StringProperty("")
    announcement_en = StringProperty("")

    def show(self, view: View) -> None:
        super().show(view)
        self.announcement_ar = announcement_line(view, "ar")
        self.announcement_en = announcement_line(view, "en")

    def choose(self, language: str) -> None:
        self.send(LanguageChosen(language))


Builder.load_file(str(Path(__file__).with_name("attract.kv")))
