"""The screens that say one thing: please wait, take your card, this went wrong.

One class serves several steps; each step has its own screen name (the
journey runner waits on names) and its own texts, chosen from the view.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kivy.lang import Builder
from kivy.properties import BooleanProperty, ListProperty, StringProperty

from kiosk import i18n
from kiosk.events import Back, Cancel, Event, RetryPayment
from kiosk.session import Reason, View
from screens.base import KioskScreen
from screens.widgets import KioskButton


@dataclass(frozen=True)
class Action:
    tap_id: str
    msgid: str
    event: Event
    kind: str = "primary"


@dataclass(frozen=True)
class Message:
    title: str
    body: str = ""
    note: str = ""
    busy: bool = False
    actions: tuple[Action, ...] = ()


FINISH = Action("finish", "button.finish", Cancel(), "secondary")


def _reason_text(view: View) -> str:
    if view.reason is None:
        return ""
    values = {}
    if view.reason is Reason.CARD_EXPIRED and view.expiry is not None:
        values["date"] = i18n.format_date(view.expiry, view.language)
    return i18n.text("reason." + view.reason.value, view.language, **values)


def message_for(name: str, view: View) -> Message:
    t = lambda msgid: i18n.text(msgid, view.language)  # noqa: E731
    if name == "insert_card":
        return Message(t("insert_card.title"), t("insert_card.body"),
                       actions=(Action("back", "button.back", Back(), "secondary"),))
    if name in ("reading_card", "verifying", "preparing"):
        return Message(t(name + ".title"), t("busy.keep_card"), busy=True)
    if name in ("paying", "issuing", "printing"):
        return Message(t(name + ".title"), t(name + ".body"), busy=True)
    if name == "payment_declined":
        return Message(t("payment_declined.title"), t("payment_declined.body"), actions=(
            Action("retry", "button.retry", RetryPayment()), Action("back", "button.back", Back(), "secondary")))
    if name == "print_waiting":
        minutes = max(1, -(-(view.reprint_seconds_left or 0) // 60))
        return Message(t("print_waiting.title"), t("print_waiting.body"),
                       i18n.text("print_waiting.note", view.language, minutes=minutes), busy=True,
                       actions=(Action("refund", "button.refund", Cancel(), "secondary"),))
    if name == "take_card":
        return Message(t("take_card.title"),
                       _reason_text(view) or t("take_card.done" if view.printed else "take_card.ended"))
    if name == "card_refused":
        return Message(t("card_refused.title"), _reason_text(view), actions=(FINISH,))
    if name == "failed":
        note = t("failed.refunded") if view.refunded else t("failed.not_charged")
        return Message(t("failed.title"), _reason_text(view), note, actions=(FINISH,))
    if name == "out_of_service":
        return Message(t("out_of_service.title"), _reason_text(view))
    raise KeyError(name)


class MessageScreen(KioskScreen):
    title = StringProperty("")
    body = StringProperty("")
    note = StringProperty("")
    busy = BooleanProperty(False)
    actions = ListProperty([])

    def show(self, view: View) -> None:
        super().show(view)
        message = message_for(self.name, view)
        self.title, self.body, self.note, self.busy = message.title, message.body, message.note, message.busy
        if (view.language, message.actions) != self._built_for:
            self._build_actions(message.actions, view.language)

    _built_for: tuple = ()

    def _build_actions(self, actions: tuple[Action, ...], language: str) -> None:
        """The buttons, made again only when they change (not on every tick)."""
        self._built_for = (language, actions)
        self.actions = list(actions)
        row = self.ids.actions
        row.clear_widgets()
        for action in actions:
            button = KioskButton(tap_id=action.tap_id, kind=action.kind, language=language,
                                 logical=i18n.text(action.msgid, language))
            button.bind(on_release=lambda _b, event=action.event: self.send(event))
            row.add_widget(button)

    def on_leave(self, *args) -> None:
        self.busy = False


Builder.load_file(str(Path(__file__).with_name("message.kv")))
