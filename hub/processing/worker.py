"""The hub worker loop: poll a micro-batch, process it in one transaction, relay the outbox.

One transaction per batch holds the life events' decisions, the consent changes and receipts
that came with them, their audit leaves, a signed checkpoint when one is due, and the consumed
offsets. The worker fails closed: it checks the signer before it accepts a batch, and a
checkpoint that cannot be signed rolls the whole batch back, so nothing is accepted into a log
that cannot be signed. It retries with backoff and resumes once the signer or database is back.

Workers of one consumer group share the store. Each batch transaction first takes the audit
log's head (``lock_audit_head``), so concurrent batches queue for the log instead of both
appending at the same index and one aborting. To stay in the group while it works, waits or
backs off, the worker keeps each batch within a time budget (the next poll takes fewer records
after a slow batch, more again after a quick one) and polls with its partitions paused
(``keep_alive``) after a batch, through every backoff and while it queues for the log's head.
Every few seconds a thread checks the store fence (``hub.processing.fence_watch``), and the
worker stops once its consumer group works with another store.

A batch can also fail because of one record: a value that passed every check yet breaks a rule
of the database (RecordStoreError: a check or unique constraint, a value too long or out of
range), or an exception the hub did not foresee while writing it. Retrying that batch would
fail forever and stall every partition behind it, so the worker finds the record by halving:
each half is committed in its own transaction with its offsets (halves keep the records' order,
so offsets only move forward), a failing half is halved again, and the record that still fails
alone, twice (a unique key taken meanwhile by another worker passes the second time, as a
duplicate), is set aside in a transaction of its own: rejected as ``unstorable`` (receipts:
refused), naming the error class only. Infrastructure failures met on the way (database,
broker, signer) stop the search and fail closed as above; what was committed stays committed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from hub.audit.log import Notary
from hub.errors import RejectedEvent, SignerError, StoreError, TellonceError
from hub.model import InboundMessage
from hub.ports import Clock, MessageSource, Store, Transaction
from hub.processing.fence import StoreFence
from hub.processing.fence_watch import FenceWatch
from hub.processing.life_events import BatchProcessor, BatchSummary, Counts
from hub.processing.pacing import Every, retry_delay
from hub.processing.rejections import caused_by_record, error_class, unstorable
from hub.wire.topics import LIFEEVENTS_TOPIC

log = structlog.get_logger(__name__)

REPUBLISH_CHECK_S = 5.0
# Idle polls come every poll timeout; looking for due checkpoints needs a transaction (a write
# lock on SQLite), and checkpoints are due by the tens of seconds: once a second is plenty.
CHECKPOINT_CHECK_S = 1.0
# Longest the worker goes without polling before it proves it is alive (keep_alive); well
# under the consumer's max poll interval (5 s by default).
KEEP_ALIVE_S = 1.0


@dataclass(slots=True)
class Totals(Counts):
    """Everything the worker did since it started: the batches' counts and the relay's."""

    published: int = 0
    republished: int = 0


class Intake(Protocol):
    """Handles the records of one more topic inside the batch transaction (and saves their
    offsets): consent changes, receipts."""

    topic: str

    def process(self, tx: Transaction, messages: Sequence[InboundMessage]) -> object:
        """Handle ``messages`` in ``tx`` and save their offsets; a summary the worker logs."""

    def set_aside(self, tx: Transaction, message: InboundMessage, error: RejectedEvent) -> object:
        """Refuse ``message`` alone in ``tx`` with ``error`` and save the offset past it."""


class OutboxRelay(Protocol):
    """Publishes the outbox: ``hub.processing.relay.Relay`` inline, or in a thread of its own
    (``hub.processing.relay_thread.BackgroundRelay``)."""

    def publish_pending(self) -> int:
        """Publish (or start publishing) pending rows; rows published since the last call."""

    def republish_unreceipted(self) -> int:
        """Publish again notifications no receipt answered; how many."""

    def quiet(self) -> bool:
        """True when nothing is being published that a later call would still report."""

    def close(self) -> None:
        """Stop publishing and close the producer."""


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
        relay: OutboxRelay,
        clock: Clock,
        notary: Notary,
        intakes: Sequence[Intake] = (),
        batch_size: int = 200,
        poll_timeout_ms: int = 500,
        fence: StoreFence | None = None,
        fence_check_every_s: float = 30.0,
        batch_budget_s: float = 1.0,
    ) -> None:
        self._store = store
        self._fence = FenceWatch(fence, fence_check_every_s) if fence is not None else None
        self._source = source
        self._processor = processor
        self._notary = notary
        self._intakes = {intake.topic: intake for intake in intakes}
        self._republish_check = Every(REPUBLISH_CHECK_S)
        self._checkpoint_check = Every(CHECKPOINT_CHECK_S)
        self._relay = relay
        self._clock = clock
        self._batch_size = batch_size
        self._limit = batch_size  # records the next poll takes: fewer after a slow batch
        self._batch_budget_s = batch_budget_s
        self._polled_at = time.monotonic()
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
                self._stop_if_fence_moved()
                messages = self._source.poll(self._limit, self._poll_timeout_ms)
                self._polled_at = time.monotonic()
                if messages:
                    summary = self._commit(messages)
                    self._fit_batch(time.monotonic() - self._polled_at)
                    self._keep_alive_if_due()
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
                elif (
                    idle_exit_s is not None
                    and time.monotonic() - last_activity > idle_exit_s
                    and self._relay.quiet()
                ):
                    break
            except TellonceError as exc:
                if not exc.retriable:
                    raise
                failures += 1
                delay = retry_delay(failures)
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
                self._back_off(stop, delay)
        return self.totals

    def _fit_batch(self, took_s: float) -> None:
        """Halve the next poll's records after a batch over the time budget; double them
        (up to ``batch_size``) after one under half of it."""
        if took_s > self._batch_budget_s:
            self._limit = max(1, self._limit // 2)
        elif took_s < self._batch_budget_s / 2:
            self._limit = min(self._batch_size, self._limit * 2)

    def _keep_alive_if_due(self) -> None:
        """Poll with the partitions paused when the last poll was a while ago. Inside a batch
        transaction only while it waits for the audit head (``_take_audit_head``)."""
        if time.monotonic() - self._polled_at >= KEEP_ALIVE_S:
            self._source.keep_alive()
            self._polled_at = time.monotonic()

    def _take_audit_head(self, tx: Transaction) -> None:
        """Hold the audit log's head, keeping alive while other workers' batches hold it: waiting
        without bound behind two of them could outlast the consumer's max poll interval, and
        the evicted worker's rejoin then stalls the group. Only PostgreSQL ever makes it wait;
        a rebalance met in this keep-alive reads the stored offsets on another connection."""
        while not tx.lock_audit_head(wait_s=KEEP_ALIVE_S):
            self._keep_alive_if_due()

    def _back_off(self, stop: threading.Event, delay: float) -> None:
        """Wait ``delay`` (or until ``stop``), staying in the consumer group meanwhile."""
        until = time.monotonic() + delay
        while not stop.is_set() and (left := until - time.monotonic()) > 0:
            stop.wait(min(left, KEEP_ALIVE_S))
            try:
                self._keep_alive_if_due()
            except TellonceError as exc:  # the broker is what failed: the next poll says so
                log.warning("could not keep the consumer group membership", error=str(exc))

    @property
    def ready(self) -> bool:
        """True once the consumer group assigned this worker its partitions."""
        return self._source.ready

    @property
    def topics(self) -> tuple[str, ...]:
        return (LIFEEVENTS_TOPIC, *self._intakes)

    def _commit(self, messages: Sequence[InboundMessage]) -> BatchSummary:
        """Commit the batch in one transaction; when one of its records makes that fail, commit
        the others around it and set it aside."""
        try:
            return self._commit_batch(messages)
        except Exception as exc:
            if not caused_by_record(exc):
                raise
            log.warning(
                "batch failed on a record's data; committing it in parts to find the record",
                records=len(messages),
                error_class=error_class(exc),
            )
        done = BatchSummary()
        try:
            self._isolate(messages, done)
        except BaseException:
            self.totals.add(done)  # the parts committed before the failure count
            raise
        return done

    def _isolate(self, messages: Sequence[InboundMessage], done: BatchSummary) -> None:
        """Commit ``messages``, which failed together because of a record, in halves (each
        with its offsets, in order) and add each to ``done``; the record that still fails
        alone is set aside."""
        if len(messages) == 1:
            try:  # once more: a unique key another worker took meanwhile now reads as known
                done.merge(self._commit_batch(messages))
            except Exception as exc:
                if not caused_by_record(exc):
                    raise
                done.merge(self._set_aside(messages[0], exc))
            return
        middle = len(messages) // 2
        for half in (messages[:middle], messages[middle:]):
            self._keep_alive_if_due()  # the search takes a transaction per part
            try:
                done.merge(self._commit_batch(half))
            except Exception as exc:
                if not caused_by_record(exc):
                    raise
                self._isolate(half, done)

    def _set_aside(self, message: InboundMessage, exc: Exception) -> BatchSummary:
        """Reject (receipts: refuse) the one record the database will not take, in a
        transaction of its own that moves its partition's offset past it."""
        position = message.position
        error = unstorable(error_class(exc))
        summary = BatchSummary()
        self._notary.ensure_available()
        try:
            with self._store.transaction() as tx:
                self._take_audit_head(tx)
                if message.topic == LIFEEVENTS_TOPIC:
                    summary = self._processor.set_aside(tx, message, error)
                else:  # only a topic with an intake gets this far (see _commit_batch)
                    self._intakes[message.topic].set_aside(tx, message, error)
                checkpoint = self._notary.maybe_checkpoint(tx, self._clock())
        except Exception as failure:
            if not caused_by_record(failure):
                raise
            # Even the rejection, made of the hub's own codes and hashes, was refused: the
            # tables do not behave as tellonce's schema says. Fail closed until they do.
            raise StoreError(
                f"the database refused to record the rejection of record {position} "
                f"({error_class(failure)}); look for constraints or triggers added to tellonce's "
                "tables and remove them: the hub retries until it can store the rejection",
                retriable=True,
            ) from failure
        log.warning(
            "record set aside: it cannot be stored", position=position, error_class=error_class(exc)
        )
        if checkpoint is not None:
            log.info("audit checkpoint signed", seq=checkpoint.seq, size=checkpoint.size)
        return summary

    def _commit_batch(self, messages: Sequence[InboundMessage]) -> BatchSummary:
        self._notary.ensure_available()
        by_topic: dict[str, list[InboundMessage]] = {}
        for message in messages:
            by_topic.setdefault(message.topic, []).append(message)
        with self._store.transaction() as tx:
            self._take_audit_head(tx)  # first: batches queue here, not on the log's index
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

    def _stop_if_fence_moved(self) -> None:
        """Stop (FenceError) once a check found the group working with another store."""
        if self._fence is not None:
            self._fence.raise_if_moved()

    def _republish_if_due(self) -> None:
        """Look for notifications no receipt answered, every few seconds while idle."""
        if self._republish_check.due():
            self.totals.republished += self._relay.republish_unreceipted()

    def _checkpoint_if_due(self) -> None:
        """Sign leaves that waited long enough (consent changes made through the CLI, say)."""
        if not self._checkpoint_check.due():
            return
        with self._store.transaction() as tx:
            self._take_audit_head(tx)
            checkpoint = self._notary.maybe_checkpoint(tx, self._clock())
        if checkpoint is not None:
            log.info("audit checkpoint signed", seq=checkpoint.seq, size=checkpoint.size)

    def close(self) -> None:
        self._source.close()
        self._relay.close()
        if self._fence is not None:
            self._fence.close()
