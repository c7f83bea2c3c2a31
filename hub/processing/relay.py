"""The outbox relay: publishes committed outbox rows, then marks them published.

At least once: a crash between publish and mark republishes the rows, and consumers dedupe on
the notification id. Rows go out in outbox order, so order per key holds.

Several workers share one outbox. Each round reads, publishes and marks its rows in one
transaction that first takes the relay's turn (``claim_relay``: an advisory lock on PostgreSQL,
the write lock on SQLite); a worker that finds it taken returns at once, and the holder
publishes every worker's rows. So no row goes out twice, and rows still go out in ``seq``
order: claiming rows with ``FOR UPDATE SKIP LOCKED`` would let two relays publish interleaved
runs of rows, breaking order per key, and relaying by owned partition would need the source
partition on each row and would shift at every rebalance. A call works for at most
``budget_s`` (and ``batch`` rows per round), so it never holds the consume loop for long.

A notification whose connector sent no receipt within ``redeliver_after_s`` is published again:
the broker may have lost it (the embedded Tansu keeps nothing across a restart), and the sink's
idempotency absorbs the repeat when it had not. After ``redeliver_max`` tries the relay stops:
a recipient whose connector is down for days should not find its topic flooded with copies;
``tellonce connector status`` shows those notifications as in flight.

The outbox is not an archive: a notice holds personal data, and once its receipt is recorded
the hub has no use for it. Given a ``retention``, the relay deletes what is past it: notices
whose receipt was recorded that long ago, and rejections published that long ago (they answer
no receipt). It looks once every ``purge_every_s`` and right after each publishing call, in its
own transaction bounded by ``purge_batch`` rows; a full batch means more is waiting, so the
next call looks again at once. So it keeps up with any rate while no call holds the consume
loop for long (in a thread of its own, ``BackgroundRelay``, it does not hold it at all).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import structlog

from hub.errors import TellonceError
from hub.model import OutboxMessage
from hub.ports import Clock, OutboxStore, Producer

log = structlog.get_logger(__name__)

PURGE_EVERY_S = 60.0
PURGE_BATCH = 1000


class Relay:
    """Publishes the outbox of ``store`` through ``producer``; needs the outbox role only."""

    def __init__(
        self,
        store: OutboxStore,
        producer: Producer,
        clock: Clock,
        batch: int = 500,
        *,
        redeliver_after_s: float = 300.0,
        redeliver_max: int = 12,
        budget_s: float = 1.0,
        retention: timedelta | None = None,
        purge_every_s: float = PURGE_EVERY_S,
        purge_batch: int = PURGE_BATCH,
    ) -> None:
        self._store = store
        self._producer = producer
        self._clock = clock
        self._batch = batch
        self._redeliver_after = timedelta(seconds=redeliver_after_s)
        self._redeliver_max = redeliver_max
        self._budget_s = budget_s
        self._retention = retention  # None: keep the outbox (tests of the relay alone)
        self._purge_every = timedelta(seconds=purge_every_s)
        self._purge_batch = purge_batch
        self._purge_due: datetime | None = None  # None: at the first call
        self.republished = 0
        self.purged = 0

    def republish_unreceipted(self) -> int:
        """Publish again notifications published long ago that no receipt answered."""
        now = self._clock()
        with self._store.transaction() as tx:
            if not tx.claim_relay():
                return 0  # another worker's relay holds the turn; it looks for these too
            stale = tx.unreceipted_outbox(
                now - self._redeliver_after, self._batch, self._redeliver_max
            )
            if stale:
                self._publish(stale)
                tx.mark_republished([m.message_id for m in stale], now)  # restarts their clock
        if not stale:
            return 0
        self.republished += len(stale)
        log.warning("notifications without a receipt published again", count=len(stale))
        return len(stale)

    def publish_pending(self) -> int:
        """Publish what is pending, in rounds of at most ``batch`` rows, until none is left or
        ``budget_s`` is spent, then purge the outbox if that is due; returns how many rows went
        out (0 when another relay holds the turn)."""
        published = self._publish_rounds()
        self.purge_if_due()
        return published

    def purge_if_due(self) -> int:
        """Delete up to ``purge_batch`` outbox rows past the retention, when due; how many.

        A database that fails here is logged and tried again at the next due time: the purge
        is a chore, and publishing must not stop for it."""
        if self._retention is None:
            return 0
        now = self._clock()
        if self._purge_due is not None and now < self._purge_due:
            return 0
        try:
            with self._store.transaction() as tx:
                if not tx.claim_relay():  # another worker's relay purges: look again next call
                    return 0
                gone = tx.purge_outbox(now - self._retention, self._purge_batch)
        except TellonceError as exc:
            if not exc.retriable:
                raise
            log.warning("outbox purge failed; will try again", error=str(exc))
            gone = 0
        # A full batch: more is waiting, so look again at the next call.
        self._purge_due = now if gone >= self._purge_batch else now + self._purge_every
        if gone:
            self.purged += gone
            log.info("outbox purged", count=gone)
        return gone

    def _publish_rounds(self) -> int:
        total = 0
        deadline = time.monotonic() + self._budget_s
        while True:
            with self._store.transaction() as tx:
                if not tx.claim_relay():
                    return total
                pending = tx.pending_outbox(self._batch)
                if pending:
                    self._publish(pending)
                    tx.mark_published([m.message_id for m in pending], self._clock())
            if not pending:
                return total
            total += len(pending)
            log.info("outbox published", count=len(pending))
            if len(pending) < self._batch or time.monotonic() >= deadline:
                return total

    def quiet(self) -> bool:
        """Always True: called inline, this relay has nothing in flight between calls."""
        return True

    def _publish(self, messages: list[OutboxMessage]) -> None:
        """Send ``messages`` in order; return once the broker acknowledged them all."""
        for message in messages:
            self._producer.send(message.topic, message.key, message.value, message.headers)
        self._producer.flush()

    def close(self) -> None:
        self._producer.close()
