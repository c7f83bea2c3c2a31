"""How often the hub's loops do their chores, and how long they back off after a failure."""

from __future__ import annotations

import time

# Waits after the 1st, 2nd, 3rd and later consecutive failures of a batch or a relay round.
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0)


def retry_delay(failures: int) -> float:
    """The wait before the next try, ``failures`` consecutive failures so far (1 or more)."""
    return RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1]


class Every:
    """True at most once per ``seconds`` (monotonic): paces the worker's idle chores."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.seconds:
            return False
        self._last = now
        return True
