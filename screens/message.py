"""The screens that say one thing: please wait, take your card, this went wrong.

One class serves several steps; each step has its own screen name (the
journey runner waits on names) and its own texts, chosen from the view:

- a waiting screen (reading the card ... printing) shows where the citizen is
  in the journey (a row of steps, the current one marked, mirrored in
  Arabic, and "step 3 of 5") and what comes next;
- a failure screen says what happened and, apart, what to do now, and
  whether any money moved; a payment that did not go through says why (each
  `PaymentReason` has its own words) and offers the card again, the mobile
  app, back to the certificates, or cancel;
- the end screen, after a printed document, sums up what was done: the
  service, the fee paid, the document's serial; after a claim (paid while
  central could not be reached), the service, the fee and the claim's
  reference, and where the document will wait; after documents collected,
  their serials;
- the screens shown before anyone chose a language (starting, out of
  service) say it in both languages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kivy.lang import Builder
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout

from kiosk import i18n
from kiosk.events import Back, Cancel, Event, RetryPayment
from kiosk.ports.payment_terminal import PaymentMethod, PaymentReason
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
    failure: bool = False             # something went wrong: the title in the warning colour
    advice: str = ""                  # what to do now
    progress: int = 0                 # the journey step under way (1 to len(JOURNEY)); 0: no progress shown
    coming: str = ""                  # what comes next, while the citizen waits
    summary: tuple[str, ...] = ()     # what was done, at the end
    other_language: str = ""          # before a language is chosen: the same again in this one
    other_title: str = ""
    other_body: str = ""


FINISH = Action("finish", "button.finish", Cancel(), "secondary")

# After a payment that did not go through: by card again, by mobile app, back to the certificates, or stop.
PAY_AGAIN = (
    Action("retry", "payment_declined.retry_card", RetryPayment(PaymentMethod.CARD)),
    Action("retry_wallet", "payment_declined.retry_wallet", RetryPayment(PaymentMethod.WALLET)),
    Action("back", "button.back", Back(), "secondary"),
    Action("cancel", "button.cancel", Cancel(), "secondary"),
)

# The steps of a citizen's journey, as the waiting screens count them.
JOURNEY = ("card", "choose", "pay", "issue", "print")

# Each waiting screen: the journey step under way, and the message saying what comes next.
WAITING = {
    "reading_card": (1, "next.reading_card"),
    "verifying": (1, "next.verifying"),
    "preparing": (3, "next.preparing"),
    "paying": (3, "next.paying"),
    "issuing": (4, "next.issuing"),
    "printing": (5, "next.printing"),
    "print_waiting": (5, ""),                  # its note says what comes next
    "claiming": (4, "next.claiming"),
    "collecting": (5, "next.collecting"),
}

# Screens shown before a citizen chose a language: said in both.
BILINGUAL = ("starting", "out_of_service")


def _other(language: str) -> str:
    return next(other for other in i18n.LANGUAGES if other != language)


def _reason_text(view: View, language: str | None = None) -> str:
    if view.reason is None:
        return ""
    language = language or view.language
    values = {}
    if view.reason is Reason.CARD_EXPIRED and view.expiry is not None:
        values["date"] = i18n.format_date(view.expiry, language)
    return i18n.text("reason." + view.reason.value, language, **values)


def _advice(view: View, language: str | None = None) -> str:
    return i18n.text("advice." + view.reason.value, language or view.language) if view.reason is not None else ""


def step_names(language: str) -> list[str]:
    return [i18n.text("progress." + step, language) for step in JOURNEY]


def progress_text(step: int, language: str) -> str:
    """'Step 3 of 5: Payment'."""
    return i18n.text("progress.step", language, number=step, count=len(JOURNEY),
                     name=i18n.text("progress." + JOURNEY[step - 1], language))


SUMMARY_LINES = 3           # the end screen's summary box holds this many lines


def summary_lines(view: View) -> tuple[str, ...]:
    """What was done, for the end screen: the service, the fee paid, the document's serial (or the
    claim's reference); or the serials of the documents collected."""
    if view.collected:
        serials = [i18n.text("summary.collected", view.language, serial=serial) for serial in view.collected]
        if len(serials) > SUMMARY_LINES:
            serials = serials[:SUMMARY_LINES - 1] + ["…"]
        return tuple(serials)
    lines = []
    if view.selected is not None:
        lines.append(i18n.text("summary.service", view.language, service=view.selected.name(view.language)))
        if not view.claim_reference:         # a claim's fee is on its slip: the reference matters more here
            lines.append(i18n.text("summary.fee", view.language,
                                   fee=i18n.format_money(view.selected.fee, view.language)))
    if view.serial:
        lines.append(i18n.text("summary.serial", view.language, serial=view.serial))
    elif view.claim_reference:
        lines.append(i18n.text("summary.claim_reference", view.language, reference=view.claim_reference))
    return tuple(lines)


