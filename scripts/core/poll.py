"""Waiting for something to become true, bounded in time: the pipeline's one polling loop."""

from __future__ import annotations

import time
from collections.abc import Callable


def poll_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Call ``condition`` every ``interval`` seconds until it is true (True) or ``timeout``
    seconds have passed (False). It is called at least once, and once more at the deadline."""
    deadline = clock() + timeout
    while True:
        if condition():
            return True
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        sleep(min(interval, remaining))
