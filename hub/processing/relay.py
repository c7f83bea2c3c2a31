"""The outbox relay: publishes committed outbox rows, then marks them published.

At least once: a crash between publish and mark republishes the rows, and consumers dedupe on
the notification id. Rows go out in outbox order, so order per key holds.

A notification whose connector sent no receipt within ``redeliver_after_s`` is published again:
the broker may have lost it (the embedded Tansu keeps nothing across a restart), and the sink's
idempotency absorbs the repeat when it had not. After ``redeliver_max`` tries the relay stops:
a recipient whose connector is down for days should not find its topic flooded with copies;
``tellonce connector status`` shows those notifications as in flight.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from hub.ports import Clock, OutboxStore, Producer

log = structlog.get_logger(__name__)


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
    ) -> None:
        self._store = store
        self._producer = producer
        self._clock = clock
        self._batch = batch
        self._redeliver_after = timedelta(seconds=redeliver_after_s)
        self._redeliver_max = redeliver_max
        self.republished = 0

    def republish_unreceipted(self) -> int:
        """Publish again notifications published long ago that no receipt answered."""
        now = self._clock()
        with self._store.transaction() as tx:
            stale = tx.unreceipted_outbox(
                now - self._redeliver_after, self._batch, self._redeliver_max
            )
        if not stale:
            return 0
        for message in stale:
            self._producer.send(message.topic, message.key, message.value, message.headers)
        self._producer.flush()
        with self._store.transaction() as tx:
            tx.mark_republished([m.message_id for m in stale], now)  # restarts their clock
        self.republished += len(stale)
        log.warning("notifications without a receipt published again", count=len(stale))
        return len(stale)

    def publish_pending(self) -> int:
        """Publish everything pending; returns how many rows went out."""
        total = 0
        while True:
            with self._store.transaction() as tx:
                pending = tx.pending_outbox(self._batch)
            if not pending:
                return total
            for message in pending:
                self._producer.send(message.topic, message.key, message.value, message.headers)
            self._producer.flush()
            with self._store.transaction() as tx:
                tx.mark_published([m.message_id for m in pending], self._clock())
            total += len(pending)
            log.info("outbox published", count=len(pending))
            if len(pending) < self._batch:
                return total

    def close(self) -> None:
        self._producer.close()
