"""The kernel's console switching, locked while the kiosk runs.

Ctrl+Alt+F<n> on a plugged keyboard asks the kernel (or SDL's own evdev
keyboard handling, which calls VT_ACTIVATE) for another virtual console. No
login waits there (systemd/install.sh masks the gettys), but an empty console
in front of a citizen is still a kiosk that has left its screen. The
VT_LOCKSWITCH ioctl turns every console switch off, the keyboard's and
VT_ACTIVATE's alike, until VT_UNLOCKSWITCH; it needs CAP_SYS_TTY_CONFIG, which
the kiosk's own process never has. So systemd runs this, with full privileges
(the `+` prefix), before the kiosk starts and after it stops
(systemd/kiosk.service): `kiosk console-switch lock|unlock`. A technician who
stops the kiosk gets the consoles back.

The lock is the kernel's, for the whole machine, and outlives this process.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

# <linux/vt.h>
VT_LOCKSWITCH = 0x560B
VT_UNLOCKSWITCH = 0x560C
CONSOLE = Path("/dev/console")
REQUESTS = {"lock": VT_LOCKSWITCH, "unlock": VT_UNLOCKSWITCH}

Ioctl = Callable[[int, int], object]


def switch(what: str, *, console: Path = CONSOLE, ioctl: Ioctl = fcntl.ioctl) -> str | None:
    """Lock or unlock console switching; None when done, else one line saying why not."""
    request = REQUESTS[what]
    try:
        fd = os.open(console, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        return "cannot open %s: %s" % (console, exc.strerror or type(exc).__name__)
    try:
        ioctl(fd, request)
    except OSError as exc:
        return "the kernel refused to %s console switching on %s: %s" % (what, console, exc.strerror
                                                                         or type(exc).__name__)
    finally:
        os.close(fd)
    log.info("console_switch.%sed console=%s", what, console)
    return None


def run(what: str) -> int:
    """`kiosk console-switch lock|unlock`: exit 0 when done, 1 with one line on stderr when not."""
    import sys

    problem = switch(what, console=CONSOLE)
    if problem is not None:
        print("console-switch: %s" % problem, file=sys.stderr)
        return 1
    return 0
