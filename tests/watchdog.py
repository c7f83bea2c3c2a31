"""Bounds on waiting in tests: a run that stops only when idle is stopped after its limit
(a retry loop never idles), and a condition is awaited by polling it up to a deadline, never
by a fixed sleep. Either fails the test, naming what did not happen, instead of hanging the
suite."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


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


def wait_until(
    condition: Callable[[], T],
    timeout_s: float,
    failure: str | Callable[[], str],
    *,
    every_s: float = 0.05,
) -> T:
    """Poll ``condition`` every ``every_s`` until it returns something truthy, and return that;
    after ``timeout_s`` fail with ``failure`` (or what it returns then). ``condition`` may
    assert, e.g. that a process it waits on still runs."""
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(failure if isinstance(failure, str) else failure())
        time.sleep(every_s)
    return result
