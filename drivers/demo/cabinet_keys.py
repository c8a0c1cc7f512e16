"""The interactive demo's cabinet: the gpio driver on gpiozero's mock pins, worked from the keyboard.

With a display, `make demo` runs the kiosk with `cabinet.backend = "gpio"` (the
pins of `CABINET_SECTION`, added to a copy of the stack's configuration by
`with_cabinet`), built by `kiosk.app.build_devices` as `kiosk run` builds it, on
`MockFactory` pins that `use_mock_pins` makes gpiozero's pin factory for the
process first. `Panel.keys` maps keys of the kiosk's window (`KEYS`) to the
cabinet's switches; each key drives the switch's mock pin (drive_low /
drive_high), so the driver's debounce and the session's rules run as on a
device. `print_light` prints the status light on every change.

The pins are `ContactPin`s: MockPWMPins (the light is a PWM RGB LED, which
the plain MockPin of GPIOZERO_PIN_FACTORY=mock cannot drive) with a switch
wired to them, whose closed contact beats the input's pull: the door is shut
when the kiosk starts, not read open as a bare pulled-up pin would be.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from gpiozero.pins.mock import MockFactory, MockPWMPin

from drivers.gpio_cabinet import PATTERNS
from kiosk.ports.cabinet import Cabinet, Light

# BCM numbers, as on the cabinet's wiring sheet; the inputs switch to ground (the Pi's pull-ups).
CABINET_SECTION = """
[cabinet]
backend = "gpio"
light_red_pin = 17
light_green_pin = 27
light_blue_pin = 22
buzzer_pin = 18
door_pin = 5
maintenance_pin = 6
help_pin = 13
paper_low_pin = 19
active_low = true
"""

# Keys no screen uses and the lockdown leaves alone (it blocks Escape, F1 and Kivy's modules).
KEYS = {
    "d": "door: open / shut",
    "m": "maintenance key: on / off",
    "h": "help button: press",
    "p": "paper: low / ok",
}

_COLOURS = {(0.0, 0.0, 0.0): "dark", (1.0, 0.0, 0.0): "red", (0.0, 1.0, 0.0): "green",
            (0.0, 0.0, 1.0): "blue", (1.0, 0.5, 0.0): "amber"}


class ContactPin(MockPWMPin):
    """A mock pin with a switch on it: while `contact` is a level (True high, False low), the
    pin stays there whatever pull its input sets; None leaves it to the pull (an open switch)."""

    def __init__(self, factory: Any, info: Any) -> None:
        super().__init__(factory, info)
        self.contact: bool | None = None

    def _set_pull(self, value: str) -> None:
        super()._set_pull(value)
        if self.contact is not None and self._function == "input":
            self.set_contact(self.contact)

    def set_contact(self, level: bool | None) -> None:
        """Close the switch to `level` (or open it: None, back to the pull), as a hand would."""
        self.contact = level
        if self._function != "input":
            return
        if level is None:
            level = self._pull == "up"
        if level:
            self.drive_high()
        else:
            self.drive_low()


def use_mock_pins() -> MockFactory:
    """Make a MockFactory of ContactPins gpiozero's pin factory for this process (before the
    cabinet is built: the gpio backend takes gpiozero's default factory, as on a device)."""
    from gpiozero import Device

    factory = MockFactory(pin_class=ContactPin)
    Device.pin_factory = factory
    return factory


def with_cabinet(config_path: Path) -> Path:
    """A copy of the kiosk configuration at `config_path` with the gpio cabinet of `CABINET_SECTION`."""
    path = config_path.with_name("kiosk-cabinet.toml")
    path.write_text(config_path.read_text(encoding="utf-8") + CABINET_SECTION, encoding="utf-8")
    return path


class Panel:
    """The cabinet's switches as the person at the demo works them, on `factory`'s pins, wired as
    `cabinet` (the `[cabinet]` configuration: pins, active_low, bounce_s, hold_s) says. At rest
    from the start: door shut, key off, paper fine."""

    def __init__(self, factory: MockFactory, cabinet: Any) -> None:
        self._factory = factory
        self._config = cabinet
        self._lock = threading.Lock()
        self._releases: list[threading.Timer] = []
        self.closed = {"door": True, "maintenance": False, "help": False, "paper": False}   # contacts made
        for switch in self.closed:
            self._wire(switch)

    def keys(self) -> dict[str, Callable[[], None]]:
        """What each key of `KEYS` does (shifted or not)."""
        actions = {"d": lambda: self.toggle("door"), "m": lambda: self.toggle("maintenance"),
                   "h": self.press_help, "p": lambda: self.toggle("paper")}
        return {**actions, **{key.upper(): action for key, action in actions.items()}}

    def press(self, key: str) -> None:
        """The key `key` pressed on the kiosk's window."""
        self.keys()[key]()

    def toggle(self, switch: str) -> None:
        with self._lock:
            self.closed[switch] = not self.closed[switch]
            self._wire(switch)

    def press_help(self) -> None:
        """Press the help button, and let go once the driver has counted it (held past its
        debounce and `hold_s`), as a finger does."""
        with self._lock:
            self.closed["help"] = True
            self._wire("help")
            release = threading.Timer(max(self._config.bounce_s, self._config.hold_s) + 0.3, self._let_go)
            release.daemon = True
            self._releases = [pending for pending in self._releases if pending.is_alive()] + [release]
        release.start()

    def _let_go(self) -> None:
        with self._lock:
            self.closed["help"] = False
            self._wire("help")

    def close(self) -> None:
        """No help button let go after this."""
        with self._lock:
            for release in self._releases:
                release.cancel()
            self._releases.clear()

    def _wire(self, switch: str) -> None:
        pin = {"door": self._config.door_pin, "maintenance": self._config.maintenance_pin,
               "help": self._config.help_pin, "paper": self._config.paper_low_pin}[switch]
        closed = self.closed[switch]
        # A closed contact pulls the pin to ground (active_low) or to 3.3 V; open, the pull decides.
        self._factory.pin(pin).set_contact((not self._config.active_low) if closed else None)


def print_light(cabinet: Cabinet, say: Callable[[str], None] = print) -> Cabinet:
    """`cabinet` itself (the kiosk's, untouched otherwise), saying each pattern its status light
    is set to as it changes: its `show` is wrapped on this one object."""
    shown: list[Light] = []
    show = cabinet.show

    def show_and_say(light: Light) -> None:
        show(light)
        if not shown or shown[-1] is not light:
            shown.append(light)
            pattern = PATTERNS[light]
            say("demo: status light %s (%s%s)" % (light.value, _COLOURS.get(pattern.colour, "lit"),
                                                  ", blinking" if pattern.blink_s else ""))
    cabinet.show = show_and_say          # type: ignore[method-assign]
    return cabinet
