"""The command form (on the commands page and on a kiosk's page): what it offers, and how its fields are
read into a request for central/commands.py, or into the problems to show the member of staff.

    action    one of `kiosk.wire.CommandAction`
    target    devices (ids in `devices`, separated by spaces or commas) | governorate (`governorate`) | everyone
    minutes   how long the command may wait for its kiosk, within central/commands.py's bounds
    confirmed the number of kiosks the member of staff confirmed (reboot or out-of-service to a governorate
              or every kiosk is asked again, naming how many kiosks it reaches)

A problem is a field's name and the code of its text (``commands.error.<code>``), in the staff's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from central.commands import DEFAULT_LIFETIME, LONGEST_LIFETIME, parse_lifetime
from central.devices import GOVERNORATE
from kiosk import wire
from kiosk.wire import CommandAction

DEVICES, GOVERNORATE_TARGET, EVERYONE = "devices", "governorate", "everyone"
MAX_DEVICES = 200


@dataclass(frozen=True)
class Choices:
    """What the form offers (a global of the dashboard's templates: COMMAND_FORM)."""

    actions: tuple[str, ...] = tuple(action.value for action in CommandAction)
    targets: tuple[str, ...] = (DEVICES, GOVERNORATE_TARGET, EVERYONE)
    # Asked again before they reach more than the kiosks named one by one: they stop citizens being served.
    disruptive: frozenset[str] = frozenset({CommandAction.REBOOT.value, CommandAction.OUT_OF_SERVICE.value})
    default_minutes: int = int(DEFAULT_LIFETIME / timedelta(minutes=1))
    max_minutes: int = int(LONGEST_LIFETIME / timedelta(minutes=1))
    max_devices: int = MAX_DEVICES


CHOICES = Choices()


@dataclass(frozen=True)
class Problem:
    field: str
    code: str                  # commands.error.<code>


@dataclass(frozen=True)
class CommandRequest:
    """A command form read and checked: what to send, to whom, for how long."""

    action: CommandAction
    target: str
    device_ids: tuple[str, ...]
    governorate: str
    lifetime: timedelta

    @property
    def minutes(self) -> int:
        return int(self.lifetime / timedelta(minutes=1))

    def cohort(self) -> dict:
        """The keywords of `Commands.cohort` that name these kiosks."""
        if self.target == DEVICES:
            return {"device_ids": self.device_ids}
        if self.target == GOVERNORATE_TARGET:
            return {"governorate": self.governorate}
        return {"everyone": True}

    def needs_confirming(self) -> bool:
        return self.action.value in CHOICES.disruptive and self.target != DEVICES

    def whom(self) -> str:
        """To whom, as the staff audit trail says it."""
        if self.target == DEVICES:
            return "kiosk %s" % " ".join(self.device_ids)
        if self.target == GOVERNORATE_TARGET:
            return "governorate %s" % self.governorate
        return "every kiosk"


def device_ids(text: str) -> list[str]:
    return text.replace(",", " ").split()


def read(form: dict[str, str]) -> tuple[CommandRequest | None, list[Problem]]:
    """The request the form asks for, or None and what is wrong with it (every field checked)."""
    problems = []
    action = form.get("action", "")
    if action not in CHOICES.actions:
        problems.append(Problem("action", "action"))
    target = form.get("target", "")
    ids: list[str] = []
    governorate = form.get("governorate", "").strip()
    if target == DEVICES:
        ids = list(dict.fromkeys(device_ids(form.get("devices", ""))))
        if not ids or len(ids) > MAX_DEVICES or not all(wire.is_id(i) for i in ids):
            problems.append(Problem("devices", "devices"))
    elif target == GOVERNORATE_TARGET:
        if not GOVERNORATE.fullmatch(governorate):
            problems.append(Problem("governorate", "governorate"))
    elif target != EVERYONE:
        problems.append(Problem("target", "target"))
    minutes = form.get("minutes", "").strip()
    lifetime = None
    if minutes.isascii() and minutes.isdigit() and len(minutes) <= 6:
        try:
            lifetime = parse_lifetime(int(minutes))
        except ValueError:
            pass
    if lifetime is None:
        problems.append(Problem("minutes", "minutes"))
    if problems or lifetime is None:
        return None, problems
    return CommandRequest(CommandAction(action), target, tuple(ids), governorate, lifetime), []
