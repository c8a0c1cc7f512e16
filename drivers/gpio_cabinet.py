"""`Cabinet` on the Pi's GPIO header, through gpiozero: the status light, the chime, the switches.

Wiring (BCM numbers from `[cabinet]`, 0 for what is not wired):

* the status light: an RGB LED (common cathode) on three PWM-driven pins
  (`gpiozero.RGBLED`, software PWM on any pin with lgpio);
* the chime: an active buzzer (`gpiozero.Buzzer`), on while its pin is high;
* the inputs, each a contact to ground with the Pi's pull-up (`active_low`,
  the default) or to 3.3 V with a pull-down: the door (tamper) switch, which
  is closed while the door is shut, so a cut wire reads as an open door; the
  technician's key switch (closed: maintenance); the help button (pressed:
  closed); the printer's paper-low sensor (closed: paper low). Each is a
  `gpiozero.DigitalInputDevice` (a `Button` would add its hold thread, which
  wakes ten times a second and is not needed: the driver times the hold).

The light's patterns (`PATTERNS`): READY steady green, BUSY steady blue,
OFFLINE steady amber (serving claims only), OUT_OF_SERVICE steady red, FAULT
red blinking once a second (an attendant is needed), OFF dark. Steady means
nobody need look twice; only FAULT blinks. The chimes (`CHIMES`): "take your
card" two short beeps, "take your document" three; a chime asked while
another sounds follows it.

Timing is the driver's own, on one timer it is handed (`Timers`): an input
counts once it has held its new level for `bounce_s` (the help button, once
held for `hold_s` if that is longer), the way lgpio's debounce works, and
the light's blink and the chime's beeps run on the same timer. gpiozero's
own bounce_time, blink() and beep() are not used: MockFactory's pins ignore
bounce_time and RPi.GPIO's drops the last edge of a bounce, and blink and
beep run on threads of their own that a test could follow only by sleeping;
with `Timers` injected, a test moves time by hand.

The pin factory is injected too: gpiozero's default (lgpio on a Pi, or
whatever GPIOZERO_PIN_FACTORY names) unless a `pin_factory` is given, as
the tests give `gpiozero.pins.mock.MockFactory(pin_class=MockPWMPin)`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from drivers.event_relay import EventRelay
from kiosk.ports.cabinet import AT_REST, Cabinet, CabinetInput, Chime, Light

if TYPE_CHECKING:
    from kiosk.config import KioskConfig

log = logging.getLogger(__name__)

Colour = tuple[float, float, float]
OFF: Colour = (0.0, 0.0, 0.0)
RED: Colour = (1.0, 0.0, 0.0)
GREEN: Colour = (0.0, 1.0, 0.0)
BLUE: Colour = (0.0, 0.0, 1.0)
AMBER: Colour = (1.0, 0.5, 0.0)


@dataclass(frozen=True)
class Pattern:
    """A light's colour, steady (`blink_s` 0) or blinking: on and off for `blink_s` each."""

    colour: Colour
    blink_s: float = 0.0


PATTERNS: dict[Light, Pattern] = {
    Light.OFF: Pattern(OFF),
    Light.READY: Pattern(GREEN),
    Light.BUSY: Pattern(BLUE),
    Light.OFFLINE: Pattern(AMBER),
    Light.OUT_OF_SERVICE: Pattern(RED),
    Light.FAULT: Pattern(RED, blink_s=0.5),
}

BEEP_S = 0.15                  # one beep of a chime
BEEP_GAP_S = 0.1               # between the beeps of a chime
CHIME_GAP_S = 0.5              # between two chimes
CHIMES: dict[Chime, int] = {   # how many beeps
    Chime.TAKE_CARD: 2,
    Chime.TAKE_DOCUMENT: 3,
}


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Timers(Protocol):
    """Calls an action once, after a delay, on a thread of the timer's; the driver's only clock."""

    def call_later(self, delay_s: float, action: Callable[[], None]) -> Cancellable: ...

    def close(self) -> None: ...


class _Call:
    def __init__(self, action: Callable[[], None]) -> None:
        self.action: Callable[[], None] | None = action

    def cancel(self) -> None:
        self.action = None


