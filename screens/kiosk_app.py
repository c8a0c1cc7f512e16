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
from kivy.properties import BooleanProperty, ColorProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

from kiosk import fonts, i18n
from kiosk.bidi_text import is_rtl, use_screen_digits
from kiosk.config import AudioConfig
from kiosk.events import AudioGuidanceChosen, ContrastChosen, Event, LanguageChosen, TextSize, TextSizeChosen
from kiosk.session import View
from screens import SCREENS
from screens import widgets  # (the rules kiosk_app.kv uses: BidiLabel, KioskButton; the palettes)
from screens.audio import Guide, PromptPlayer
from screens.prompts import prompt_for

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
    "paying": ("screens.paying", "PayingScreen"),
    "technician_pin": ("screens.technician_pin", "TechnicianPinScreen"),
    "technician": ("screens.technician", "TechnicianScreen"),
}
_MESSAGE = ("screens.message", "MessageScreen")   # every other screen says one thing

# Where the header (title, language switch, text size, contrast, listen) is hidden.
_BARE_SCREENS = ("attract", "out_of_service")

# How much larger every screen's text is drawn at each of the citizen's sizes.
TEXT_SCALES = {TextSize.NORMAL: 1.0, TextSize.LARGE: 1.25, TextSize.EXTRA_LARGE: 1.5}


class IdleWarning(AnchorLayout):
    """'Are you still there?' over everything; the touch that dismisses it
    goes no further, so it cannot press a button by accident."""

    shown = BooleanProperty(False)
    seconds = NumericProperty(0)     # left before the session ends, counted down on screen
    total = NumericProperty(1)       # what it was when the warning came: the ring's full turn

    def on_touch_down(self, touch):
        return True if self.shown else super().on_touch_down(touch)

    def on_seconds(self, _widget, seconds) -> None:
        self.total = max(self.total, seconds, 1)

    def on_shown(self, _widget, shown) -> None:
        if not shown:                # the next warning starts a full turn again
            self.total = max(self.seconds, 1)


class KioskApp(App):
    title = "Citizen kiosk"
    language = StringProperty("ar")
    rtl = BooleanProperty(True)
    view = ObjectProperty(None, allownone=True)
    screen_name = StringProperty("")
    prompt_name = StringProperty("")     # the spoken prompt of what is shown (screens.prompts)
    font_regular = StringProperty(str(fonts.SCREEN_REGULAR))
    font_bold = StringProperty(str(fonts.SCREEN_BOLD))
    # The citizen's choices, from the view: what every widget's size and colours follow.
    text_size = StringProperty(TextSize.NORMAL.value)
    text_scale = NumericProperty(1.0)
    high_contrast = BooleanProperty(False)
    audio_guidance = BooleanProperty(False)
    link = StringProperty("unknown")     # the link to central: online, offline or unknown (the LinkBadge)
    # The palette by role (widgets.NORMAL or widgets.HIGH_CONTRAST), and outlines' width in dp.
    paper = ColorProperty(widgets.NORMAL["paper"])
    ink = ColorProperty(widgets.NORMAL["ink"])
    muted = ColorProperty(widgets.NORMAL["muted"])
    accent = ColorProperty(widgets.NORMAL["accent"])
    accent_down = ColorProperty(widgets.NORMAL["accent_down"])
    accent_text = ColorProperty(widgets.NORMAL["accent_text"])
    surface = ColorProperty(widgets.NORMAL["surface"])
    surface_down = ColorProperty(widgets.NORMAL["surface_down"])
    danger = ColorProperty(widgets.NORMAL["danger"])
    bar = ColorProperty(widgets.NORMAL["bar"])
    bar_text = ColorProperty(widgets.NORMAL["bar_text"])
    chosen = ColorProperty(widgets.NORMAL["chosen"])
    track = ColorProperty(widgets.NORMAL["track"])
    line_width = NumericProperty(widgets.LINE_WIDTH[False])

    def __init__(self, runtime: "Runtime", *, on_started: Callable[["KioskApp"], None] | None = None,
                 audio: AudioConfig = AudioConfig(), digits: str = "western", **kwargs) -> None:
        """`runtime` is started already, and posts its results through Kivy's Clock; `audio`
        says where the spoken prompts are; `digits` are the digits Arabic text shows
        (``[display] digits``)."""
        super().__init__(**kwargs)
        use_screen_digits(digits)
        self.runtime = runtime
        self.guide = Guide(PromptPlayer(audio.prompts))
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

    def listen(self) -> None:
        """Speak the prompt of the screen shown, in the session's language."""
        self.guide.listen(self.prompt_name or self.screen_name, self.language)

    def switch_language(self) -> None:
        other = next((lang for lang in ("ar", "en") if lang != self.language), self.language)
        self.send(LanguageChosen(other))

    def choose_text_size(self, size: str) -> None:
        self.send(TextSizeChosen(TextSize(size)))

    def toggle_contrast(self) -> None:
        self.send(ContrastChosen(not self.high_contrast))

    def toggle_audio_guidance(self) -> None:
        self.send(AudioGuidanceChosen(not self.audio_guidance))

    # ------------------------------------------------------------ internals

    def _touched(self, *_args) -> bool:
        """Any touch gives more time. One that dismisses the idle warning goes no
        further: the session hides the warning at once, so the widgets under it
        would otherwise take the touch (a key pressed by accident)."""
        warned = bool(self.view and self.view.idle_warning)
        self.runtime.touched()
        return warned

    def _show(self, view: View) -> None:
        self.language = view.language
        self.rtl = is_rtl(view.language)
        self._follow_choices(view)
        self.link = view.link.value
        self.view = view
        name = SCREENS[view.step]
        screen = self._screen(name)
        screen.show(view)
        if self.manager.current != name:
            self.manager.current = name
            log.info("screen.shown name=%s", name)
        self.screen_name = name
        self.prompt_name = prompt_for(name, view)
        self.guide.shown(self.prompt_name, view.language, view.audio_guidance)

    def _follow_choices(self, view: View) -> None:
        """Text size, contrast and audio guidance as the citizen chose them."""
        self.text_size = TextSize(view.text_size).value
        self.text_scale = TEXT_SCALES[TextSize(view.text_size)]
        self.audio_guidance = view.audio_guidance
        if view.high_contrast != self.high_contrast:
            palette = widgets.HIGH_CONTRAST if view.high_contrast else widgets.NORMAL
            for role, colour in palette.items():
                setattr(self, role, colour)
            self.line_width = widgets.LINE_WIDTH[view.high_contrast]
            self.high_contrast = view.high_contrast

    def _screen(self, name: str) -> Screen:
        """The screen called `name`, built the first time it is needed: only
        the first one shown is built before the kiosk's first frame."""
        if not self.manager.has_screen(name):
            module, cls = _CLASSES.get(name, _MESSAGE)
            self.manager.add_widget(getattr(importlib.import_module(module), cls)(name=name))
        return self.manager.get_screen(name)
