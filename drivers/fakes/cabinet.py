"""`Cabinet` in process: a status light and a chime a test can read, and inputs it can work.

Inputs reach the watcher through an `EventRelay`, in order, and only when
they change the input's state, as debounced switches do; a watcher that
comes while an input is not at rest (the door open) hears of it first.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Callable

from drivers.event_relay import EventRelay
from kiosk.ports.cabinet import AT_REST, Cabinet, CabinetInput, Chime, Light

if TYPE_CHECKING:
    from kiosk.config import KioskConfig

log = logging.getLogger(__name__)

# Each input and the one it undoes; HELP_PRESSED is a moment, not a state.
_OPPOSITE = {
    CabinetInput.DOOR_OPENED: CabinetInput.DOOR_CLOSED, CabinetInput.DOOR_CLOSED: CabinetInput.DOOR_OPENED,
    CabinetInput.MAINTENANCE_ON: CabinetInput.MAINTENANCE_OFF,
    CabinetInput.MAINTENANCE_OFF: CabinetInput.MAINTENANCE_ON,
    CabinetInput.PAPER_LOW: CabinetInput.PAPER_OK, CabinetInput.PAPER_OK: CabinetInput.PAPER_LOW,
}


class FakeCabinet(Cabinet):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lights: list[Light] = []
        self._chimes: list[Chime] = []
        self._state = {CabinetInput.DOOR_CLOSED, CabinetInput.MAINTENANCE_OFF, CabinetInput.PAPER_OK}
        self._events: EventRelay[CabinetInput] = EventRelay("cabinet")

    @property
    def light(self) -> Light:
        with self._lock:
            return self._lights[-1] if self._lights else Light.OFF

    @property
    def lights(self) -> tuple[Light, ...]:
        """Every pattern shown, oldest first."""
        with self._lock:
            return tuple(self._lights)

    @property
    def chimes(self) -> tuple[Chime, ...]:
        """Every chime sounded, oldest first."""
        with self._lock:
            return tuple(self._chimes)

    def chatter(self, what: CabinetInput) -> None:
        """The contacts bounce on their way to `what` (open, shut, open): a debounced switch says it once."""
        self.work(what)

    def work(self, what: CabinetInput) -> None:
        """Open the door, turn the key, press help, ... as a person would."""
        with self._lock:
            if what in self._state:
                return
            if what in _OPPOSITE:
                self._state.discard(_OPPOSITE[what])
                self._state.add(what)
            log.info("cabinet.%s", what.name.lower())
            self._events.put(what)

    def show(self, light: Light) -> None:
        with self._lock:
            self._lights.append(light)

    def chime(self, kind: Chime) -> None:
        with self._lock:
            self._chimes.append(kind)
        log.info("cabinet.chime kind=%s", kind.name.lower())

    def watch(self, on_input: Callable[[CabinetInput], None]) -> None:
        with self._lock:
            self._events.start(on_input)
            for what in CabinetInput:            # in the enum's order: the door first
                if what in self._state and what not in AT_REST:
                    self._events.put(what)

    def unwatch(self) -> None:
        self._events.stop()

    def inputs(self) -> frozenset[CabinetInput]:
        with self._lock:
            return frozenset(self._state)


def from_config(config: KioskConfig) -> FakeCabinet:
    """The `fake` cabinet backend: door closed, key off, paper fine, light off."""
    return FakeCabinet()