class ThreadTimers:
    """`Timers` on one daemon thread of its own (not a thread per blink or beep)."""

    def __init__(self, name: str = "cabinet-timers") -> None:
        self._calls: list[tuple[float, int, _Call]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._name = name
        self._thread: threading.Thread | None = None

    def call_later(self, delay_s: float, action: Callable[[], None]) -> Cancellable:
        call = _Call(action)
        with self._wake:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            heapq.heappush(self._calls, (time.monotonic() + max(0.0, delay_s), next(self._order), call))
            self._wake.notify()
        return call

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._calls.clear()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._calls or self._calls[0][0] > time.monotonic()):
                    self._wake.wait(self._calls[0][0] - time.monotonic() if self._calls else None)
                if self._closed:
                    return
                _due, _n, call = heapq.heappop(self._calls)
            action = call.action
            if action is not None:
                try:
                    action()
                except Exception:
                    log.exception("cabinet.timer_failed")


@dataclass(frozen=True)
class _Meaning:
    """What an input's two levels say: None for a level that says nothing (a button let go)."""

    active: CabinetInput | None
    inactive: CabinetInput | None


_DOOR = _Meaning(CabinetInput.DOOR_CLOSED, CabinetInput.DOOR_OPENED)      # a closed loop while shut
_MAINTENANCE = _Meaning(CabinetInput.MAINTENANCE_ON, CabinetInput.MAINTENANCE_OFF)
_HELP = _Meaning(CabinetInput.HELP_PRESSED, None)
_PAPER = _Meaning(CabinetInput.PAPER_LOW, CabinetInput.PAPER_OK)
# What `inputs` says of each input that is not wired: its state at rest.
_RESTING = {_DOOR: CabinetInput.DOOR_CLOSED, _MAINTENANCE: CabinetInput.MAINTENANCE_OFF,
            _PAPER: CabinetInput.PAPER_OK}


class _Input:
    """One wired input: its gpiozero device, what it means, its level as last counted, its pending count."""

    def __init__(self, device: Any, meaning: _Meaning, settle_on_s: float, settle_off_s: float) -> None:
        self.device = device
        self.meaning = meaning
        self.settle_on_s = settle_on_s       # how long a new active level must hold to count
        self.settle_off_s = settle_off_s
        self.active = bool(device.is_active)
        self.generation = 0                  # the edge a pending count belongs to
        self.pending: Cancellable | None = None

    @property
    def state(self) -> CabinetInput | None:
        return self.meaning.active if self.active else self.meaning.inactive


