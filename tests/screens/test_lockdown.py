"""Nobody leaves the kiosk app from a keyboard plugged into it, and systemd still stops it.

The real app (`kiosk run`, full screen as on a device, every device a fake) on
an Xvfb display, told to notify a socket of ours as systemd would: READY=1
says the first screen is up, and each WATCHDOG=1 is a turn of its UI loop,
which is how the test knows its keys were handled without sleeping. Then a
keyboard's escape hatches, and a window manager's close request: the process
must still run, on the same screen, with the same picture on it.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image, ImageChops

pytestmark = pytest.mark.realstack   # Xvfb: see README

SIZE = (1024, 600)
# Kivy's exits and panels, a desktop's, the X server's and the consoles'.
ESCAPE_KEYS = ["Escape", "ctrl+c", "ctrl+q", "ctrl+w", "ctrl+e", "F11", "F12", "alt+F4", "ctrl+alt+BackSpace",
               "ctrl+alt+Delete", "ctrl+alt+F2", "super", "F1"]    # F1 last: a second Escape would close its panel


@pytest.fixture
def display(tmp_path):
    """Xvfb whose screen is also a file (-fbdir), to compare what is shown."""
    fbdir = tmp_path / "fb"
    fbdir.mkdir()
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "%dx%dx24" % SIZE,
                             "-nolisten", "tcp", "-fbdir", str(fbdir)],
                            pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as announced:
        number = announced.readline().strip()
    assert number, "Xvfb did not start"
    yield ":" + number, fbdir / "Xvfb_screen0"
    xvfb.terminate()
    xvfb.wait(timeout=10)


@pytest.fixture
def config(tmp_path, issuer):
    """A kiosk whose devices are all fakes and whose central does not answer: it stays on one screen."""
    (tmp_path / "issuer.pub.pem").write_bytes(issuer.public_pem)
    path = tmp_path / "kiosk.toml"
    path.write_text('device_id = "kiosk-lockdown"\n'
                    '[central]\nurl = "http://127.0.0.1:9"\ndevice_key_path = "state/device-key.pem"\n'
                    '[card]\nbackend = "fake"\ntrusted_issuers = ["issuer.pub.pem"]\n'
                    '[payment]\nbackend = "fake"\n[printer]\nbackend = "fake"\n'
                    '[outbox]\npath = "state/outbox.sqlite3"\n'
                    '[display]\nfullscreen = true\nwidth = %d\nheight = %d\n' % SIZE)
    return path


class Notifications:
    """systemd's side of $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def next(self, timeout: float = 60) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def wait_for(self, message: str, timeout: float = 60) -> None:
        while self.next(timeout) != message:
            pass

    def drain(self) -> None:
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(4096)
        except BlockingIOError:
            pass

    def turns(self, count: int) -> None:
        """Wait until the UI loop has gone round `count` more times (a WATCHDOG=1 each)."""
        self.drain()
        for _ in range(count):
            self.wait_for("WATCHDOG=1", timeout=30)


@pytest.fixture
def kiosk(tmp_path, display, config):
    """The app started as kiosk.service starts it; its log lines on a queue."""
    name, _framebuffer = display
    notifications = Notifications(tmp_path / "notify")
    env = dict(os.environ, DISPLAY=name, NOTIFY_SOCKET=str(notifications.path), WATCHDOG_USEC="200000",
               SDL_AUDIODRIVER="dummy")
    env.pop("WATCHDOG_PID", None)
    process = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "run", "--config", str(config)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=tmp_path)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            lines.put(line)
    threading.Thread(target=read, daemon=True).start()
    yield process, notifications, output
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)
    notifications.sock.close()
    (tmp_path / "kiosk.log").write_text("\n".join(output) + "\n")


def screen_shown(output: list[str]) -> list[str]:
    return [m.group(1) for line in output for m in [re.search(r"screen\.shown name=(\w+)", line)] if m]


def picture(framebuffer: Path) -> Image.Image:
    """The X screen as Xvfb keeps it (XWD: a big-endian header, then 32-bit pixels)."""
    data = framebuffer.read_bytes()
    header = [int.from_bytes(data[i:i + 4], "big") for i in range(0, 100, 4)]
    header_size, width, height, bytes_per_line, ncolours = header[0], header[4], header[5], header[12], header[19]
    start = header_size + 12 * ncolours
    return Image.frombuffer("RGBX", (width, height), data[start:start + bytes_per_line * height], "raw", "BGRX",
                            bytes_per_line, 1).convert("RGB")


def changed_fraction(before: Image.Image, after: Image.Image) -> float:
    difference = ImageChops.difference(before, after).convert("L").point(lambda v: 255 if v > 8 else 0)
    return difference.histogram()[255] / (before.width * before.height)


def test_no_key_and_no_close_request_gets_out_of_the_kiosk(kiosk, display):
    process, notifications, output = kiosk
    name, framebuffer = display
    notifications.wait_for("READY=1")               # the first screen is drawn
    notifications.turns(2)
    settled = screen_shown(output)
    # (A kiosk whose central does not answer goes to out of service, and stays there.)
    while settled[-1:] != ["out_of_service"]:
        notifications.turns(1)
        assert process.poll() is None, "\n".join(output[-30:])
        settled = screen_shown(output)
    notifications.turns(3)
    before = picture(framebuffer)

    from tests.screens.xkeys import Keyboard      # libX11 and libXtst: loaded only where Xvfb runs
    keyboard = Keyboard(name)
    try:
        window = keyboard.window_titled("Citizen kiosk")
        assert window is not None and keyboard.focus(window)
        for chord in ESCAPE_KEYS:
            keyboard.press(chord)
        keyboard.ask_to_close(window)              # a window manager's Alt+F4
    finally:
        keyboard.close()
    try:
        notifications.turns(3)                      # every key and the request were handled by now
    except TimeoutError:
        pytest.fail("the kiosk stopped feeding its watchdog (exit code %s):\n%s"
                    % (process.poll(), "\n".join(output[-30:])))

    assert process.poll() is None, "\n".join(output[-30:])
    assert screen_shown(output) == settled
    assert any("window.close_refused" in line for line in output)
    fraction = changed_fraction(before, picture(framebuffer))
    assert fraction < 0.02, "%.1f%% of the screen changed (a panel opened?)" % (100 * fraction)


def test_sigterm_still_stops_the_kiosk(kiosk):
    """`systemctl stop kiosk` (and a shutdown): SIGTERM must not be taken for a close request."""
    process, notifications, output = kiosk
    notifications.wait_for("READY=1")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, "\n".join(output[-30:])
    assert any("kiosk.stopping reason=SIGTERM" in line for line in output)
