"""The outbox relay in a thread of its own, beside the worker's consume loop.

Inline, each batch waited for its own notices: the relay's transaction, the broker's acks and
marking the rows published took 28% of a worker's time (py-spy, bench/hub_bench.py), while
the database and the broker did the work and the worker's thread sat idle. In a thread, the
relay publishes one batch's notices while the worker decides the next batch: the waits of each
overlap with the other's work. Notices also go out as soon as their batch commits, not after
the next poll.

Nothing else changes: each round is ``Relay.publish_pending`` (its own transaction, its turn
taken with ``claim_relay``, rows in outbox order, marked only once the broker acknowledged
them), so the guarantees in ``hub.processing.relay`` hold as they are. A round that fails on
the database or the broker is retried with the worker's backoff while the worker goes on
committing batches (their notices wait in the outbox, which is what it is for); any other
failure is raised by the worker's next ``publish_pending`` call, as an inline relay's would be.
"""

from __future__ import annotations

import threading

import structlog

from hub.errors import TellonceError
from hub.processing.pacing import retry_delay
from hub.processing.relay import Relay

log = structlog.get_logger(__name__)

# Rows another process wrote (consent receipts through the CLI, another worker's notices left
# when it stopped) are looked for this often without a kick; the inline relay looked at every
# idle poll (500 ms by default).
IDLE_ROUND_S = 0.5
JOIN_TIMEOUT_S = 30.0


class BackgroundRelay:
    """Runs ``relay`` rounds in a daemon thread, woken by ``publish_pending``."""

    def __init__(self, relay: Relay, *, idle_round_s: float = IDLE_ROUND_S) -> None:
        self._relay = relay
        self._idle_round_s = idle_round_s
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy = False  # a round is running or a wake-up is pending
        self._published = 0  # rows the thread published
        self._reported = 0  # of which publish_pending returned so far
        self._settled = True  # as of the last publish_pending call: nothing was in flight
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    def publish_pending(self) -> int:
        """Wake the thread for a round and return the rows it published since the last call;
        raise what stopped the thread, if something did."""
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
            self._thread.start()
        with self._lock:
            self._settled = not self._busy
            published, self._reported = self._published - self._reported, self._published
            self._busy = True
        self._wake.set()
        return published

    def republish_unreceipted(self) -> int:
        """As ``Relay.republish_unreceipted``, in the caller's thread: it takes the relay's
        turn in its transaction like any round, so it never interleaves with one."""
        return self._relay.republish_unreceipted()

    def quiet(self) -> bool:
        """True when, at the last ``publish_pending`` call, no round was running or due, so
        that call reported every row published so far (rows committed since wake it again)."""
        with self._lock:
            return self._settled

    def close(self) -> None:
        """Stop the thread after its current round, then close the producer."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
        self._relay.close()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.wait(self._idle_round_s)
            self._wake.clear()
            with self._lock:
                self._busy = True
            try:
                published = self._relay.publish_pending()
            except TellonceError as exc:
                if not exc.retriable:
                    self._fail(exc)
                    return
                failures += 1
                delay = retry_delay(failures)
                log.warning("outbox relay failed; will retry", error=str(exc), delay_s=delay)
                self._stop.wait(delay)
                continue
            except Exception as exc:  # a bug or a library's surprise: the worker raises it
                self._fail(exc)
                return
            failures = 0
            if published:  # the round may have stopped at its row or time budget: go on
                self._wake.set()
            with self._lock:
                self._published += published
                self._busy = self._wake.is_set()  # more to do, or kicked during the round

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            self._busy = False
        self._failure = exc
