"""How long a message central could not take waits before it is tried again.

Exponential backoff with full jitter (as AWS's architecture blog named it):
after the n-th failure the wait is drawn evenly from [0, min(cap, base x 2**(n-1))],
so that many kiosks (or many messages) coming back after one outage do not
all knock at once, and none waits longer than the cap.
"""

from __future__ import annotations

import random
from typing import Callable

# jitter(ceiling) -> the wait, in [0, ceiling]
Jitter = Callable[[float], float]


def ceiling(base_s: float, failures: int, cap_s: float) -> float:
    """The longest wait after `failures` failures in a row (1 for the first)."""
    return min(cap_s, base_s * 2 ** min(max(failures, 1) - 1, 40))


def full_jitter(ceiling_s: float) -> float:
    """A wait drawn evenly from [0, ceiling_s]."""
    return random.uniform(0.0, ceiling_s)
