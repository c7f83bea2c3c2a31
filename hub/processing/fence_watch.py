"""The running hub's store-fence checks, in a thread of their own.

A check reads ``tellonce.hub.v1`` until it is quiet: half a second at least, up to the claim
log's read timeout when the broker is slow. In the consume loop that was a pause in
deciding every ``fence_check_every_s`` (it set the p99 latency at 100 events/s offered), and
a slow broker could hold the loop past the consumer's max poll interval. In a thread, the
checks run beside the batches, and the worker stops at its next loop once one found the group
working with another store (``StoreFence.check`` raised FenceError); a broker that cannot
answer is logged and asked again at the next check, as before.
"""

from __future__ import annotations

import threading

import structlog

from hub.errors import BrokerError
from hub.processing.fence import StoreFence

log = structlog.get_logger(__name__)

JOIN_TIMEOUT_S = 30.0


class FenceWatch:
    """Runs ``fence.check`` every ``every_s`` in a daemon thread, from the first
    ``raise_if_moved`` call (the fence was just passed to join)."""

    def __init__(self, fence: StoreFence, every_s: float) -> None:
        self._fence = fence
        self._every_s = every_s
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    def raise_if_moved(self) -> None:
        """Raise what a check found (FenceError: the group works with another store), or
        what broke the checks; otherwise return at once."""
        if self._failure is not None:
            raise self._failure
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="store-fence", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop checking (after a check under way) and close the claim log."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
        self._fence.close()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self._fence.check()
            except BrokerError as exc:
                # The fence held when the hub joined; a broker that cannot answer now shows in
                # the polls as well. Try again at the next check.
                log.warning("store fence not checked; will try again", error=str(exc))
            except Exception as exc:  # FenceError, or a surprise: the worker raises it
                self._failure = exc
                return