def message_for(name: str, view: View) -> Message:
    t = lambda msgid: i18n.text(msgid, view.language)  # noqa: E731
    if name == "starting":
        other = _other(view.language)
        return Message(t("starting.title"), t("starting.body"), busy=True, other_language=other,
                       other_title=i18n.text("starting.title", other), other_body=i18n.text("starting.body", other))
    if name == "insert_card":
        return Message(t("insert_card.title"), t("insert_card.body"),
                       actions=(Action("back", "button.back", Back(), "secondary"),))
    if name in WAITING:
        step, coming = WAITING[name]
        if name in ("reading_card", "verifying", "preparing"):
            message = Message(t(name + ".title"), t("busy.keep_card"), busy=True)
        elif name == "printing" and view.claim_reference:
            message = Message(t("printing.claim_title"), t("printing.claim_body"), busy=True)
            coming = "next.printing_claim"
        elif name == "print_waiting":
            minutes = max(1, -(-(view.reprint_seconds_left or 0) // 60))
            message = Message(t("print_waiting.title"), t("print_waiting.body"),
                              i18n.text("print_waiting.note", view.language, minutes=minutes), busy=True,
                              actions=(Action("refund", "button.refund", Cancel(), "secondary"),))
        else:
            message = Message(t(name + ".title"), t(name + ".body"), busy=True)
        return _with(message, progress=step, coming=t(coming) if coming else "")
    if name == "payment_declined":
        reason = (view.payment_reason or PaymentReason.REFUSED).value
        return Message(t("payment_declined.title"), t("payment_declined.reason." + reason),
                       t("payment_declined.body"), failure=True, advice=t("payment_declined.advice." + reason),
                       actions=PAY_AGAIN)
    if name == "take_card":
        if view.claim_reference:
            return Message(t("take_card.title"), t("take_card.claimed"),
                           "" if view.claim_slip_printed else t("take_card.claim_slip_missing"),
                           summary=summary_lines(view))
        if view.collected:
            return Message(t("take_card.title"), t("take_card.collected"), summary=summary_lines(view))
        if view.printed:
            return Message(t("take_card.title"), t("take_card.done"), summary=summary_lines(view))
        if view.reason is not None:
            return Message(t("take_card.title"), _reason_text(view), advice=_advice(view))
        return Message(t("take_card.title"), t("take_card.ended"))
    if name == "card_refused":
        return Message(t("card_refused.title"), _reason_text(view), failure=True, advice=_advice(view),
                       actions=(FINISH,))
    if name == "failed":
        note = t("failed.refunded") if view.refunded else t("failed.not_charged")
        return Message(t("failed.title"), _reason_text(view), note, failure=True, advice=_advice(view),
                       actions=(FINISH,))
    if name == "out_of_service":
        other = _other(view.language)
        return Message(t("out_of_service.title"), _reason_text(view), failure=True, advice=_advice(view),
                       other_language=other, other_title=i18n.text("out_of_service.title", other),
                       other_body=" ".join(filter(None, (_reason_text(view, other), _advice(view, other)))))
    raise KeyError(name)


def _with(message: Message, **changes) -> Message:
    return Message(**{**message.__dict__, **changes})


class StepMark(BoxLayout):
    """One step of the journey: its number in a circle, its name below.
    `state` is done, current or todo."""

    number = StringProperty("")
    caption = StringProperty("")
    state = StringProperty("todo")


class MessageScreen(KioskScreen):
    title = StringProperty("")
    body = StringProperty("")
    note = StringProperty("")
    busy = BooleanProperty(False)
    actions = ListProperty([])
    failure = BooleanProperty(False)
    advice = StringProperty("")
    progress = NumericProperty(0)
    progress_label = StringProperty("")
    coming = StringProperty("")
    summary = ListProperty([])
    other_language = StringProperty("")
    other_title = StringProperty("")
    other_body = StringProperty("")

    def show(self, view: View) -> None:
        super().show(view)
        message = message_for(self.name, view)
        self.title, self.body, self.note, self.busy = message.title, message.body, message.note, message.busy
        self.failure, self.advice, self.coming = message.failure, message.advice, message.coming
        self.summary = list(message.summary)
        self.other_language, self.other_title, self.other_body = \
            message.other_language, message.other_title, message.other_body
        self.progress = message.progress
        self.progress_label = progress_text(message.progress, view.language) if message.progress else ""
        if (view.language, message.progress) != self._steps_for:
            self._build_steps(message.progress, view.language)
        if (view.language, message.actions) != self._built_for:
            self._build_actions(message.actions, view.language)

    _built_for: tuple = ()
    _steps_for: tuple = ()

    def _build_steps(self, current: int, language: str) -> None:
        """The row of the journey's steps, made again only when the step changes."""
        self._steps_for = (language, current)
        row = self.ids.steps
        row.clear_widgets()
        if not current:
            return
        for number, caption in enumerate(step_names(language), start=1):
            state = "done" if number < current else "current" if number == current else "todo"
            row.add_widget(StepMark(number=str(number), caption=caption, state=state))

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
