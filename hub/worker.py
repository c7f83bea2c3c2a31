"""The hub worker loop: poll a micro-batch, process it in one transaction, relay the outbox.

One transaction per batch holds the life events' decisions, the consent changes and receipts
that came with them, their audit leaves, a signed checkpoint when one is due, and the consumed
offsets. The worker fails closed: it checks the signer before it accepts a batch, and a
checkpoint that cannot be signed rolls the whole batch back, so nothing is accepted into a log
that cannot be signed. It retries with backoff and resumes once the signer or database is back.
Every few seconds it checks the store fence (``hub.fence``) and stops if its consumer group now
works with another store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from hub.audit import Notary
from hub.errors import BrokerError, SignerError, StoreError, TellonceError
from hub.fence import StoreFence
from hub.model import LIFEEVENTS_TOPIC, InboundMessage
from hub.ports import Clock, MessageSource, Store, Transaction
from hub.processing import BatchProcessor, BatchSummary
from hub.relay import Relay

log = structlog.get_logger(__name__)

RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0)
REPUBLISH_CHECK_S = 5.0
# Idle polls come every poll timeout; looking for due checkpoints needs a transaction (a write
# lock on SQLite), and checkpoints are due by the tens of seconds: once a second is plenty.
CHECKPOINT_CHECK_S = 1.0


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


@dataclass(slots=True)
class Totals:
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    disclosed: int = 0
    withheld: int = 0
    published: int = 0
    republished: int = 0

    def add(self, summary: BatchSummary) -> None:
        self.accepted += summary.accepted
        self.rejected += summary.rejected
        self.duplicates += summary.duplicates
        self.disclosed += summary.disclosed
        self.withheld += summary.withheld


class Intake(Protocol):
    """Handles the records of one more topic inside the batch transaction (and saves their
    offsets): consent changes, receipts."""

    topic: str

    def process(self, tx: Transaction, messages: Sequence[InboundMessage]) -> Any: ...


def stored_offsets(store: Store, group: str) -> Callable[[str, int], int | None]:
    """Where to resume a partition: the next offset saved with the last committed batch."""

    def lookup(topic: str, partition: int) -> int | None:
        with store.transaction() as tx:
            return tx.offsets(group, topic).get(partition)

    return lookup


class HubWorker:
    def __init__(
        self,
        *,
        store: Store,
        source: MessageSource,
        processor: BatchProcessor,
        relay: Relay,
        clock: Clock,
        notary: Notary,
        intakes: Sequence[Intake] = (),
        batch_size: int = 200,
        poll_timeout_ms: int = 500,
        fence: StoreFence | None = None,
        fence_check_every_s: float = 30.0,
    ) -> None:
        self._store = store
        self._fence = fence
        self._fence_check = Every(fence_check_every_s)
        self._fence_check.due()  # the fence was just passed to join: next check in N seconds
        self._source = source
        self._processor = processor
        self._notary = notary
        self._intakes = {intake.topic: intake for intake in intakes}
        self._republish_check = Every(REPUBLISH_CHECK_S)
        self._checkpoint_check = Every(CHECKPOINT_CHECK_S)
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
        rewind = False
        last_activity = time.monotonic()
        while not stop.is_set():
            try:
                if rewind:
                    # The failed batch was rolled back: read it again from the stored offsets.
                    # Inside the try, because reading them fails too while the database is down.
                    self._source.rewind()
                    rewind = False
                self._check_fence_if_due()
                messages = self._source.poll(self._batch_size, self._poll_timeout_ms)
                if messages:
                    summary = self._commit_batch(messages)
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
                else:
                    self._checkpoint_if_due()
                    self._republish_if_due()
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
                if isinstance(exc, SignerError | StoreError):
                    # Fail closed: nothing of the batch was written; accept nothing until the
                    # audit log can be written and signed again.
                    log.error(
                        "audit log unavailable; not accepting events until it recovers",
                        error=str(exc),
                        retry_in_s=delay,
                    )
                else:
                    log.warning("batch failed; will retry", error=str(exc), delay_s=delay)
                rewind = True
                stop.wait(delay)
        return self.totals

    @property
    def topics(self) -> tuple[str, ...]:
        return (LIFEEVENTS_TOPIC, *self._intakes)

    def _commit_batch(self, messages: Sequence[InboundMessage]) -> BatchSummary:
        self._notary.ensure_available()
        by_topic: dict[str, list[InboundMessage]] = {}
        for message in messages:
            by_topic.setdefault(message.topic, []).append(message)
        with self._store.transaction() as tx:
            summary = self._processor.process(tx, by_topic.pop(LIFEEVENTS_TOPIC, []))
            for topic, records in by_topic.items():
                intake = self._intakes.get(topic)
                if intake is None:  # not subscribed; cannot happen unless misconfigured
                    log.error("records of an unexpected topic ignored", topic=topic)
                    continue
                outcome = intake.process(tx, records)
                log.info("intake committed", topic=topic, records=len(records), outcome=outcome)
            checkpoint = self._notary.maybe_checkpoint(tx, self._clock())
        if checkpoint is not None:
            log.info("audit checkpoint signed", seq=checkpoint.seq, size=checkpoint.size)
        return summary

    def _check_fence_if_due(self) -> None:
        """Stop (FenceError) once the consumer group works with another store."""
        if self._fence is None or not self._fence_check.due():
            return
        try:
            self._fence.check()
        except BrokerError as exc:
            # The fence held when the hub joined; a broker that cannot answer now shows in
            # the polls as well. Try again at the next check.
            log.warning("store fence not checked; will try again", error=str(exc))

    def _republish_if_due(self) -> None:
        """Look for notifications no receipt answered, every few seconds while idle."""
        if self._republish_check.due():
            self.totals.republished += self._relay.republish_unreceipted()

    def _checkpoint_if_due(self) -> None:
        """Sign leaves that waited long enough (consent changes made through the CLI, say)."""
        if not self._checkpoint_check.due():
            return
        with self._store.transaction() as tx:
            checkpoint = self._notary.maybe_checkpoint(tx, self._clock())
        if checkpoint is not None:
            log.info("audit checkpoint signed", seq=checkpoint.seq, size=checkpoint.size)

    def close(self) -> None:
        self._source.close()
        self._relay.close()
        if self._fence is not None:
            self._fence.close()
