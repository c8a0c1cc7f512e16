"""What the kiosk relies on from any Cabinet: the fake, and GpioCabinet on gpiozero's MockFactory pins.

A world is a cabinet and the hand that works it: `work` opens the door,
turns the key, presses help, as a person would; `chatter` does it with
contacts that bounce; `showing` is the light as a person sees it (over a
blink, for the GPIO pins); `heard` the chimes as a person hears them.

GpioCabinet's time is a `ManualTimers` the test moves by hand: no sleep,
and a debounce, a blink or a beep takes no time at all. Its pins are
MockPWMPins (the light is a PWM RGB LED), driven with drive_low/drive_high
as the switches would. Not `realstack`: nothing here is shared.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
from collections.abc import Callable, Iterator

import pytest
from gpiozero.exc import GPIOPinInUse
from gpiozero.pins.mock import MockFactory, MockPWMPin

from drivers.fakes.cabinet import FakeCabinet
from drivers.gpio_cabinet import BEEP_GAP_S, CHIME_GAP_S, CHIMES, OFF, PATTERNS, GpioCabinet
from kiosk.ports.cabinet import AT_REST, Cabinet, CabinetInput, Chime, Light

EVENT_WAIT_S = 5.0              # the relay's thread hands an event on at once; this is only a bound
RED, GREEN, BLUE, BUZZER, DOOR, KEY, HELP, PAPER = 17, 27, 22, 18, 5, 6, 13, 19
BOUNCE_S = 0.05


class _Call:
    def __init__(self, action: Callable[[], None]) -> None:
        self.action: Callable[[], None] | None = action

    def cancel(self) -> None:
        self.action = None


class ManualTimers:
    """The driver's clock, moved by the test: `advance` runs, in order, every action that falls due."""

    def __init__(self) -> None:
        self.now = 0.0
        self._calls: list[tuple[float, int, _Call]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()
        self.after_each: Callable[[], None] = lambda: None

    def call_later(self, delay_s: float, action: Callable[[], None]) -> _Call:
        call = _Call(action)
        with self._lock:
            heapq.heappush(self._calls, (self.now + delay_s, next(self._order), call))
        return call

    def close(self) -> None:
        with self._lock:
            self._calls.clear()

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            with self._lock:
                if not self._calls or self._calls[0][0] > end:
                    break
                due, _n, call = heapq.heappop(self._calls)
            self.now = due
            if call.action is not None:
                call.action()
            self.after_each()
        self.now = end


class CabinetWorld:
    cabinet: Cabinet

    def work(self, what: CabinetInput) -> None:
        raise NotImplementedError

    def chatter(self, what: CabinetInput) -> None:
        raise NotImplementedError

    def showing(self) -> Light:
        raise NotImplementedError

    def heard(self) -> list[Chime]:
        raise NotImplementedError

    def reopen(self) -> Cabinet:
        """A new cabinet on the same wiring, after `close`."""
        raise NotImplementedError

    def close(self) -> None:
        self.cabinet.unwatch()
        self.cabinet.close()


class FakeCabinetWorld(CabinetWorld):
    def __init__(self) -> None:
        self.cabinet = self.fake = FakeCabinet()

    def work(self, what: CabinetInput) -> None:
        self.fake.work(what)

    def chatter(self, what: CabinetInput) -> None:
        self.fake.chatter(what)

    def showing(self) -> Light:
        return self.fake.light

    def heard(self) -> list[Chime]:
        return list(self.fake.chimes)

    def reopen(self) -> Cabinet:
        self.cabinet = self.fake = FakeCabinet()
        return self.cabinet


# Which pin each input is on, and whether that state is the contact closed (active).
_WIRING = {
    CabinetInput.DOOR_CLOSED: (DOOR, True), CabinetInput.DOOR_OPENED: (DOOR, False),
    CabinetInput.MAINTENANCE_ON: (KEY, True), CabinetInput.MAINTENANCE_OFF: (KEY, False),
    CabinetInput.HELP_PRESSED: (HELP, True),
    CabinetInput.PAPER_LOW: (PAPER, True), CabinetInput.PAPER_OK: (PAPER, False),
}


class GpioCabinetWorld(CabinetWorld):
    def __init__(self, *, active_low: bool = True, hold_s: float = 0.0) -> None:
        self.factory = MockFactory(pin_class=MockPWMPin)
        self.timers = ManualTimers()
        self.active_low = active_low
        self.hold_s = hold_s
        self.settle_s = max(BOUNCE_S, hold_s) * 2
        self._buzzes: list[tuple[float, bool]] = []
        self.timers.after_each = self._listen
        self.cabinet = self._build()

    def _build(self) -> GpioCabinet:
        cabinet = GpioCabinet(light=(RED, GREEN, BLUE), buzzer=BUZZER, door=DOOR, maintenance=KEY, help_button=HELP,
                              paper_low=PAPER, active_low=self.active_low, bounce_s=BOUNCE_S, hold_s=self.hold_s,
                              pin_factory=self.factory, timers=self.timers)
        self.drive(DOOR, True)                   # the door is shut (its contact closed)
        self.timers.advance(self.settle_s)
        return cabinet

    def pin(self, number: int) -> MockPWMPin:
        return self.factory.pin(number)

    def drive(self, number: int, active: bool) -> None:
        """The contact closed (active) or open, as the wiring makes it a level."""
        if active == self.active_low:
            self.pin(number).drive_low()
        else:
            self.pin(number).drive_high()

    def work(self, what: CabinetInput) -> None:
        number, active = _WIRING[what]
        self.drive(number, active)
        self.timers.advance(self.settle_s)
        if what is CabinetInput.HELP_PRESSED:
            self.drive(number, False)            # let go
            self.timers.advance(self.settle_s)

    def chatter(self, what: CabinetInput) -> None:
        number, active = _WIRING[what]
        for level in (active, not active, active, not active, active):
            self.drive(number, level)
            self.timers.advance(BOUNCE_S / 5)    # each contact within the debounce of the last
        self.timers.advance(self.settle_s)
        if what is CabinetInput.HELP_PRESSED:
            self.drive(number, False)
            self.timers.advance(self.settle_s)

    def colour(self) -> tuple[float, float, float]:
        return tuple(float(self.pin(number).state) for number in (RED, GREEN, BLUE))   # type: ignore[return-value]

    def showing(self) -> Light:
        """What a person sees over one blink: a steady colour, or a colour that blinks."""
        first = self.colour()
        self.timers.advance(max(pattern.blink_s for pattern in PATTERNS.values()))
        second = self.colour()
        blinking = first != second
        lit = first if first != OFF else second
        (light,) = [light for light, pattern in PATTERNS.items()
                    if pattern.colour == lit and (pattern.blink_s > 0) == blinking]
        return light

    def _listen(self) -> None:
        on = bool(self.pin(BUZZER).state)
        if not self._buzzes or self._buzzes[-1][1] != on:
            self._buzzes.append((self.timers.now, on))

    def heard(self) -> list[Chime]:
        """The beeps of the last while, grouped into chimes by the silence between them."""
        self._listen()
        self.timers.advance(10.0)
        chimes: list[int] = []
        last_off = None
        for at, on in self._buzzes:
            if on:
                if not chimes or last_off is None or at - last_off > (BEEP_GAP_S + CHIME_GAP_S) / 2:
                    chimes.append(0)
                chimes[-1] += 1
            else:
                last_off = at
        self._buzzes.clear()
        by_beeps = {beeps: chime for chime, beeps in CHIMES.items()}
        return [by_beeps[beeps] for beeps in chimes]

    def reopen(self) -> Cabinet:
        self.cabinet = self._build()
        return self.cabinet


@pytest.fixture(params=["fake", "gpio"])
def cabinet_world(request: pytest.FixtureRequest) -> Iterator[CabinetWorld]:
    world: CabinetWorld = FakeCabinetWorld() if request.param == "fake" else GpioCabinetWorld()
    yield world
    world.close()


class Heard:
    """What a watcher heard, in order."""

    def __init__(self, cabinet: Cabinet) -> None:
        self.events: queue.Queue[CabinetInput] = queue.Queue()
        cabinet.watch(self.events.put)

    def next(self) -> CabinetInput:
        return self.events.get(timeout=EVENT_WAIT_S)


ONE_BY_ONE = [
    (CabinetInput.DOOR_OPENED, CabinetInput.DOOR_CLOSED),
    (CabinetInput.MAINTENANCE_ON, CabinetInput.MAINTENANCE_OFF),
    (CabinetInput.PAPER_LOW, CabinetInput.PAPER_OK),
    (CabinetInput.HELP_PRESSED, CabinetInput.HELP_PRESSED),
]


# ---------------------------------------------------------------- the inputs


def test_a_cabinet_at_rest_says_nothing_when_watched(cabinet_world: CabinetWorld) -> None:
    heard = Heard(cabinet_world.cabinet)
    cabinet_world.work(CabinetInput.HELP_PRESSED)
    assert heard.next() is CabinetInput.HELP_PRESSED          # the first thing it says


@pytest.mark.parametrize("there, back", ONE_BY_ONE, ids=lambda what: what.name.lower())
def test_every_input_is_reported_when_it_changes(cabinet_world: CabinetWorld, there: CabinetInput,
                                                 back: CabinetInput) -> None:
    heard = Heard(cabinet_world.cabinet)
    cabinet_world.work(there)
    assert heard.next() is there
    cabinet_world.work(back)
    assert heard.next() is back


def test_an_input_already_in_its_state_says_nothing(cabinet_world: CabinetWorld) -> None:
    heard = Heard(cabinet_world.cabinet)
    cabinet_world.work(CabinetInput.DOOR_CLOSED)              # shut already
    cabinet_world.work(CabinetInput.DOOR_OPENED)
    cabinet_world.work(CabinetInput.DOOR_OPENED)
    cabinet_world.work(CabinetInput.PAPER_LOW)
    assert [heard.next(), heard.next()] == [CabinetInput.DOOR_OPENED, CabinetInput.PAPER_LOW]


@pytest.mark.parametrize("there, back", ONE_BY_ONE, ids=lambda what: what.name.lower())
def test_contacts_that_bounce_are_reported_once(cabinet_world: CabinetWorld, there: CabinetInput,
                                                back: CabinetInput) -> None:
    heard = Heard(cabinet_world.cabinet)
    cabinet_world.chatter(there)
    cabinet_world.chatter(back)
    after = CabinetInput.DOOR_OPENED if there is CabinetInput.MAINTENANCE_ON else CabinetInput.MAINTENANCE_ON
    cabinet_world.work(after)                                # what comes next shows nothing came between
    assert [heard.next(), heard.next(), heard.next()] == [there, back, after]


@pytest.mark.parametrize("what", [CabinetInput.DOOR_OPENED, CabinetInput.MAINTENANCE_ON, CabinetInput.PAPER_LOW],
                         ids=lambda what: what.name.lower())
def test_an_input_not_at_rest_when_watching_starts_is_reported_first(cabinet_world: CabinetWorld,
                                                                     what: CabinetInput) -> None:
    cabinet_world.work(what)                                 # before anyone watches: the kiosk starting
    heard = Heard(cabinet_world.cabinet)
    assert heard.next() is what


def test_unwatch_stops_the_events(cabinet_world: CabinetWorld) -> None:
    first = Heard(cabinet_world.cabinet)
    cabinet_world.cabinet.unwatch()
    cabinet_world.work(CabinetInput.DOOR_OPENED)
    cabinet_world.work(CabinetInput.HELP_PRESSED)
    second = Heard(cabinet_world.cabinet)                    # the door, open since, is the first it hears
    assert second.next() is CabinetInput.DOOR_OPENED
    assert first.events.empty()


# ---------------------------------------------------------------- the inputs read as they are now


def test_a_cabinet_at_rest_reads_door_closed_key_off_paper_ok(cabinet_world: CabinetWorld) -> None:
    assert cabinet_world.cabinet.inputs() == AT_REST


@pytest.mark.parametrize("there, back", ONE_BY_ONE[:3], ids=lambda what: what.name.lower())
def test_each_input_reads_as_it_was_last_worked(cabinet_world: CabinetWorld, there: CabinetInput,
                                                back: CabinetInput) -> None:
    cabinet_world.work(there)
    assert cabinet_world.cabinet.inputs() == AT_REST - {back} | {there}
    cabinet_world.work(back)
    assert cabinet_world.cabinet.inputs() == AT_REST


def test_inputs_read_together_and_watched_or_not(cabinet_world: CabinetWorld) -> None:
    cabinet_world.work(CabinetInput.DOOR_OPENED)
    cabinet_world.work(CabinetInput.MAINTENANCE_ON)
    cabinet_world.chatter(CabinetInput.PAPER_LOW)
    opened = {CabinetInput.DOOR_OPENED, CabinetInput.MAINTENANCE_ON, CabinetInput.PAPER_LOW}
    assert cabinet_world.cabinet.inputs() == opened               # nobody watching
    heard = Heard(cabinet_world.cabinet)
    assert cabinet_world.cabinet.inputs() == opened               # watching
    assert heard.next() is CabinetInput.DOOR_OPENED


def test_help_is_a_moment_never_read_as_a_state(cabinet_world: CabinetWorld) -> None:
    cabinet_world.work(CabinetInput.HELP_PRESSED)
    assert cabinet_world.cabinet.inputs() == AT_REST


# ---------------------------------------------------------------- the light and the chime


@pytest.mark.parametrize("light", list(Light), ids=lambda light: light.name.lower())
def test_each_light_is_shown_as_itself(cabinet_world: CabinetWorld, light: Light) -> None:
    cabinet_world.cabinet.show(Light.FAULT if light is not Light.FAULT else Light.READY)
    cabinet_world.cabinet.show(light)
    assert cabinet_world.showing() is light


@pytest.mark.parametrize("chime", list(Chime), ids=lambda chime: chime.name.lower())
def test_each_chime_sounds(cabinet_world: CabinetWorld, chime: Chime) -> None:
    cabinet_world.cabinet.chime(chime)
    assert cabinet_world.heard() == [chime]


def test_a_chime_asked_while_another_sounds_follows_it(cabinet_world: CabinetWorld) -> None:
    cabinet_world.cabinet.chime(Chime.TAKE_DOCUMENT)
    cabinet_world.cabinet.chime(Chime.TAKE_CARD)
    assert cabinet_world.heard() == [Chime.TAKE_DOCUMENT, Chime.TAKE_CARD]


# ---------------------------------------------------------------- the end


def test_close_frees_the_pins_for_another(cabinet_world: CabinetWorld) -> None:
    old = cabinet_world.cabinet
    old.close()
    old.show(Light.OFF)                                      # after close: nothing, and no failure
    old.chime(Chime.TAKE_CARD)
    cabinet = cabinet_world.reopen()
    cabinet.show(Light.READY)
    assert cabinet_world.showing() is Light.READY
    heard = Heard(cabinet)
    cabinet_world.work(CabinetInput.DOOR_OPENED)
    assert heard.next() is CabinetInput.DOOR_OPENED


# ---------------------------------------------------------------- the GPIO pins themselves


@pytest.fixture
def gpio_world() -> Iterator[GpioCabinetWorld]:
    world = GpioCabinetWorld()
    yield world
    world.close()


@pytest.mark.parametrize("light, rgb", [
    (Light.OFF, (0, 0, 0)), (Light.READY, (0, 1, 0)), (Light.BUSY, (0, 0, 1)), (Light.OFFLINE, (1, 0.5, 0)),
    (Light.OUT_OF_SERVICE, (1, 0, 0)),
], ids=lambda value: value.name.lower() if isinstance(value, Light) else "")
def test_steady_lights_hold_their_pins(gpio_world: GpioCabinetWorld, light: Light, rgb: tuple) -> None:
    gpio_world.cabinet.show(light)
    for _ in range(3):
        assert gpio_world.colour() == rgb
        gpio_world.timers.advance(0.5)


def test_fault_blinks_red_once_a_second_until_another_light(gpio_world: GpioCabinetWorld) -> None:
    gpio_world.cabinet.show(Light.FAULT)
    seen = []
    for _ in range(4):
        seen.append(gpio_world.colour())
        gpio_world.timers.advance(0.5)
    assert seen == [(1, 0, 0), (0, 0, 0), (1, 0, 0), (0, 0, 0)]
    gpio_world.cabinet.show(Light.READY)
    gpio_world.timers.advance(2.0)
    assert gpio_world.colour() == (0, 1, 0)


def test_a_chime_is_the_buzzer_pin_on_and_off(gpio_world: GpioCabinetWorld) -> None:
    buzzer = gpio_world.pin(BUZZER)
    gpio_world.cabinet.chime(Chime.TAKE_CARD)
    assert buzzer.state
    gpio_world.timers.advance(10.0)
    assert not buzzer.state and [state.state for state in buzzer.states][-4:] == [True, False, True, False]


def test_a_touch_shorter_than_the_debounce_is_not_a_press(gpio_world: GpioCabinetWorld) -> None:
    heard = Heard(gpio_world.cabinet)
    gpio_world.drive(HELP, True)
    gpio_world.timers.advance(BOUNCE_S / 2)
    gpio_world.drive(HELP, False)
    gpio_world.timers.advance(BOUNCE_S * 4)
    gpio_world.work(CabinetInput.PAPER_LOW)
    assert heard.next() is CabinetInput.PAPER_LOW


def test_inputs_read_the_debounced_level_not_the_pin(gpio_world: GpioCabinetWorld) -> None:
    gpio_world.drive(DOOR, False)                             # the door opens
    gpio_world.timers.advance(BOUNCE_S / 2)                   # still settling: not yet counted
    assert CabinetInput.DOOR_CLOSED in gpio_world.cabinet.inputs()
    gpio_world.timers.advance(BOUNCE_S)
    assert CabinetInput.DOOR_OPENED in gpio_world.cabinet.inputs()


def test_inputs_not_wired_read_at_rest() -> None:
    cabinet = GpioCabinet(paper_low=PAPER, pin_factory=MockFactory(pin_class=MockPWMPin), timers=ManualTimers())
    try:
        assert cabinet.inputs() == AT_REST
    finally:
        cabinet.close()


def test_help_must_be_held_for_the_hold_time() -> None:
    world = GpioCabinetWorld(hold_s=1.0)
    try:
        heard = Heard(world.cabinet)
        world.drive(HELP, True)
        world.timers.advance(0.5)                             # brushed against
        world.drive(HELP, False)
        world.timers.advance(2.0)
        world.drive(HELP, True)
        world.timers.advance(0.9)
        assert heard.events.empty()
        world.timers.advance(0.2)                             # held a whole second
        assert heard.next() is CabinetInput.HELP_PRESSED
    finally:
        world.close()


def test_inputs_wired_to_3v3_are_active_high() -> None:
    world = GpioCabinetWorld(active_low=False)
    try:
        heard = Heard(world.cabinet)
        world.pin(DOOR).drive_low()                           # the contact opens: the pull-down wins
        world.timers.advance(BOUNCE_S * 2)
        assert heard.next() is CabinetInput.DOOR_OPENED
    finally:
        world.close()


def test_a_door_wire_cut_reads_as_the_door_open(gpio_world: GpioCabinetWorld) -> None:
    heard = Heard(gpio_world.cabinet)
    gpio_world.pin(DOOR).drive_high()                         # no contact to ground: the pull-up wins
    gpio_world.timers.advance(BOUNCE_S * 2)
    assert heard.next() is CabinetInput.DOOR_OPENED


def test_the_pins_are_held_until_close(gpio_world: GpioCabinetWorld) -> None:
    with pytest.raises(GPIOPinInUse):
        GpioCabinet(door=DOOR, pin_factory=gpio_world.factory, timers=ManualTimers())
    gpio_world.cabinet.close()
    GpioCabinet(door=DOOR, pin_factory=gpio_world.factory, timers=ManualTimers()).close()


def test_from_config_builds_the_wired_pins_on_gpiozeros_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from gpiozero import Device

    from drivers.gpio_cabinet import from_config
    from kiosk.config import CabinetConfig

    factory = MockFactory(pin_class=MockPWMPin)
    monkeypatch.setattr(Device, "pin_factory", factory)

    class Config:
        cabinet = dataclasses.replace(CabinetConfig(), backend="gpio", light_red_pin=RED, light_green_pin=GREEN,
                                      light_blue_pin=BLUE, door_pin=DOOR, bounce_s=0.0)

    cabinet = from_config(Config())                           # type: ignore[arg-type]
    try:
        cabinet.show(Light.OUT_OF_SERVICE)
        assert [float(factory.pin(number).state) for number in (RED, GREEN, BLUE)] == [1, 0, 0]
        heard = Heard(cabinet)
        assert heard.next() is CabinetInput.DOOR_OPENED       # nothing holds the door's contact closed
        factory.pin(DOOR).drive_low()
        assert heard.next() is CabinetInput.DOOR_CLOSED       # bounce_s 0: at once
    finally:
        cabinet.close()
