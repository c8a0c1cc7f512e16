"""Widgets every screen uses: text that reads right in Arabic, big buttons.

`BidiLabel` takes logical text and a language and shows it through
kiosk.bidi_text, the one shaping and bidi helper: wrapped on the logical
text first, so the lines of a paragraph stay in order, then each line shaped
and reordered. `KioskButton` is a BidiLabel that can be touched; its
`tap_id` names it for the journey runner.

The citizen's text size and contrast reach every screen through these two
widgets. A kv file gives the size and colour of the normal theme
(`font_size: '34sp'`, `color: GREEN`); the widget draws them scaled by
`font_scale` (the app's `text_scale`) and, in high contrast, in the colour of
the same role in `HIGH_CONTRAST` (green text turns yellow on black). So no
screen's kv needs to know the theme, and a kv rule of one screen never fights
the theme's binding (in kv, a later rule's constant does not stop an earlier
rule's binding from firing). A button is at least `min_height` tall and
grows with its text.
"""

from __future__ import annotations

from pathlib import Path

from kivy.clock import Clock
from kivy.core.text import Label as CoreLabel
from kivy.lang import Builder
from kivy.metrics import dp
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, OptionProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from kiosk.bidi_text import display_lines, is_rtl

# The two palettes, by role. Normal: dark green on warm paper. High contrast:
# white and yellow on black (21:1 and 15:1), thick outlines.
NORMAL = {
    "paper": (0.96, 0.95, 0.92, 1),
    "ink": (0.11, 0.16, 0.17, 1),
    "muted": (0.35, 0.38, 0.38, 1),
    "accent": (0.06, 0.36, 0.29, 1),          # green: titles, buttons
    "accent_down": (0.04, 0.26, 0.21, 1),
    "accent_text": (1, 1, 1, 1),                # text on a primary button
    "surface": (1, 1, 1, 1),                  # secondary buttons, dialogs
    "surface_down": (0.88, 0.93, 0.90, 1),
    "danger": (0.70, 0.15, 0.12, 1),
    "bar": (0.06, 0.36, 0.29, 1),             # the header
    "bar_text": (1, 1, 1, 1),
    "chosen": (1, 1, 1, 0.22),                # behind the chosen control in the header
    "track": (0.85, 0.88, 0.86, 1),           # the busy indicator's ring
}
HIGH_CONTRAST = {
    "paper": (0, 0, 0, 1),
    "ink": (1, 1, 1, 1),
    "muted": (1, 1, 1, 1),
    "accent": (1, 0.86, 0, 1),
    "accent_down": (0.80, 0.69, 0, 1),
    "accent_text": (0, 0, 0, 1),
    "surface": (0, 0, 0, 1),
    "surface_down": (0.25, 0.25, 0.25, 1),
    "danger": (1, 0.62, 0.58, 1),
    "bar": (0, 0, 0, 1),
    "bar_text": (1, 1, 1, 1),
    "chosen": (1, 0.86, 0, 0.35),
    "track": (0.35, 0.35, 0.35, 1),
}
LINE_WIDTH = {False: 1.6, True: 3.0}     # outlines, in dp: thick in high contrast

# What a button's text is drawn in, by kind, in high contrast.
_BUTTON_ROLES = {"primary": "accent_text", "secondary": "accent", "key": "accent", "quiet": "accent", "bar": "bar_text"}


def contrast_colour(colour) -> tuple:
    """The high-contrast colour for text given in a normal-theme colour: a
    red stays a (light) red, any other strong colour turns yellow, greys and
    ink turn white."""
    r, g, b, a = tuple(colour) + (1,) * (4 - len(colour))
    if max(r, g, b) - min(r, g, b) < 0.2:
        role = "ink"
    elif r > g + 0.3 and r > b + 0.3:
        role = "danger"
    else:
        role = "accent"
    return HIGH_CONTRAST[role][:3] + (a,)


