"""Where the technician PIN's wrong tries and lockout are kept, so that a power cycle does not clear them.

What is kept is two numbers, never a PIN: the wrong tries since the last right PIN or the last
lockout, and the end of the lockout as a **wall-clock** time (seconds since the epoch,
`time.time()`), None when not locked out. The session's clock is monotonic and starts again at
each boot, so a monotonic instant means nothing to the next run; the runtime converts at the
edge (`kiosk/runtime.py`): kept = wall now + seconds left; loaded = seconds left = kept - wall
now, counted from the session's monotonic now. A wall clock set forward while the kiosk was off
shortens the lockout; one set back could stretch it, so the session never takes more than one
whole lockout (`TechnicianPolicy.lockout_s`) from what was kept.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass(frozen=True)
class LockoutState:
    tries: int = 0                         # wrong PINs since the last right one or the last lockout
    locked_until: float | None = None      # wall clock, seconds since the epoch; None: not locked out


class TechnicianLockout(abc.ABC):
    @abc.abstractmethod
    def load(self) -> LockoutState:
        """What was last saved (LockoutState() when nothing was); quick, but it reads the disk."""

    @abc.abstractmethod
    def save(self, tries: int, locked_until: float | None) -> None:
        """Keep this, durably, in place of what was kept; call from a worker, never the UI thread."""

