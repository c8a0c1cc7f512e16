"""What every screen shares: it shows a View and passes touches on as events."""

from __future__ import annotations

from kivy.app import App
from kivy.properties import ObjectProperty
from kivy.uix.screenmanager import Screen

from kiosk.events import Event
from kiosk.session import View


class KioskScreen(Screen):
    view = ObjectProperty(None, allownone=True)

    def show(self, view: View) -> None:
        self.view = view

    def send(self, event: Event) -> None:
        App.get_running_app().send(event)

    def tr(self, msgid: str, **values: object) -> str:
        return App.get_running_app().tr(msgid, **values)
