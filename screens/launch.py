"""Start the Kivy app for a configuration: full screen on a device, a window
elsewhere, and optionally a scripted journey.

Kivy reads its settings when first imported, so this module sets them before
it imports anything else from Kivy. The runtime is built and started before
Kivy opens its window: central's catalogue, the card reader's watch and the
outbox get going while the window comes up, and their answers wait on
Kivy's Clock for the first frame.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from pathlib import Path
from typing import Callable

from kiosk.config import KioskConfig


def run(config: KioskConfig, make_runtime, *, journey: Path | None = None, out: Path | None = None,
        started_at: float | None = None, keys: dict[str, Callable[[], None]] | None = None) -> int:
    """Run until the window closes; `keys` maps a key to an action (the demo's card key)."""
    started_at = time.monotonic() if started_at is None else started_at
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_NO_CONFIG", "1")
    from kivy.config import Config

    Config.set("graphics", "width", str(config.display.width))
    Config.set("graphics", "height", str(config.display.height))
    Config.set("graphics", "fullscreen", "auto" if config.display.fullscreen else "0")
    Config.set("graphics", "resizable", "0")
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    from screens import lockdown, watchdog
    lockdown.configure(Config)      # no way out from the screen or a keyboard (screens/lockdown.py)

    from kivy.clock import Clock

    stopping = threading.Event()    # the app is stopping (SIGTERM, a restart): what is still posted is dropped

    def post_to_ui(call: Callable[[], None]) -> None:
        """From any thread: run `call` on Kivy's thread at the next frame, unless the app is stopping
        by then (a view shown on screens being torn down would raise)."""
        Clock.schedule_once(lambda _dt: None if stopping.is_set() else call(), 0)

    runtime = make_runtime(post_to_ui)
    exit_status: list[int] = []

    def exit_app(status: int) -> None:
        """The technician's restart (on Kivy's thread): the app stops and `kiosk run` exits with
        `status`, which systemd starts it again after."""
        from kivy.app import App
        exit_status.append(status)
        App.get_running_app().stop()
    runtime.maintenance = dataclasses.replace(runtime.maintenance, exit_app=exit_app)
    runtime.start()

    lockdown.stop_on_sigterm()      # before SDL starts: systemctl stop still stops the kiosk
    from screens.journey import JourneyRunner
    from screens.kiosk_app import KioskApp

    runner: list[JourneyRunner] = []

    def on_started(app: KioskApp) -> None:
        from kivy.core.window import Window
        lockdown.lock(app, Window, refuse_close=config.display.fullscreen)   # a developer's window still closes
        watchdog.start(Clock.schedule_once, Clock.schedule_interval)   # READY=1, then WATCHDOG=1 (systemd)
        if keys:
            from kivy.core.window import Window

            def on_key(_window, _key, _scancode, text, _modifiers):
                action = keys.get(text or "")
                if action is not None:      # off the UI thread: the action may wait on a device
                    threading.Thread(target=action, daemon=True).start()
                    return True
                return False
            Window.bind(on_key_down=on_key)
        if journey is not None:
            script = json.loads(Path(journey).read_text(encoding="utf-8"))
            runner.append(JourneyRunner(app, script, out or Path("journey-out"), started_at=started_at))
            runner[0].start()

    app = KioskApp(runtime, on_started=on_started, audio=config.audio, digits=config.display.digits)
    app.bind(on_stop=lambda *_args: stopping.set())
    try:
        app.run()
    finally:
        runtime.stop()
    if exit_status:
        return exit_status[-1]
    return runner[0].exit_code if runner else 0
