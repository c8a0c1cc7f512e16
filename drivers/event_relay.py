"""Events from a device to its one watcher, on a thread of their own.

A device notices changes on threads of its own (a PC/SC watch, a GPIO edge,
a test working a fake); its watcher hears them in order, one at a time, and
never after `stop` has returned, even while a callback is running as it is
called. Every device with a `watch` relays its events through one of these.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from typing import Callable, Generic, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E", bound=enum.Enum)


class EventRelay(Generic[E]):
    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.RLock()               # held while a callback runs
        self._queue: queue.SimpleQueue[E | None] | None = None
        self._callback: Callable[[E], None] | None = None

    @property
    def active(self) -> bool:
        """Somebody is watching."""
        return self._queue is not None

    def start(self, callback: Callable[[E], None]) -> None:
        """Relay every event from now on to `callback` (and no more to an earlier one)."""
        self.stop()
        events: queue.SimpleQueue[E | None] = queue.SimpleQueue()
        with self._lock:
            self._queue, self._callback = events, callback
        threading.Thread(target=self._run, args=(events, callback), name=self._name + "-events",
                         daemon=True).start()

    def put(self, event: E) -> None:
        """Queue `event` for the watcher; nothing when nobody watches. Never blocks, takes no lock."""
        events = self._queue
        if events is not None:
            events.put(event)

    def stop(self) -> None:
        """No callback after this returns: it waits for one in progress (unless called from it)."""
        with self._lock:
            events, self._queue, self._callback = self._queue, None, None
        if events is not None:
            events.put(None)

    def _run(self, events: queue.SimpleQueue[E | None], callback: Callable[[E], None]) -> None:
        while (event := events.get()) is not None:
            with self._lock:
                if self._callback is not callback:
                    return
                try:
                    callback(event)
                except Exception:
                    log.exception("%s.event_callback_failed event=%s", self._name, event.name.lower())
