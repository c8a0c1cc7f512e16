"""`Cabinet` in process: a status light a test can read and inputs it can work.

Inputs reach the watcher on a thread of their own, in order, and only when
they change the input's state, as debounced switches do.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING, Callable

from kiosk.ports.cabinet import Cabinet, CabinetInput, Light

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
        self._state = {CabinetInput.DOOR_CLOSED, CabinetInput.MAINTENANCE_OFF, CabinetInput.PAPER_OK}
        self._events: queue.SimpleQueue[CabinetInput | None] | None = None

    @property
    def light(self) -> Light:
        with self._lock:
            return self._lights[-1] if self._lights else Light.OFF

    @property
    def lights(self) -> tuple[Light, ...]:
        """Every pattern shown, oldest first."""
        with self._lock:
            return tuple(self._lights)

    def work(self, what: CabinetInput) -> None:
        """Open the door, turn the key, press help, ... as a person would."""
        with self._lock:
            if what in self._state:
                return
            if what in _OPPOSITE:
                self._state.discard(_OPPOSITE[what])
                self._state.add(what)
            log.info("cabinet.%s", what.name.lower())
            if self._events is not None:
                self._events.put(what)

    def show(self, light: Light) -> None:
        with self._lock:
            self._lights.append(light)

    def watch(self, on_input: Callable[[CabinetInput], None]) -> None:
        self.unwatch()
        events: queue.SimpleQueue[CabinetInput | None] = queue.SimpleQueue()
        with self._lock:
            self._events = events
        threading.Thread(target=self._dispatch, args=(events, on_input), name="fake-cabinet", daemon=True).start()

    def unwatch(self) -> None:
        with self._lock:
            events, self._events = self._events, None
        if events is not None:
            events.put(None)

    @staticmethod
    def _dispatch(events: queue.SimpleQueue[CabinetInput | None], on_input: Callable[[CabinetInput], None]) -> None:
        while (event := events.get()) is not None:
            try:
                on_input(event)
            except Exception:
                log.exception("cabinet.input_callback_failed input=%s", event.name.lower())


def from_config(config: KioskConfig) -> FakeCabinet:
    """The `fake` cabinet backend: door closed, key off, paper fine, light off."""
    return FakeCabinet()
