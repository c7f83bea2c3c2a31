"""A bound on runs that stop only when idle: a retry loop never idles, so a run still going
after its limit is stopped and the test fails, instead of hanging the suite."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def watchdog(stop: threading.Event, what: str, limit_s: float) -> Iterator[None]:
    """Set ``stop`` if the block still runs after ``limit_s``, then fail naming ``what``."""
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        stop.set()

    timer = threading.Timer(limit_s, expire)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
    if expired.is_set():
        raise AssertionError(f"{what} was still running after {limit_s}s; stopped it")
