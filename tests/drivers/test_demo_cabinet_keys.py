"""The interactive demo's cabinet keys: each key works the gpio cabinet's switch on mock pins, as a hand would.

The cabinet is built as the demo builds it (`[cabinet]` of `cabinet_keys.CABINET_SECTION`, the `gpio`
backend on gpiozero's default pin factory, which `use_mock_pins` makes a MockFactory), with the
driver's own debounce timer: the test waits on the cabinet's events, never on a sleep.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from gpiozero import Device

from drivers.demo import cabinet_keys
from kiosk import backends
from kiosk import config as kiosk_config
from kiosk.ports.cabinet import CabinetInput, Light

EVENT_TIMEOUT_S = 5.0
MINIMAL = textwrap.dedent("""\
    device_id = "demo-kiosk-01"
    [central]
    url = "http://127.0.0.1:8080"
    [card]
    trusted_issuers = ["issuer.pub.pem"]
    [printer]
    host = "127.0.0.1"
    """)


@pytest.fixture
def demo_cabinet(tmp_path):
    """The demo's panel of switches and the kiosk's gpio cabinet on the same mock pins, watched."""
    (tmp_path / "issuer.pub.pem").write_text("-----BEGIN PUBLIC KEY-----\n")
    (tmp_path / "kiosk.toml").write_text(MINIMAL)
    before = Device.pin_factory
    factory = cabinet_keys.use_mock_pins()
    config = kiosk_config.load(cabinet_keys.with_cabinet(tmp_path / "kiosk.toml"))
    panel = cabinet_keys.Panel(factory, config.cabinet)          # before the kiosk builds its cabinet
    said: list[str] = []
    cabinet = cabinet_keys.print_light(backends.load("cabinet.backend", config.cabinet.backend)(config),
                                       say=said.append)
    events: queue.Queue[CabinetInput] = queue.Queue()
    cabinet.watch(events.put)
    try:
        yield panel, cabinet, events, factory, said
    finally:
        panel.close()
        cabinet.unwatch()
        cabinet.close()
        factory.close()
        Device.pin_factory = before


def next_input(events: queue.Queue) -> CabinetInput:
    return events.get(timeout=EVENT_TIMEOUT_S)


def test_the_keys_work_the_cabinet_through_its_pins(demo_cabinet):
    panel, _cabinet, events, factory, _said = demo_cabinet
    panel.press("m")          # first: the door was read shut at start, or its opening would come first
    assert next_input(events) is CabinetInput.MAINTENANCE_ON

    panel.press("d")
    assert factory.pin(5).state == 1              # the door's loop broken: the pull-up reads high
    assert next_input(events) is CabinetInput.DOOR_OPENED
    panel.press("d")
    assert next_input(events) is CabinetInput.DOOR_CLOSED

    panel.press("p")
    assert next_input(events) is CabinetInput.PAPER_LOW
    panel.press("h")
    assert next_input(events) is CabinetInput.HELP_PRESSED
    panel.press("p")
    assert next_input(events) is CabinetInput.PAPER_OK
    panel.press("m")
    assert next_input(events) is CabinetInput.MAINTENANCE_OFF
    assert events.empty()


def test_the_status_light_is_printed_when_it_changes(demo_cabinet):
    _panel, cabinet, _events, factory, said = demo_cabinet
    cabinet.show(Light.READY)
    cabinet.show(Light.READY)
    cabinet.show(Light.FAULT)
    assert [factory.pin(n).state for n in (17, 27, 22)] == [1, 0, 0]      # the LED's pins: red
    assert said == ["demo: status light ready (green)", "demo: status light fault (red, blinking)"]


def test_every_key_is_free_and_announced():
    assert set(cabinet_keys.KEYS) == {"d", "m", "h", "p"}
    assert "i" not in cabinet_keys.KEYS           # the demo's card key


# ---------------------------------------------------------------- the interactive demo, on Xvfb

def _lines_of(process) -> "queue.Queue[str]":
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_for_line(lines: "queue.Queue[str]", text: str, seen: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        seen.append(line)
        if text in line:
            return


@pytest.mark.realstack
def test_the_door_key_on_the_demo_window_puts_the_kiosk_out_of_service_and_back(tmp_path):
    """`make demo` with a display: D on the kiosk's window opens the cabinet's door (the light says
    out of service), D again shuts it (ready again). systemd's READY=1 says the window is up."""
    from drivers.demo.stack import VirtualScreen

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(120)
    seen: list[str] = []
    with VirtualScreen() as screen:
        env = dict(os.environ, DISPLAY=screen.display, NOTIFY_SOCKET=str(tmp_path / "notify"),
                   PYTHONUNBUFFERED="1", SDL_AUDIODRIVER="dummy")
        process = subprocess.Popen([sys.executable, "-m", "drivers.demo", "--out", str(tmp_path / "out")],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            lines = _lines_of(process)
            _wait_for_line(lines, "press d for the cabinet's door", seen, timeout=120)
            while notify.recv(4096).decode() != "READY=1":
                pass
            _wait_for_line(lines, "demo: status light ready (green)", seen)

            from tests.screens.xkeys import Keyboard      # libX11 and libXtst: loaded only where Xvfb runs
            keyboard = Keyboard(screen.display)
            try:
                window = keyboard.window_titled("Citizen kiosk")
                assert window is not None and keyboard.focus(window)
                keyboard.press("d")
                _wait_for_line(lines, "demo: status light out of service (red)", seen)
                keyboard.press("d")
                _wait_for_line(lines, "demo: status light ready (green)", seen)
                # Settled before it is stopped: a view still posted to Kivy's Clock when the app stops
                # fails the app's exit (a race of the kiosk's own, not of the keys).
                _wait_for_line(lines, "screen.shown name=attract", seen)
            finally:
                keyboard.close()
            assert any("cabinet.door_opened" in line for line in seen)
            assert any("cabinet.door_closed" in line for line in seen)
        finally:
            process.terminate()                 # the lockdown stops the app on SIGTERM; the demo cleans up
            try:
                code = process.wait(timeout=60)
                while not lines.empty():
                    seen.append(lines.get())
                assert code == 0, "\n".join(line for line in seen if "kivy INFO" not in line)
            finally:
                if process.poll() is None:
                    process.kill()
                notify.close()
