"""The certificates on offer, each with its fee, in categories, a page at a time.

With no category chosen: the most asked certificates, then every category,
so that any certificate is two touches away (a category, then the
certificate). With a category chosen: its certificates, at most six to a
page, with large previous/next page buttons rather than a list a finger has
to scroll, and a way back to the categories. A catalogue without categories
shows its certificates a page at a time.

How much goes on a page is measured, not guessed: each row of buttons is as
tall as its wrapped text needs at the citizen's text size (and never less
than a large target), and a page holds the rows that fit the room the
screen has. At normal text the first screen holds four most asked
certificates and eight categories; at larger text its sections run onto
further pages.

While central cannot be reached (the view's link is offline), every
certificate's button says, under its fee, whether it can still be asked for
(central's offline policy allows a claim: paid now, collected later) or
needs the connection; one that needs it is refused on the next screen,
before anything is paid.

Which page is shown is this screen's own state: the session knows nothing
of pages. It starts again at the first page when the category changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kivy.app import App
from kivy.clock import Clock
from kivy.core.text import Label as CoreLabel
from kivy.lang import Builder
from kivy.metrics import dp, sp
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from kiosk import fonts, i18n
from kiosk.bidi_text import display_lines, is_rtl
from kiosk.catalogue import Category, Service
from kiosk.events import Back, Cancel, CategoryChosen, ServiceChosen
from kiosk.ports.outbox import LinkState
from kiosk.session import View
from screens.base import KioskScreen
from screens.widgets import BidiLabel, KioskButton

SERVICES_PER_PAGE = 6       # at most: two columns of three large buttons
SERVICE_COLUMNS = 2
MOST_ASKED_SHOWN = 4        # on the first screen; every other one is in its category
BUTTON_FONT_SP = 24          # KioskButton's (widgets.kv): the kv rule binds it, so it is not ours to set
SECTION_FONT_SP = 24
CATEGORY_FONT_SP = 21       # four to a row: a little smaller, so that a long name takes two lines, not three
HEADING_FONT_SP = 28        # catalogue.kv's heading
PAGE_FONT_SP = 20           # catalogue.kv's page number
ROW_MIN_DP = 64             # the least height of a button: a large target
ROW_MAX_DP = 116            # rows share out the room left on a page, up to this height
ROW_SPACING_DP = 8
BUTTON_PADDING_DP = (10, 4)  # KioskButton's (widgets.kv)
GREEN = (0.06, 0.36, 0.29, 1)   # the headings' colour (the widgets draw it in high contrast)


def category_columns(text_scale: float) -> int:
    return 4 if text_scale <= 1.0 else 3 if text_scale <= 1.25 else 2


@dataclass(frozen=True)
class Section:
    label: str                                    # "" for none
    buttons: list[tuple[str, str, Callable[[], None], str]]   # (tap id, text, on touch, kind)
    columns: int
    font_sp: int = BUTTON_FONT_SP


@dataclass(frozen=True)
class Row:
    buttons: list[tuple[str, str, Callable[[], None], str]]
    columns: int
    height: float
    font_sp: int = BUTTON_FONT_SP


class CatalogueScreen(KioskScreen):
    page = NumericProperty(0)            # from 0
    pages = NumericProperty(1)
    in_category = BooleanProperty(False)
    heading = StringProperty("")
    heading_height = NumericProperty(0)   # the heading row's, measured with the page (0: no row)

    _shown: tuple | None = None
    _category_code: str | None = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._rebuild = Clock.create_trigger(lambda _dt: self._build(), -1)
        self.ids.body.bind(size=lambda *_a: self._rebuild(), y=lambda *_a: self._rebuild())

    def show(self, view: View) -> None:
        super().show(view)
        code = view.category.code if view.category is not None else None
        if code != self._category_code:
            self._category_code = code
            self.page = 0
        self._build()

    # ------------------------------------------------------------ touches

    def next_page(self) -> None:
        if self.page + 1 < self.pages:
            self.page += 1
            self._build()

    def previous_page(self) -> None:
        if self.page > 0:
            self.page -= 1
            self._build()

    def back(self) -> None:
        self.send(Back())

    def cancel(self) -> None:
        self.send(Cancel())

    # ------------------------------------------------------------ what is shown

    def _row_cost(self) -> float:
        return self.heading_height + dp(10) if self.heading_height > 0 else 0

    def _heading_height(self, scale: float, width: float) -> float:
        """The heading row's height: the heading's wrapped lines, beside the page number."""
        title = CoreLabel(font_name=str(fonts.SCREEN_BOLD), font_size=sp(HEADING_FONT_SP) * scale)
        number = CoreLabel(font_name=str(fonts.SCREEN_REGULAR), font_size=sp(PAGE_FONT_SP) * scale)
        room = width - number.get_extents("Page 00 of 00")[0] - dp(14) - dp(12)
        return max(_lines_height(title, self.heading, self.view.language, room), self._indicator_height(scale) - dp(8)) \
            + dp(8) + dp(4)

    def _indicator_height(self, scale: float) -> float:
        number = CoreLabel(font_name=str(fonts.SCREEN_REGULAR), font_size=sp(PAGE_FONT_SP) * scale)
        return number.get_extents("Ag")[1] + dp(8) + dp(4)

    def _sections(self, view: View, scale: float) -> list[Section]:
        language = view.language
        if view.category is not None or not view.categories:
            return [Section("", [self._service(s, view) for s in view.services], SERVICE_COLUMNS)]
        most_asked = [s for s in view.services if s.rank is not None][:MOST_ASKED_SHOWN]
        sections = [Section(i18n.text("catalogue.most_asked", language),
                            [self._service(s, view) for s in most_asked], SERVICE_COLUMNS)] if most_asked else []
        return sections + [Section(i18n.text("catalogue.categories", language),
                                   [self._category(c, language) for c in view.categories], category_columns(scale),
                                   CATEGORY_FONT_SP)]

    def _service(self, service: Service, view: View):
        label = service_label(service, view.language, offline=view.link is LinkState.OFFLINE)
        return ("service_" + service.code, label, lambda: self.send(ServiceChosen(service.code)), "secondary")

    def _category(self, category: Category, language: str):
        return ("category_" + category.code, category.name(language),
                lambda: self.send(CategoryChosen(category.code)), "primary")

    # ------------------------------------------------------------ laying out

    def _build(self) -> None:
        view = self.view
        app = App.get_running_app()
        body = self.ids.body
        if view is None or app is None:
            return
        scale = app.text_scale
        shown = (view.language, view.categories, view.category, view.services, view.link, self.page, scale,
                 round(body.width), round(body.height), round(body.y))
        if shown == self._shown:
            return
        self._shown = shown
        if view.category is not None:
            self.heading = i18n.text("catalogue.in_category", view.language, category=view.category.name(view.language))
        elif view.categories:          # the sections' own headings say what they hold
            self.heading = ""
        else:
            self.heading = i18n.text("catalogue.title", view.language)
        self.in_category = view.category is not None
        # The room the body has with no heading row, then less the heading row this page needs
        # (measured, and given to the row, so the room never depends on what was shown before).
        # From the last layout pass: the heading row's height changes at once when set, the body's later.
        outer = body.parent
        base = outer.top - outer.padding[1] - body.y
        sections = self._sections(view, scale)
        per_page = None if view.categories and view.category is None else SERVICES_PER_PAGE
        self.heading_height = self._heading_height(scale, body.width) if self.heading else 0
        pages = paginate(sections, view.language, scale, body.width, base - self._row_cost(),
                         per_page=per_page)
        if len(pages) > 1 and not self.heading:
            self.heading_height = self._indicator_height(scale)
            pages = paginate(sections, view.language, scale, body.width, base - self._row_cost(), per_page=per_page)
        self.pages = len(pages)
        self.page = min(self.page, self.pages - 1)
        body.clear_widgets()
        rtl = is_rtl(view.language)
        for item in pages[self.page]:
            if isinstance(item, str):
                body.add_widget(BidiLabel(language=view.language, logical=item, font_size="%dsp" % SECTION_FONT_SP,
                                          font_name=str(fonts.SCREEN_BOLD), color=GREEN))
                continue
            row = GridLayout(cols=item.columns, rows=1, spacing=dp(14), size_hint_y=None, height=item.height,
                             orientation="rl-tb" if rtl else "lr-tb")
            for tap_id, text, on_touch, kind in item.buttons:
                button = KioskButton(tap_id=tap_id, kind=kind, language=view.language, logical=text,
                                     size_hint_y=1, min_height=0)
                # After construction: widgets.kv binds font_size to the kind, and only a change of kind resets it.
                button.font_size = sp(item.font_sp)
                button.bind(on_release=lambda _b, touched=on_touch: touched())
                row.add_widget(button)
            for _ in range(item.columns - len(item.buttons)):
                row.add_widget(Widget())
            body.add_widget(row)
        body.add_widget(Widget())          # the room left, at the bottom


def service_label(service: Service, language: str, *, offline: bool) -> str:
    """A certificate's button: its name and fee, and while central cannot be reached whether it can
    still be asked for (a claim) or needs the connection."""
    lines = [service.name(language), i18n.format_money(service.fee, language)]
    if offline:
        works = service.offline.allows_claim(service.fee)
        lines.append(i18n.text("catalogue.works_offline" if works else "catalogue.needs_link", language))
    return "\n".join(lines)


def paginate(sections: list[Section], language: str, scale: float, width: float, room: float,
             *, per_page: int | None) -> list[list]:
    """The pages: each a list of section labels (str) and Rows, in order,
    that fit in `room` (the body's height) at text `scale`; at most
    `per_page` buttons to a page when given. Rows share out the height left."""
    spacing = dp(ROW_SPACING_DP)
    heading = CoreLabel(font_name=str(fonts.SCREEN_BOLD), font_size=sp(SECTION_FONT_SP) * scale)
    pages: list[list] = []
    page: list = []
    used = count = 0.0

    def close() -> None:
        nonlocal page, used, count
        if page:
            pages.append(_share(page, room - used, spacing))
        page, used, count = [], 0.0, 0

    for section in sections:
        bold = CoreLabel(font_name=str(fonts.SCREEN_BOLD), font_size=sp(section.font_sp) * scale)
        cell = (width - dp(14) * (section.columns - 1)) / section.columns
        text_room = max(cell - 2 * dp(BUTTON_PADDING_DP[0]), 40)
        label_cost = (_lines_height(heading, section.label, language, width - dp(12)) + dp(8) + dp(2) + spacing
                      if section.label else 0)
        labelled = False          # on this page
        for start in range(0, len(section.buttons), section.columns):
            buttons = section.buttons[start:start + section.columns]
            lines = max(_line_count(bold, text, language, text_room) for _id, text, _f, _k in buttons)
            # Kivy 2.3 drops the last of three or more lines centred upright (valign 'middle')
            # unless the box has about half the text's height to spare: give it that room.
            needed = (lines + (lines * 0.5 if lines >= 3 else 0)) * bold.get_extents("Ag")[1]
            height = max(dp(ROW_MIN_DP), needed + 2 * dp(BUTTON_PADDING_DP[1]) + dp(6))
            full = per_page is not None and count + len(buttons) > per_page
            if page and (used + (0 if labelled else label_cost) + height > room or full):
                close()
                labelled = False
            if section.label and not labelled:
                page.append(section.label)
                used += label_cost
                labelled = True
            page.append(Row(buttons, section.columns, height, section.font_sp))
            used += height + spacing
            count += len(buttons)
    close()
    return pages or [[]]


def _share(page: list, left: float, spacing: float) -> list:
    """The page's rows made taller, evenly, with the room left (each up to ROW_MAX_DP)."""
    rows = [item for item in page if isinstance(item, Row)]
    if not rows or left <= 0:
        return page
    more = left / len(rows)
    return [Row(item.buttons, item.columns, max(item.height, min(item.height + more, dp(ROW_MAX_DP))), item.font_sp)
            if isinstance(item, Row) else item for item in page]


def _line_count(measurer: CoreLabel, text: str, language: str, room: float) -> int:
    return len(display_lines(text, language, room, lambda s: measurer.get_extents(s)[0]))


def _lines_height(measurer: CoreLabel, text: str, language: str, room: float) -> float:
    return _line_count(measurer, text, language, room) * measurer.get_extents("Ag")[1]


Builder.load_file(str(Path(__file__).with_name("catalogue.kv")))
