"""The Kivy application: one window, a header, the screens, the idle warning.

It owns no logic: it hands every touch to the runtime as an event and shows
every View the runtime hands back. Worker threads reach it only through
Kivy's Clock.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.factory import Factory
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ObjectProperty, StringProperty
from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

from kiosk import fonts, i18n
from kiosk.bidi_text import is_rtl
from kiosk.events import Event, LanguageChosen
from kiosk.session import View
from screens import SCREENS
from screens import widgets  # noqa: F401  (the rules kiosk_app.kv uses: BidiLabel, KioskButton)

if TYPE_CHECKING:
    from kiosk.runtime import Runtime

log = logging.getLogger(__name__)

# The class of each screen by name (module, class), imported when the screen is first
# shown: each module loads its .kv rules, and Kivy compiles them as it reads them.
_CLASSES = {
    "attract": ("screens.attract", "AttractScreen"),
    "pin_entry": ("screens.pin_entry", "PinEntryScreen"),
    "identity": ("screens.identity", "IdentityScreen"),
    "catalogue": ("screens.catalogue", "CatalogueScreen"),
    "confirm": ("screens.confirm", "ConfirmScreen"),
}
_MESSAGE = ("screens.message", "MessageScreen")   # every other screen says one thing

# Where the header (title and language switch) is hidden.
_BARE_SCREENS = ("attract", "out_of_service")


class IdleWarning(AnchorLayout):
    """'Are you still there?' over everything; the touch that dismisses it
    goes no further, so it cannot press a button by accident."""

    shown = BooleanProperty(False)

    def on_touch_down(self, touch):
        return True if self.shown else super().on_touch_down(touch)


class KioskApp(App):
    title = "Citizen kiosk"
    language = StringProperty("ar")
    rtl = BooleanProperty(True)
    view = ObjectProperty(None, allownone=True)
    screen_name = StringProperty("")
    font_regular = StringProperty(str(fonts.SCREEN_REGULAR))
    font_bold = StringProperty(str(fonts.SCREEN_BOLD))

    def __init__(self, runtime: "Runtime", *, on_started: Callable[["KioskApp"], None] | None = None,
                 **kwargs) -> None:
        """`runtime` is started already, and posts its results through Kivy's Clock."""
        super().__init__(**kwargs)
        self.runtime = runtime
        self._on_started = on_started
        self.manager: ScreenManager | None = None

    # ------------------------------------------------------------ Kivy

    def build(self):
        Builder.load_file(str(Path(__file__).with_name("kiosk_app.kv")))
        root = Factory.KioskRoot()
        self.manager = root.ids.manager
        self.manager.transition = NoTransition()
        self.runtime.listen(self._show)
        self._show(self.runtime.session.view())
        Window.bind(on_touch_down=self._touched)
        Clock.schedule_interval(lambda _dt: self.runtime.tick(), 1.0)
        return root

    def on_start(self) -> None:
        if self._on_started is not None:
            self._on_started(self)


    # ------------------------------------------------------------ for the screens

    def send(self, event: Event) -> None:
        self.runtime.dispatch(event)

    def tr(self, msgid: str, language: str | None = None, **values: object) -> str:
        return i18n.text(msgid, language or self.language, **values)

    def switch_language(self) -> None:
        other = next((lang for lang in ("ar", "en") if lang != self.language), self.language)
        self.send(LanguageChosen(other))

    # ------------------------------------------------------------ internals

    def _touched(self, *_args) -> None:
        self.runtime.touched()

    def _show(self, view: View) -> None:
        self.language = view.language
        self.rtl = is_rtl(view.language)
        self.view = view
        name = SCREENS[view.step]
        screen = self._screen(name)
        screen.show(view)
        if self.manager.current != name:
            self.manager.current = name
            log.info("screen.shown name=%s", name)
        self.screen_name = name

    def _screen(self, name: str) -> Screen:
        """The screen called `name`, built the first time it is needed: only
        the first one shown is built before the kiosk's first frame."""
        if not self.manager.has_screen(name):
            module, cls = _CLASSES.get(name, _MESSAGE)
            self.manager.add_widget(getattr(importlib.import_module(module), cls)(name=name))
        return self.manager.get_screen(name)
