"""The journey runner: drives the running app by real touch events.

A journey is JSON: ``{"name": "...", "steps": [...]}``; each step is one of

    {"await": "pin_entry", "timeout": 20}     wait for a screen (default 15 s), then screenshot it
    {"await": "identity", "photo": true}      ... and for the card's photo to be on it
    {"await": "pin_entry", "view": {"tries_left": 2}}   ... and for the session's view to show that
    {"await": "paying", "view": {"payment_qr": "*"}}    ... "*": any value but none (a QR code on show)
    {"await": "attract", "outbox_empty": true}   ... and for the outbox to hold nothing unanswered
    {"tap": "lang_ar", "timeout": 5}          touch the widget with that tap_id, once it can be touched
    {"pin": "1234"}                           touch those keypad digits one by one
    {"await": "attract", "screenshot": false} ... without a screenshot (a long journey)
    {"screenshot": "label"}                   screenshot what is shown now
    {"rss": "label"}                          note this process's resident memory (printed and reported)
    {"cabinet": "maintenance on"}             a cabinet input, as the cabinet's watch reports it (the key, the door)

Card insertion and removal happen outside: the runner prints
``JOURNEY screen <name>`` on standard output each time an awaited screen
comes, and the driver of the card simulator reacts to those lines. The run
ends with ``journey.json`` (the steps with their times, every screen seen)
in the output folder and exit status 0, or 1 at the first step that did not
happen in time.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import time
from pathlib import Path

from kivy.base import EventLoop
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.input.motionevent import MotionEvent

log = logging.getLogger(__name__)

DEFAULT_AWAIT_S = 15.0
DEFAULT_TAP_S = 5.0
FRAMES_BEFORE_SCREENSHOT = 3


class Tap(MotionEvent):
    """One finger on the screen at (x, y) in window pixels, through Kivy's own
    input path, as a touchscreen's driver would deliver it."""

    def __init__(self, x: float, y: float) -> None:
        super().__init__("journey", 1, {"x": x / (Window.width - 1.0), "y": y / (Window.height - 1.0)},
                         is_touch=True, type_id="touch")
        self.profile = ["pos"]

    def depack(self, args: dict) -> None:
        self.sx, self.sy = args["x"], args["y"]
        super().depack(args)

    def touch_down(self) -> None:
        EventLoop.post_dispatch_input("begin", self)

    def touch_up(self) -> None:
        EventLoop.post_dispatch_input("end", self)


