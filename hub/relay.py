"""The outbox relay: publishes committed outbox rows, then marks them published.

At least once: a crash between publish and mark republishes the rows, and consumers dedupe on
the notification id. Rows go out in outbox order, so order per key holds.
"""

from __future__ import annotations

import structlog

from hub.ports import Clock, Producer, Store

log = structlog.get_logger(__name__)


class Relay:
    def __init__(self, store: Store, producer: Producer, clock: Clock, batch: int = 500) -> None:
        self._store = store
        self._producer = producer
        self._clock = clock
        self._batch = batch

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
