"""The running hub's fence checks: beside the consume loop, never in its way, and the worker
hears when its group moved to another store."""

from __future__ import annotations

import threading
from typing import cast

import pytest

from hub.errors import BrokerError, FenceError
from hub.processing.fence import StoreFence
from hub.processing.fence_watch import FenceWatch
from tests.watchdog import wait_until


class ScriptedFence:
    """A fence whose checks raise the scripted errors in turn (None: the fence holds), and
    whose check can be held open until ``release`` is set."""

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.checks = 0
        self.release = threading.Event()
        self.release.set()
        self.closed = False

    def check(self) -> None:
        self.checks += 1
        self.release.wait(10)
        if self.outcomes:
            outcome = self.outcomes.pop(0)
            if outcome is not None:
                raise outcome

    def close(self) -> None:
        self.closed = True


def watch(fence: ScriptedFence) -> FenceWatch:
    return FenceWatch(cast(StoreFence, fence), every_s=0.01)


def test_the_worker_stops_once_a_check_finds_another_store() -> None:
    """A check that raised FenceError makes every later call raise it; a broker that could
    not answer before it was only logged."""
    fence = ScriptedFence(BrokerError("broker unreachable"), None, FenceError("store store-b"))
    watcher = watch(fence)
    watcher.raise_if_moved()  # starts the checks

    def moved() -> bool:
        try:
            watcher.raise_if_moved()
        except FenceError:
            return True
        return False

    try:
        wait_until(moved, 10.0, "FenceError raised")
        with pytest.raises(FenceError, match="store store-b"):
            watcher.raise_if_moved()
    finally:
        watcher.close()
    assert fence.checks == 3
    assert fence.closed


def test_a_slow_check_does_not_hold_the_worker() -> None:
    """While a check waits on the broker, the worker's call returns at once."""
    fence = ScriptedFence()
    fence.release.clear()
    watcher = watch(fence)
    try:
        watcher.raise_if_moved()
        wait_until(lambda: fence.checks == 1, 10.0, "a check under way")
        watcher.raise_if_moved()  # returns: the check is still waiting on release
        assert fence.checks == 1
    finally:
        fence.release.set()
        watcher.close()
