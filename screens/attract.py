"""The idle kiosk: both languages at once, a language to touch or a card to insert."""

from pathlib import Path

from kivy.lang import Builder

from kiosk.events import LanguageChosen
from screens.base import KioskScreen


class AttractScreen(KioskScreen):
    def choose(self, language: str) -> None:
        self.send(LanguageChosen(language))


Builder.load_file(str(Path(__file__).with_name("attract.kv")))
