"""One daemon thread that runs rounds of work until stopped: the sync worker's and the reconciler's.

`round()` does what can be done now and returns the seconds until the next round (None: until
woken). A round that raises is logged and tried again after `retry_s`: an unexpected fault never
stops the thread. `wake()` runs the next round at once.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0


class Background:
    def __init__(self, name: str, round: Callable[[], "float | None"], *, retry_s: float) -> None:
        self._name = name
        self._round = round
        self._retry_s = retry_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT_S)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                wait = self._round()
            except Exception:
                log.exception("%s.round_failed", self._name)
                wait = self._retry_s
            self._wake.wait(timeout=wait)
            self._wake.clear()
