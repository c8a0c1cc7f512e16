"""The state database's disk budget: warn early, and stop taking money before the disk is full.

Free space on the file system that holds the state directory is read with
`statvfs` (microseconds: it is asked before every charge). Below
`alert_bytes` a technician is alerted (once per crossing); below
`reserve_bytes` paid services are unavailable: `can_take_payment()` is
False, so nobody pays for a transaction the kiosk could not journal or
whose request it could not keep. The reserve is what the transactions
already under way still need.
"""

from __future__ import annotations

import enum
import logging
import os
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

MB = 1024 * 1024
LOW_ALERT = "state.disk_low"
RESERVE_ALERT = "state.disk_reserve"


class DiskLevel(enum.Enum):
    PLENTY = "plenty"
    LOW = "low"              # past the alert threshold: a technician is called
    RESERVE = "reserve"      # into the reserve: paid services are unavailable


class DiskBudget:
    def __init__(self, directory: Path | str, *, alert_bytes: int, reserve_bytes: int,
                 alert: Callable[[str], None], free_bytes: Callable[[], int] | None = None) -> None:
        """`free_bytes` reads the free space (default: `statvfs` of `directory`, as the kiosk's user
        may use it)."""
        self.directory = Path(directory)
        self.alert_bytes = alert_bytes
        self.reserve_bytes = reserve_bytes
        self._alert = alert
        self._free_bytes = free_bytes or self._statvfs
        self._level: DiskLevel | None = None

    def _statvfs(self) -> int:
        stats = os.statvfs(self.directory)
        return stats.f_bavail * stats.f_frsize

    def free(self) -> int | None:
        """Free bytes now; None when the file system cannot be asked (then nothing is refused)."""
        try:
            return self._free_bytes()
        except OSError as exc:
            log.error("disk.unreadable path=%s error=%s", self.directory, exc.strerror or exc)
            return None

    def level(self) -> DiskLevel:
        """Where the free space stands now; a change of level is logged, and alerted when it falls."""
        free = self.free()
        if free is None or free >= self.alert_bytes:
            level = DiskLevel.PLENTY
        elif free >= self.reserve_bytes:
            level = DiskLevel.LOW
        else:
            level = DiskLevel.RESERVE
        if level is not self._level:
            previous, self._level = self._level, level
            if level is DiskLevel.PLENTY:
                if previous is not None:
                    log.info("disk.level level=plenty free_mb=%d", (free or 0) // MB)
            else:
                log.warning("disk.level level=%s free_mb=%d alert_mb=%d reserve_mb=%d", level.value, free // MB,
                            self.alert_bytes // MB, self.reserve_bytes // MB)
                if previous is None or _order(level) > _order(previous):
                    self._alert(RESERVE_ALERT if level is DiskLevel.RESERVE else LOW_ALERT)
        return level

    def can_take_payment(self) -> bool:
        return self.level() is not DiskLevel.RESERVE


def _order(level: DiskLevel) -> int:
    return (DiskLevel.PLENTY, DiskLevel.LOW, DiskLevel.RESERVE).index(level)
