"""The technician screen: every device's status, the outbox, the link and the software, and big
buttons for what a technician does here (a test print, a light walk, out of service and back,
restart, reboot). It shows the session's View and sends the buttons on as events; the status is
gathered by the runtime on a worker and comes in the View."""

from __future__ import annotations

from pathlib import Path

from kivy.lang import Builder
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.gridlayout import GridLayout

from kiosk import i18n
from kiosk.events import TechnicianActionChosen
from kiosk.session import View
from kiosk.technician import TechnicianAction, TechnicianStatus
from screens.base import KioskScreen


def _key(value: object) -> str:
    return str(getattr(value, "value", value)).replace(" ", "_")


def status_facts(status: TechnicianStatus, language: str) -> list[tuple[str, str]]:
    """(what, how it is) for each fact of `status`, in `language`: the devices first."""
    def t(msgid: str, **values: object) -> str:
        return i18n.text(msgid, language, **values)

    def count(value: int | None) -> str:
        return t("technician.unknown") if value is None else str(value)

    return [
        (t("technician.fact.reader"), t("technician.reader." + _key(status.reader))),
        (t("technician.fact.terminal"), t("technician.terminal." + _key(status.terminal))
         if status.terminal is not None else t("technician.unknown")),
        (t("technician.fact.printer"), t("technician.printer." + _key(status.printer))),
        (t("technician.fact.light"), t("technician.light." + (_key(status.light) if status.light else "none"))),
        (t("technician.fact.pending"), count(status.pending)),
        (t("technician.fact.dead"), count(status.dead)),
        (t("technician.fact.last_sync"), status.last_sync or t("technician.never")),
        (t("technician.fact.link"), t("link." + status.link.value)),
    ]


def identity_text(status: TechnicianStatus, language: str) -> str:
    """Which kiosk and which software, on one line of its own (a device id has no space to wrap at)."""
    unknown = i18n.text("technician.unknown", language)
    return "%s: %s   %s: %s" % (i18n.text("technician.fact.device", language), status.device_id or unknown,
                               i18n.text("technician.fact.version", language), status.version or unknown)


def outcome_text(view: View) -> str:
    if view.technician_action is None or not view.technician_outcome:
        return ""
    return i18n.text("technician.outcome.%s.%s" % (view.technician_action.value, view.technician_outcome),
                     view.language)


class TechnicianFact(GridLayout):
    """One fact of the status: what (bold) and how it is, side by side in the reading direction."""

    what = StringProperty("")
    how = StringProperty("")


class TechnicianScreen(KioskScreen):
    facts = ListProperty([])             # (what, how it is), in the view's language
    outcome = StringProperty("")
    failed = BooleanProperty(False)
    out = BooleanProperty(False)         # taken out of service: the button puts it back
    identity = StringProperty("")        # the device id and the software's version
    action_height = NumericProperty(0)   # the tallest action button's: every one is as tall

    def show(self, view: View) -> None:
        super().show(view)
        self.out = view.taken_out_of_service
        self.outcome = outcome_text(view)
        self.failed = view.technician_outcome == "failed"
        self.identity = identity_text(view.technician_status, view.language) if view.technician_status else ""
        facts = status_facts(view.technician_status, view.language) if view.technician_status else \
            [(i18n.text("technician.gathering", view.language), "")]
        if facts != self.facts:
            self.facts = facts
            grid = self.ids.facts
            grid.clear_widgets()
            for what, how in facts:
                grid.add_widget(TechnicianFact(what=what, how=how))

    def act(self, action: str) -> None:
        self.send(TechnicianActionChosen(TechnicianAction(action)))

    def toggle_service(self) -> None:
        self.act("back_in_service" if self.out else "out_of_service")


Builder.load_file(str(Path(__file__).with_name("technician.kv")))
