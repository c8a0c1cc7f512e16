"""Widgets every screen uses: text that reads right in Arabic, big buttons.

`BidiLabel` takes logical text and a language and shows it through
kiosk.bidi_text, the one shaping and bidi helper: wrapped on the logical
text first, so the lines of a paragraph stay in order, then each line shaped
and reordered. `KioskButton` is a BidiLabel that can be touched; its
`tap_id` names it for the journey runner.
"""

from __future__ import annotations

from pathlib import Path

from kivy.clock import Clock
from kivy.core.text import Label as CoreLabel
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, OptionProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from kiosk.bidi_text import display_lines, is_rtl


class BidiText:
    """Mixed into a Label: `logical` text in `language`, shown shaped and in order."""

    logical = StringProperty("")
    language = StringProperty("ar")
    # 'start' follows the reading direction: right in Arabic, left in English.
    align = OptionProperty("start", options=("start", "center", "end"))

    def __init__(self, **kwargs):
        self._refresh_trigger = Clock.create_trigger(self._refresh, -1)
        super().__init__(**kwargs)
        self.fbind("logical", self._refresh_trigger)
        self.fbind("language", self._refresh_trigger)
        self.fbind("width", self._refresh_trigger)
        self.fbind("font_size", self._refresh_trigger)
        self.fbind("font_name", self._refresh_trigger)
        self.fbind("align", self._refresh_trigger)
        self._refresh()

    def _refresh(self, *_args) -> None:
        rtl = is_rtl(self.language)
        self.halign = {"start": "right" if rtl else "left", "center": "center",
                       "end": "left" if rtl else "right"}[self.align]
        room = max(self.width - self.padding[0] - self.padding[2], 40)
        measurer = CoreLabel(font_name=self.font_name, font_size=self.font_size, bold=self.bold)
        lines = display_lines(self.logical, self.language, room, lambda s: measurer.get_extents(s)[0])
        self.text = "\n".join(lines)


class BidiLabel(BidiText, Label):
    """A paragraph: as tall as its wrapped lines."""


class KioskButton(BidiText, ButtonBehavior, Label):
    tap_id = StringProperty("")
    kind = OptionProperty("primary", options=("primary", "secondary", "quiet", "key"))
    colour = ListProperty([0, 0, 0, 1])


class BusyIndicator(Widget):
    """A turning arc: the kiosk is working, please wait."""

    angle = NumericProperty(0)
    active = BooleanProperty(False)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._event = None
        self.fbind("active", self._on_active)

    def _on_active(self, *_args) -> None:
        if self.active and self._event is None:
            self._event = Clock.schedule_interval(self._turn, 1 / 30)
        elif not self.active and self._event is not None:
            self._event.cancel()
            self._event = None

    def _turn(self, dt: float) -> None:
        self.angle = (self.angle - 360 * dt * 0.8) % 360


Builder.load_file(str(Path(__file__).with_name("widgets.kv")))