class GpioCabinet(Cabinet):
    def __init__(self, *, light: tuple[int, int, int] | None = None, buzzer: int | None = None,
                 door: int | None = None, maintenance: int | None = None, help_button: int | None = None,
                 paper_low: int | None = None, active_low: bool = True, bounce_s: float = 0.05,
                 hold_s: float = 0.0, pin_factory: Any = None, timers: Timers | None = None) -> None:
        """Each pin a BCM number, None (or 0) for what is not wired."""
        from gpiozero import RGBLED, Buzzer, DigitalInputDevice

        self._lock = threading.RLock()
        self._timers: Timers = timers or ThreadTimers()
        self._events: EventRelay[CabinetInput] = EventRelay("cabinet")
        self._closed = False
        self._light_generation = 0
        self._pattern = PATTERNS[Light.OFF]
        self._chimes: list[Chime] = []
        self._beeping: Cancellable | None = None
        self._devices: list[Any] = []
        try:
            self._led = self._own(RGBLED(*light, pwm=True, pin_factory=pin_factory)) if light and all(light) \
                else None
            self._buzzer = self._own(Buzzer(buzzer, pin_factory=pin_factory)) if buzzer else None
            self._inputs: list[_Input] = []
            for pin, meaning in ((door, _DOOR), (maintenance, _MAINTENANCE), (help_button, _HELP),
                                 (paper_low, _PAPER)):
                if not pin:
                    continue
                device = self._own(DigitalInputDevice(pin, pull_up=active_low, bounce_time=None,
                                                      pin_factory=pin_factory))
                on_s = max(bounce_s, hold_s) if meaning is _HELP else bounce_s
                self._inputs.append(_Input(device, meaning, on_s, bounce_s))
        except BaseException:
            self.close()
            raise
        for wired in self._inputs:
            wired.device.when_activated = lambda wired=wired: self._edge(wired)
            wired.device.when_deactivated = lambda wired=wired: self._edge(wired)
        log.info("cabinet.gpio light=%s buzzer=%s inputs=%d", self._led is not None, self._buzzer is not None,
                 len(self._inputs))

    def _own(self, device: Any) -> Any:
        self._devices.append(device)
        return device

    # ------------------------------------------------------------ the light

    def show(self, light: Light) -> None:
        with self._lock:
            if self._closed:
                return
            self._light_generation += 1
            self._pattern = PATTERNS[light]
            if self._led is not None:
                self._led.value = self._pattern.colour
                if self._pattern.blink_s > 0:
                    self._blink_later(self._light_generation, lit=True)

    def _blink_later(self, generation: int, *, lit: bool) -> None:
        self._timers.call_later(self._pattern.blink_s, lambda: self._blink(generation, not lit))

    def _blink(self, generation: int, lit: bool) -> None:
        with self._lock:
            if self._closed or generation != self._light_generation or self._led is None:
                return
            self._led.value = self._pattern.colour if lit else OFF
            self._blink_later(generation, lit=lit)

    # ------------------------------------------------------------ the chime

    def chime(self, kind: Chime) -> None:
        with self._lock:
            if self._closed or self._buzzer is None:
                return
            self._chimes.append(kind)
            if self._beeping is None:
                self._beep(CHIMES[kind], on=True)

    def _beep(self, left: int, *, on: bool) -> None:
        """Beep `left` more times, the buzzer now `on` or off; then the next chime, if any."""
        with self._lock:
            if self._closed or self._buzzer is None:
                return
            if on:
                self._buzzer.on()
                self._beeping = self._timers.call_later(BEEP_S, lambda: self._beep(left - 1, on=False))
                return
            self._buzzer.off()
            if left > 0:
                self._beeping = self._timers.call_later(BEEP_GAP_S, lambda: self._beep(left, on=True))
                return
            self._chimes.pop(0)
            if self._chimes:
                beeps = CHIMES[self._chimes[0]]
                self._beeping = self._timers.call_later(CHIME_GAP_S, lambda: self._beep(beeps, on=True))
            else:
                self._beeping = None

    # ------------------------------------------------------------ the inputs

    def watch(self, on_input: Callable[[CabinetInput], None]) -> None:
        with self._lock:
            self._events.start(on_input)
            for wired in self._inputs:
                state = wired.state
                if state is not None and state not in AT_REST and wired.meaning is not _HELP:
                    self._events.put(state)

    def unwatch(self) -> None:
        self._events.stop()

    def inputs(self) -> frozenset[CabinetInput]:
        """Each wired input's level as last counted (debounced: a level still settling is not yet
        counted), the rest at rest; the help button, a moment, is never among them."""
        with self._lock:
            states = dict(_RESTING)
            for wired in self._inputs:
                state = wired.state
                if wired.meaning in states and state is not None:
                    states[wired.meaning] = state
        return frozenset(states.values())

    def _edge(self, wired: _Input) -> None:
        """A level changed (gpiozero's thread): count it once it has held long enough."""
        with self._lock:
            if self._closed:
                return
            wired.generation += 1
            if wired.pending is not None:
                wired.pending.cancel()
            generation = wired.generation
            delay = wired.settle_on_s if wired.device.is_active else wired.settle_off_s
            if delay <= 0:
                wired.pending = None
                self._settle(wired, generation)
            else:
                wired.pending = self._timers.call_later(delay, lambda: self._settle(wired, generation))

    def _settle(self, wired: _Input, generation: int) -> None:
        with self._lock:
            if self._closed or generation != wired.generation:
                return                     # another edge came since: its own count decides
            wired.pending = None
            active = bool(wired.device.is_active)
            if active == wired.active:
                return                     # a bounce that came back where it was
            wired.active = active
            state = wired.state
            if state is not None:
                log.info("cabinet.%s", state.name.lower())
                self._events.put(state)

    # ------------------------------------------------------------ the end

    def close(self) -> None:
        """Stop the timer, the events and every device: the pins are free for another."""
        with self._lock:
            self._closed = True
        self._events.stop()
        self._timers.close()
        for device in reversed(getattr(self, "_devices", [])):
            try:
                device.close()
            except Exception:
                log.exception("cabinet.close_failed device=%s", type(device).__name__)
        self._devices = []


def from_config(config: KioskConfig) -> GpioCabinet:
    """The `gpio` cabinet backend: the pins of `[cabinet]`, on gpiozero's default pin factory."""
    cabinet = config.cabinet
    light = (cabinet.light_red_pin, cabinet.light_green_pin, cabinet.light_blue_pin)
    return GpioCabinet(light=light if all(light) else None, buzzer=cabinet.buzzer_pin or None,
                       door=cabinet.door_pin or None, maintenance=cabinet.maintenance_pin or None,
                       help_button=cabinet.help_pin or None, paper_low=cabinet.paper_low_pin or None,
                       active_low=cabinet.active_low, bounce_s=cabinet.bounce_s, hold_s=cabinet.hold_s)