def contrast_ratio(fore, back) -> float:
    """WCAG 2 contrast ratio of two sRGB colours (alpha ignored)."""
    def luminance(c):
        lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in c[:3]]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    hi, lo = sorted((luminance(fore), luminance(back)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


class BidiText:
    """Mixed into a Label: `logical` text in `language`, shown shaped and in order."""

    logical = StringProperty("")
    language = StringProperty("ar")
    # 'start' follows the reading direction: right in Arabic, left in English.
    align = OptionProperty("start", options=("start", "center", "end"))
    # The citizen's text size (the app's text_scale): font_size is the size at normal text.
    font_scale = NumericProperty(1.0)
    # False for the controls that choose the size: they keep theirs.
    scales_with_text = BooleanProperty(True)
    # High contrast: `color` is the normal theme's, drawn in its high-contrast role.
    contrast = BooleanProperty(False)
    # How tall the wrapped lines are, and how wide the text is unwrapped, padding included.
    text_height = NumericProperty(0)
    natural_width = NumericProperty(0)

    def __init__(self, **kwargs):
        self._refresh_trigger = Clock.create_trigger(self._refresh, -1)
        super().__init__(**kwargs)
        self.fbind("logical", self._refresh_trigger)
        self.fbind("language", self._refresh_trigger)
        self.fbind("width", self._refresh_trigger)
        self.fbind("font_size", self._refresh_trigger)
        self.fbind("font_scale", self._refresh_trigger)
        self.fbind("font_name", self._refresh_trigger)
        self.fbind("align", self._refresh_trigger)
        self.fbind("padding", self._refresh_trigger)
        self.fbind("font_scale", self._trigger_texture_update, "font_scale")
        self.fbind("contrast", self._trigger_texture_update, "contrast")
        self._refresh()

    @property
    def drawn_font_size(self) -> float:
        return self.font_size * self.font_scale

    def drawn_colour(self) -> tuple:
        return contrast_colour(self.color) if self.contrast else tuple(self.color)

    def _create_label(self):
        super()._create_label()
        self._theme_options()

    def _trigger_texture_update(self, name=None, source=None, value=None):
        if name not in ("font_scale", "contrast"):
            super()._trigger_texture_update(name, source, value)
        self._theme_options()
        self._trigger_texture()

    def _theme_options(self) -> None:
        """What the core label draws: the scaled size, the theme's colour."""
        if getattr(self, "_label", None) is None:
            return
        self._label.options["font_size"] = self.drawn_font_size
        if not self.disabled:
            self._label.options["color"] = self.drawn_colour()

    def _refresh(self, *_args) -> None:
        rtl = is_rtl(self.language)
        self.halign = {"start": "right" if rtl else "left", "center": "center",
                       "end": "left" if rtl else "right"}[self.align]
        room = max(self.width - self.padding[0] - self.padding[2], 40)
        measurer = CoreLabel(font_name=self.font_name, font_size=self.drawn_font_size, bold=self.bold)
        measure = lambda s: measurer.get_extents(s)[0]  # noqa: E731
        lines = display_lines(self.logical, self.language, room, measure)
        self.text = "\n".join(lines)
        line_height = measurer.get_extents("Ag")[1] * self.line_height
        self.text_height = len(lines) * line_height + self.padding[1] + self.padding[3]
        unwrapped = display_lines(self.logical, self.language, float("inf"), measure)
        self.natural_width = max(map(measure, unwrapped), default=0) + self.padding[0] + self.padding[2]


class BidiLabel(BidiText, Label):
    """A paragraph: as tall as its wrapped lines."""


class KioskButton(BidiText, ButtonBehavior, Label):
    """A button at least `min_height` tall, taller when its text needs it.

    `height=` given to the constructor is taken as the least height, so a
    screen that builds its buttons in code keeps its design and the text
    still fits at every size."""

    tap_id = StringProperty("")
    kind = OptionProperty("primary", options=("primary", "secondary", "quiet", "key", "bar"))
    colour = ListProperty([0, 0, 0, 1])
    min_height = NumericProperty(dp(76))
    chosen = BooleanProperty(False)     # the current choice among several (the text sizes)
    filled = BooleanProperty(False)     # drawn filled with the accent colour (widgets.kv)

    def __init__(self, **kwargs):
        if "height" in kwargs:
            kwargs.setdefault("min_height", kwargs.pop("height"))
        super().__init__(**kwargs)
        self.fbind("filled", self._trigger_texture_update, "contrast")

    def drawn_colour(self) -> tuple:
        if self.contrast:
            return HIGH_CONTRAST["accent_text" if self.filled else _BUTTON_ROLES[self.kind]]
        return tuple(self.color)


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
