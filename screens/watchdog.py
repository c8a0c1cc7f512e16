"""Tell systemd the kiosk is up, and keep telling it the screen is alive.

`kiosk.service` is `Type=notify` with `WatchdogSec=`: systemd restarts the
kiosk when `WATCHDOG=1` stops coming. It is sent from a callback on Kivy's
Clock, so it stops when the UI loop stops (a hung frame, a deadlock on the
UI thread), which is the failure nobody at the kiosk could otherwise
recover from: the screen would stay frozen on a citizen. `READY=1` goes
once the first screen is drawn, so `systemctl start` returns when the
touchscreen shows the kiosk, not when Python started.

The protocol (sd_notify(3)) is one datagram on the AF_UNIX socket named in
$NOTIFY_SOCKET; it is sent here directly rather than through the
`sdnotify` package: that is the same dozen lines, unmaintained since 2017,
and hides every error. Outside systemd (no $NOTIFY_SOCKET) nothing is sent.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Callable, Mapping

log = logging.getLogger(__name__)


def notify(message: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send `message` ("READY=1", "WATCHDOG=1", ...) to the service manager;
    False when there is none to tell. A failed send is logged, never raised:
    a notification must not take the screen down."""
    address = environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):             # an abstract socket: a leading NUL byte on the wire
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode("utf-8"), address)
    except OSError as exc:
        log.warning("watchdog.notify_failed error=%s", exc.__class__.__name__)
        return False
    return True


def feed_interval_s(environ: Mapping[str, str] = os.environ) -> float | None:
    """Half of the watchdog's timeout, as sd_watchdog_enabled(3) advises; None
    when systemd watches no watchdog for this process."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


def start(schedule_once: Callable, schedule_interval: Callable,
          environ: Mapping[str, str] = os.environ) -> None:
    """Send READY=1 once the first frame is drawn and WATCHDOG=1 every half timeout, both
    from the UI loop. Takes Kivy's `Clock.schedule_once` and
    `Clock.schedule_interval` (this module imports no Kivy, so the protocol
    is tested on a plain socket)."""
    def ready(_dt) -> None:
        if notify("READY=1", environ):
            log.info("watchdog.ready")
    # Called at start-up, before the first frame: the inner callback runs at the tick after it is drawn.
    schedule_once(lambda _dt: schedule_once(ready, 0), 0)
    interval = feed_interval_s(environ)
    if interval is not None:
        schedule_interval(lambda _dt: notify("WATCHDOG=1", environ), interval)
        log.info("watchdog.fed every_s=%.1f", interval)
