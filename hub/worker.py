"""The hub worker loop: poll a micro-batch, process it in one transaction, relay the outbox."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from hub.errors import TellonceError
from hub.model import LIFEEVENTS_TOPIC
from hub.ports import Clock, MessageSource, Store
from hub.processing import BatchProcessor, BatchSummary
from hub.relay import Relay

log = structlog.get_logger(__name__)

RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0)


@dataclass(slots=True)
class Totals:
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    disclosed: int = 0
    withheld: int = 0
    published: int = 0

    def add(self, summary: BatchSummary) -> None:
        self.accepted += summary.accepted
        self.rejected += summary.rejected
        self.duplicates += summary.duplicates
        self.disclosed += summary.disclosed
        self.withheld += summary.withheld


def stored_offsets(store: Store, group: str) -> Callable[[str, int], int | None]:
    """Where to resume a partition: the next offset saved with the last committed batch."""

    def lookup(topic: str, partition: int) -> int | None:
        with store.transaction() as tx:
            return tx.offsets(group, topic).get(partition)

    return lookup


class HubWorker:
    topics = (LIFEEVENTS_TOPIC,)

    def __init__(
        self,
        *,
        store: Store,
        source: MessageSource,
        processor: BatchProcessor,
        relay: Relay,
        clock: Clock,
        batch_size: int = 200,
        poll_timeout_ms: int = 500,
    ) -> None:
        self._store = store
        self._source = source
        self._processor = processor
        self._relay = relay
        self._clock = clock
        self._batch_size = batch_size
        self._poll_timeout_ms = poll_timeout_ms
        self.totals = Totals()

    def run(
        self,
        stop: threading.Event,
        *,
        idle_exit_s: float | None = None,
        on_batch: Callable[[Totals], None] | None = None,
    ) -> Totals:
        """Run until ``stop`` is set, or until idle for ``idle_exit_s`` with nothing to relay."""
        failures = 0
        last_activity = time.monotonic()
        while not stop.is_set():
            try:
                messages = self._source.poll(self._batch_size, self._poll_timeout_ms)
                if messages:
                    with self._store.transaction() as tx:
                        summary = self._processor.process(tx, messages)
                    self.totals.add(summary)
                    log.info(
                        "batch committed",
                        records=len(messages),
                        accepted=summary.accepted,
                        rejected=summary.rejected,
                        duplicates=summary.duplicates,
                        disclosed=summary.disclosed,
                        withheld=summary.withheld,
                    )
                published = self._relay.publish_pending()
                self.totals.published += published
                failures = 0
                if messages or published:
                    last_activity = time.monotonic()
                    if on_batch:
                        on_batch(self.totals)
                elif not self._source.ready:
                    # Idle time counts from the group join, which can take seconds.
                    last_activity = time.monotonic()
                elif idle_exit_s is not None and time.monotonic() - last_activity > idle_exit_s:
                    break
            except TellonceError as exc:
                if not exc.retriable:
                    raise
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                failures += 1
                log.warning("batch failed; will retry", error=str(exc), delay_s=delay)
                # The batch was rolled back: read it again from the stored offsets.
                self._source.rewind()
                stop.wait(delay)
        return self.totals

    def close(self) -> None:
        self._source.close()
        self._relay.close()