class JourneyRunner:
    def __init__(self, app, journey: dict, out_dir: Path, *, started_at: float) -> None:
        self.app = app
        self.name = journey.get("name", "journey")
        self.steps = self._expand(journey["steps"])
        self.out_dir = Path(out_dir)
        (self.out_dir / "screens").mkdir(parents=True, exist_ok=True)
        self.started_at = started_at
        self.exit_code = 1
        self._index = 0
        self._step_started = time.monotonic()
        self._seen: list[dict] = []
        self._log: list[dict] = []
        self._frames_at_match: int | None = None
        self._touch: Tap | None = None
        self._shots = 0
        self._event = None

    @staticmethod
    def _expand(steps: list[dict]) -> list[dict]:
        out: list[dict] = []
        for step in steps:
            if "pin" in step:
                out += [{"tap": "key_" + d, "pin_digit": True} for d in str(step["pin"])]
            else:
                out.append(step)
        return out

    def start(self) -> None:
        self.app.bind(screen_name=self._on_screen)
        self._on_screen(self.app, self.app.screen_name)
        self._event = Clock.schedule_interval(self._poll, 1 / 30)

    # ------------------------------------------------------------ steps

    def _on_screen(self, _app, name: str) -> None:
        if name and (not self._seen or self._seen[-1]["screen"] != name):
            self._seen.append({"screen": name, "at_s": round(time.monotonic() - self.started_at, 3)})

    def _poll(self, _dt: float) -> None:
        if self._touch is not None:          # finish a tap begun on the previous frame
            self._touch.touch_up()
            self._touch = None
            self._next({})
            return
        if self._index >= len(self.steps):
            self._finish(0)
            return
        step = self.steps[self._index]
        waited = time.monotonic() - self._step_started
        if "await" in step:
            self._await(step, waited)
        elif "tap" in step:
            self._tap(step, waited)
        elif "screenshot" in step:
            self._next({"screenshot": self._screenshot(step["screenshot"])})
        elif "cabinet" in step:
            self._next({"cabinet": self._work_cabinet(step["cabinet"])})
        elif "rss" in step:
            rss_kb = _rss_kb()
            print("JOURNEY rss %s %d" % (step["rss"], rss_kb), flush=True)
            self._next({"rss_kb": rss_kb})
        else:
            self._fail("unknown step %r" % (step,))

    def _await(self, step: dict, waited: float) -> None:
        target = step["await"]
        view = self.app.view
        arrived = (self.app.screen_name == target and view is not None
                   and (not step.get("photo") or view.photo is not None)
                   and (not step.get("outbox_empty") or not self.app.runtime.outbox.has_pending())
                   and all(_shows(view, key, value) for key, value in step.get("view", {}).items()))
        if arrived:
            if self._frames_at_match is None:
                self._frames_at_match = Clock.frames_displayed
            if Clock.frames_displayed - self._frames_at_match >= FRAMES_BEFORE_SCREENSHOT:
                self._frames_at_match = None
                print("JOURNEY screen %s" % target, flush=True)
                self._next({"screenshot": self._screenshot(target)} if step.get("screenshot", True) else {})
            return
        if waited > float(step.get("timeout", DEFAULT_AWAIT_S)):
            self._fail("screen %s did not come within %ss (showing %s)" % (
                target, step.get("timeout", DEFAULT_AWAIT_S), self.app.screen_name))

    def _tap(self, step: dict, waited: float) -> None:
        widget = self._find(step["tap"])
        if widget is None:
            if waited > float(step.get("timeout", DEFAULT_TAP_S)):
                self._fail("nothing to tap named %s on screen %s" % (step["tap"], self.app.screen_name))
            return
        x, y = widget.to_window(*widget.center)
        self._touch = Tap(x, y)
        self._touch.touch_down()

    def _work_cabinet(self, what: str) -> str:
        """A cabinet input (the maintenance key, the door, ...) reaches the session as the runtime hands it
        on from the cabinet's watch; whatever `cabinet.backend` is, a journey can turn the key."""
        from kiosk.events import CabinetChanged
        from kiosk.ports.cabinet import CabinetInput

        self.app.send(CabinetChanged(CabinetInput(what)))
        return what

    def _find(self, tap_id: str):
        manager = self.app.manager
        for widget in self.app.root.walk(restrict=True):
            if getattr(widget, "tap_id", None) != tap_id or widget.disabled or widget.opacity == 0:
                continue
            if widget.height <= 0 or widget.width <= 0:
                continue
            screen = next((p for p in _parents(widget) if p.parent is manager), None)
            if screen is None or screen.name == manager.current:
                return widget
        return None

    def _screenshot(self, label: str) -> str:
        self._shots += 1
        target = self.out_dir / "screens" / ("%02d-%s.png" % (self._shots, label))
        written = Window.screenshot(name=str(target))
        os.replace(written, target)
        return str(target.relative_to(self.out_dir))

    def _next(self, detail: dict) -> None:
        step = self.steps[self._index]
        if not step.get("pin_digit"):
            entry = {"step": {k: v for k, v in step.items()}, "ok": True,
                     "elapsed_s": round(time.monotonic() - self._step_started, 3)}
            entry.update(detail)
            self._log.append(entry)
        self._index += 1
        self._step_started = time.monotonic()

    def _fail(self, why: str) -> None:
        print("JOURNEY failed: %s" % why, flush=True)
        step = self.steps[self._index]
        self._log.append({"step": step, "ok": False, "error": why,
                          "elapsed_s": round(time.monotonic() - self._step_started, 3)})
        self._screenshot("failed")
        self._finish(1)

    def _finish(self, code: int) -> None:
        self._event.cancel()
        self.exit_code = code
        report = {"journey": self.name, "result": "passed" if code == 0 else "failed",
                  "steps": self._log, "screens_seen": self._seen}
        (self.out_dir / "journey.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))
        print("JOURNEY %s %s" % (report["result"], self.name), flush=True)
        self.app.stop()


def _rss_kb() -> int:
    """This process's resident memory, as the kernel counts it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _plain(value):
    """A view value as JSON writes it: an enum by its value."""
    return value.value if isinstance(value, enum.Enum) else value


def _parents(widget):
    """The widget and its ancestors, up to the window (whose parent is itself)."""
    while widget is not None:
        yield widget
        if widget.parent is widget:
            return
        widget = widget.parent


def _shows(view, key: str, value) -> bool:
    """Whether the view's `key` is `value` as a journey writes it ("*": anything but nothing)."""
    shown = _plain(getattr(view, key, None))
    return shown not in (None, "", ()) if value == "*" else shown == value
