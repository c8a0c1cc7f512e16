"""No way out of the kiosk from its touchscreen or from a keyboard plugged in.

A citizen (or a prankster with a USB keyboard) must not reach a desktop, a
console, Kivy's settings panel or its inspector. What Kivy and SDL offer
out of the box, and what closes each door:

- Escape quits a Kivy app (`exit_on_escape`): off in `screens/launch.py`.
- F1 opens Kivy's settings panel (App binds it at start): unbound here.
- Kivy modules (the inspector on Ctrl+E, `keybinding`'s F11/F12, the FPS
  monitor) are switched on from the configuration or the command line: the
  kiosk reads neither (KIVY_NO_CONFIG, KIVY_NO_ARGS), and `configure` empties
  the list besides, so a stray `KCFG_MODULES_*` variable cannot add one.
- A window manager's Alt+F4 (or anything else that asks the window to close)
  reaches Kivy as `on_request_close`: always refused.
- SIGTERM (`systemctl stop`, a shutdown) must still stop the kiosk, cleanly.
  SDL turns SIGTERM into the same close request as Alt+F4 when nobody handles
  the signal, so `stop_on_sigterm` handles it first and stops the app itself.
  Ctrl+C in the window is an ordinary key; under systemd there is no
  terminal whose Ctrl+C would become SIGINT.

Ctrl+Alt+Backspace and Ctrl+Alt+F<n> belong to the display server and the
kernel's consoles, not to the app: on the device there is no X server,
console switching is locked while the kiosk runs (screens/console_switch.py,
run by systemd as root), and the install script leaves no login on any
console besides (systemd/install.sh).
"""

from __future__ import annotations

import logging
import signal

log = logging.getLogger(__name__)


def configure(config) -> None:
    """Before Kivy opens its window: no quitting on Escape, no Kivy modules.
    `config` is `kivy.config.Config`."""
    config.set("kivy", "exit_on_escape", "0")
    for name in list(config.options("modules")) if config.has_section("modules") else []:
        config.remove_option("modules", name)


def stop_on_sigterm() -> None:
    """SIGTERM stops the app as closing its window would have. Installed before
    SDL starts (SDL only takes a signal nobody handles)."""
    def stop(_signum, _frame) -> None:
        from kivy.app import App

        log.info("kiosk.stopping reason=SIGTERM")
        app = App.get_running_app()
        if app is None:
            raise SystemExit(0)
        app.stop()

    signal.signal(signal.SIGTERM, stop)


def lock(app, window, *, refuse_close: bool = True) -> None:
    """Once the app runs (`on_start`): F1 opens nothing, and, full screen as on a
    device (`refuse_close`), no close request is obeyed; a developer's window
    (`display.fullscreen = false`, the demo's) keeps its close button. `app` is
    the running App, `window` Kivy's Window."""
    window.unbind(on_keyboard=app._on_keyboard_settings)   # bound by App.run; F1 toggled the panel
    if not refuse_close:
        return

    def refuse(*_args, **kwargs) -> bool:
        log.info("window.close_refused source=%s", kwargs.get("source", "window"))
        return True

    window.bind(on_request_close=refuse)
