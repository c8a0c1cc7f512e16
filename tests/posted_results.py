"""The test thread playing Kivy's part: it runs what the runtime's workers post, one at a time."""

from __future__ import annotations

import queue
import time

import pytest

from kiosk.runtime import Runtime
from kiosk.session import Step


def run_until(runtime: Runtime, posted: queue.Queue, step: Step, *, timeout: float, **view: object) -> None:
    """Run posted results on this thread until the session shows `step` (and `view`'s values)."""
    deadline = time.monotonic() + timeout

    def reached() -> bool:
        current = runtime.session.view()
        return current.step is step and all(getattr(current, k) == v for k, v in view.items())

    while not reached():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail("the kiosk stayed on %s instead of reaching %s %s"
                        % (runtime.session.view().step, step, view))
        try:
            posted.get(timeout=remaining)()
        except queue.Empty:
            continue
