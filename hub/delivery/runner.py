"""The connector runner: take notifications off a recipient's topic, hand them to its sink,
report a receipt for each.

Offsets are committed to Kafka only after the sink answered (and flushed, if it buffers) and
the receipts and dead letters were acknowledged, so a crash redelivers; the sink's idempotency
on the notification id absorbs the repeat. Receipts of a batch go out after the flush, so the
hub never records as delivered what a buffering sink has not made durable. A broker that
cannot be reached (a leader moving, the whole cluster restarting) is asked again after a
backoff: the connector goes on by itself once the cluster is back.

A RETRY answer is retried in place, after a backoff the retry policy sets, so later
notifications for the same client never overtake it. Once the policy's time budget is spent,
or on FAILED, the notification goes to the recipient's dead-letter topic with a receipt saying
so (``errors.tolerance=all``), or the connector stops without committing
(``errors.tolerance=none``). Those decisions are middleware's (``hub.delivery.middleware``):
this module is the loop that asks for them and carries them out.

Each receipt names the notice it answers by the notice's digest (header ``ce_noticedigest``),
and is signed with the connector's own key when it has one (README, "Signed receipts"): the
hub records no delivery on a receipt it cannot tell came from this recipient about that notice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from connectors.contract import DeliveryResult, Notification, Outcome, Sink
from hub.delivery.middleware import (
    Chain,
    DeadLetters,
    Middleware,
    Retries,
    misdirected,
    unread_id,
    unreadable,
    unverified,
)
from hub.delivery.retries import RetryPolicy
from hub.errors import ConnectorStopped, RejectedEvent, TellonceError
from hub.model import Headers, InboundMessage
from hub.ports import Clock, Codec, Decoded, MessageSource, Producer, RecordSigner
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.events import EVENT_TYPES
from hub.wire.schemas import RECEIPT_SCHEMA
from hub.wire.signatures import (
    RECEIPT_CONTEXT,
    NoticeSignatures,
    notice_digest_header,
    signed,
)
from hub.wire.topics import RECEIPTS_TOPIC, connector_source

log = structlog.get_logger(__name__)

# ConnectorStopped is raised by the DeadLetters middleware; callers have caught it here.
__all__ = ["ConnectorRunner", "ConnectorStopped", "DeliveryTotals", "to_notification"]

NOTICE_TYPES = {t.notice_schema: t.name for t in EVENT_TYPES.values()}
KEEP_ALIVE_S = 1.0  # well inside the shortest max_poll_interval_ms the settings allow
# Waits after the 1st, 2nd, 3rd and later consecutive failures to reach the broker.
BROKER_RETRY_S = (0.5, 1.0, 2.0, 5.0)


@dataclass(slots=True)
class DeliveryTotals:
    delivered: int = 0
    duplicates: int = 0
    failed: int = 0  # dead-lettered (failed for good or out of retry time)
    retries: int = 0  # attempts that were retried


def to_notification(decoded: Decoded) -> Notification:
    """The notice in ``decoded`` as a connector hands it to its sink; RejectedEvent when it is
    not a notice schema."""
    event_type = NOTICE_TYPES.get(decoded.entry.name)
    if event_type is None:
        raise RejectedEvent("unexpected_schema", f"{decoded.entry.name} is not a notice schema")
    return Notification(
        notification_id=decoded.text("notification_id"),
        recipient=decoded.text("recipient"),
        subject_id=decoded.text("subject_id"),
        event_type=event_type,
        event_id=decoded.text("event_id"),
        event_source=decoded.text("event_source"),
        event_time=decoded.moment("event_time"),
        consent_revision=decoded.text("consent_revision"),
        fields={name: decoded.record.get(name) for name in decoded.texts("disclosed_fields")},
    )


class ConnectorRunner:
    def __init__(
        self,
        *,
        recipient: str,
        source: MessageSource,
        codec: Codec,
        sink: Sink,
        producer: Producer,
        clock: Clock,
        batch_size: int = 200,
        poll_timeout_ms: int = 500,
        retry: RetryPolicy | None = None,
        middleware: Middleware | None = None,
        progress_every_s: float = 10.0,
        notices: NoticeSignatures | None = None,
        receipt_signer: RecordSigner | None = None,
    ) -> None:
        self.recipient = recipient
        self._notices = notices
        self._receipt_signer = receipt_signer
        policy = retry or RetryPolicy()
        # The caller's middleware first: it sees every hook, and may decide before the defaults.
        self._mw = Chain(
            middleware or Middleware(),
            Retries(policy),
            DeadLetters(recipient, producer, clock, tolerate_all=policy.tolerate_all),
        )
        self._progress_every_s = progress_every_s
        self._source = source
        self._codec = codec
        self._sink = sink
        self._producer = producer
        self._clock = clock
        self._batch_size = batch_size
        self._poll_timeout_ms = poll_timeout_ms
        self.totals = DeliveryTotals()
        self._receipts: list[tuple[bytes, Headers]] = []  # sent once the sink has flushed

    def run(
        self,
        stop: threading.Event,
        *,
        idle_exit_s: float | None = None,
        on_batch: Callable[[DeliveryTotals], None] | None = None,
    ) -> DeliveryTotals:
        last_activity = time.monotonic()
        started = last_progress = time.monotonic()
        rewind = False  # a rewind the broker could not answer yet
        failures = 0
        while not stop.is_set():
            try:
                if rewind:
                    self._source.rewind()
                    rewind = False
                messages = self._source.poll(self._batch_size, self._poll_timeout_ms)
            except TellonceError as exc:
                if not exc.retriable:
                    raise
                # The broker cannot be reached (a whole-cluster restart): wait, then ask again.
                failures += 1
                delay = BROKER_RETRY_S[min(failures, len(BROKER_RETRY_S)) - 1]
                log.warning("broker unavailable; will retry", error=str(exc), retry_in_s=delay)
                stop.wait(delay)
                continue
            failures = 0
            if not messages:
                if not self._source.ready:
                    # Idle time counts from the group join, which can take seconds.
                    last_activity = time.monotonic()
                elif idle_exit_s is not None and time.monotonic() - last_activity > idle_exit_s:
                    break
                continue
            last_activity = time.monotonic()
            try:
                complete = self._deliver_batch(messages, stop)
                if complete:
                    self._source.commit()
            except TellonceError as exc:
                if not exc.retriable:
                    raise
                # Receipts not acknowledged, or the commit refused (a rebalance): redeliver.
                log.warning("batch not acknowledged or committed; will redeliver", error=str(exc))
                complete = False
            if not complete:
                # Stopped mid-retry, or the broker failed: go back to the last committed offset
                # (at the next loop when the broker cannot tell it now).
                rewind = not self._rewind()
            if on_batch:
                on_batch(self.totals)
            if time.monotonic() - last_progress >= self._progress_every_s:
                last_progress = time.monotonic()
                self._log_progress(started)
        self._log_progress(started)
        return self.totals

    def _rewind(self) -> bool:
        """Back to the last committed offset; False when the broker cannot tell it now."""
        try:
            self._source.rewind()
        except TellonceError as exc:
            if not exc.retriable:
                raise
            log.warning("cannot go back to the committed offset yet", error=str(exc))
            return False
        return True

    def _log_progress(self, started: float) -> None:
        t = self.totals
        elapsed = max(time.monotonic() - started, 1e-9)
        log.info(
            "connector progress",
            recipient=self.recipient,
            delivered=t.delivered,
            duplicates=t.duplicates,
            dead_lettered=t.failed,
            retries=t.retries,
            per_s=round((t.delivered + t.duplicates) / elapsed, 1),
        )

    def _deliver_batch(self, messages: list[InboundMessage], stop: threading.Event) -> bool:
        """True when every message was delivered, dead-lettered, or skipped for good."""
        self._receipts = []
        complete = True
        for message in messages:
            try:
                if self._notices is not None:  # before a byte of the value is read
                    self._notices.check(message, self._clock())
            except RejectedEvent as exc:
                # Not the hub's notice, or altered on the way: never delivered, whatever it says.
                self._give_up(message, None, unverified(exc), attempts=1)
                continue
            try:
                notification = to_notification(self._codec.decode(message.value))
                answers = notice_digest_header(message)  # what its receipt will name
            except Exception as exc:
                # Not a notice this connector can read: no retry can fix it. Whatever it made
                # the connector raise, it is dead-lettered and the next notice goes on.
                self._give_up(message, None, unreadable(exc), attempts=1)
                continue
            if notification.recipient != self.recipient:
                # The hub's notice for another recipient, signature and all: the signature
                # binds the recipient in the value, and this is the check that reads it.
                self._give_up(message, None, misdirected(), attempts=1)
                continue
            if not self._deliver_one(message, notification, answers, stop):
                complete = False
                break
        flush = getattr(self._sink, "flush", None)
        if callable(flush):
            flush()  # buffered deliveries durable before receipts go and offsets move on
        for value, headers in self._receipts:
            self._producer.send(RECEIPTS_TOPIC, self.recipient.encode(), value, headers)
        self._receipts = []
        self._producer.flush()
        return complete

    def _deliver_one(
        self,
        message: InboundMessage,
        notification: Notification,
        answers: Headers,
        stop: threading.Event,
    ) -> bool:
        """Deliver with retries; False only when stopped while waiting to retry."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self._mw.before_delivery(notification, attempt)
            try:
                result = self._sink.deliver(notification)
            except Exception as exc:  # a sink bug is a failed attempt, not a crash
                result = DeliveryResult(
                    Outcome.RETRY, f"the sink raised {type(exc).__name__}", type(exc).__name__
                )
            self._mw.after_delivery(notification, result, attempt)
            if result.outcome in (Outcome.DELIVERED, Outcome.DUPLICATE):
                self._count(result)
                self._receipt(notification, answers, result, attempts=attempt)
                log.info(
                    "notification handled",
                    notification=notification.notification_id,
                    outcome=result.outcome.value,
                    attempts=attempt,
                )
                return True
            delay = self._mw.retry_delay(notification, result, attempt, time.monotonic() - started)
            if delay is not None:
                self.totals.retries += 1
                self._mw.after_retry_scheduled(notification, result, delay)
                log.warning(
                    "delivery to retry",
                    notification=notification.notification_id,
                    error=result.error,
                    reason=result.reason,
                    attempt=attempt,
                    delay_s=round(delay, 3),
                )
                if self._wait(stop, delay):
                    return False
                continue
            self._give_up(message, (notification, answers), result, attempts=attempt)
            return True

    def _wait(self, stop: threading.Event, delay_s: float) -> bool:
        """Wait ``delay_s`` (True if stopped meanwhile), keeping the group membership: a wait
        longer than max_poll_interval_ms would otherwise get this member expelled."""
        deadline = time.monotonic() + delay_s
        while (left := deadline - time.monotonic()) > 0:
            if stop.wait(min(left, KEEP_ALIVE_S)):
                return True
            self._source.keep_alive()
        return stop.is_set()

    def _give_up(
        self,
        message: InboundMessage,
        read: tuple[Notification, Headers] | None,
        result: DeliveryResult,
        *,
        attempts: int,
    ) -> None:
        """Dead-letter (errors.tolerance=all) or stop the connector (none): the middleware's
        call; a receipt (for a notice ``read``, with its digest header) and a log line say what
        became of the notice."""
        notification = read[0] if read else None
        notification_id = notification.notification_id if notification else unread_id(message)
        topic = self._mw.dead_letter(message, notification_id, result, attempts)
        self.totals.failed += 1
        self._mw.after_dead_letter(notification_id, result, attempts)
        if read is not None:
            self._receipt(*read, result, attempts=attempts, dead_letter_topic=topic)
        log.error(
            "notification dead-lettered",
            notification=notification_id,
            error=result.error,
            reason=result.reason,
            attempts=attempts,
            topic=topic,
        )

    def _count(self, result: DeliveryResult) -> None:
        if result.outcome is Outcome.DELIVERED:
            self.totals.delivered += 1
        elif result.outcome is Outcome.DUPLICATE:
            self.totals.duplicates += 1
        else:
            self.totals.failed += 1

    def _receipt(
        self,
        notification: Notification,
        answers: Headers,
        result: DeliveryResult,
        *,
        attempts: int,
        dead_letter_topic: str | None = None,
    ) -> None:
        now: datetime = self._clock()
        status = {Outcome.DELIVERED: "DELIVERED", Outcome.DUPLICATE: "DUPLICATE"}.get(
            result.outcome, "FAILED"
        )
        value = self._codec.encode(
            RECEIPT_SCHEMA,
            {
                "notification_id": notification.notification_id,
                "recipient": self.recipient,
                "event_id": notification.event_id,
                "status": status,
                "sink": self._sink.name,
                "detail": result.reason or None,
                "recorded_at": now,
                "dead_letter_topic": dead_letter_topic,
                "attempts": attempts,
            },
        )
        receipt_id = f"{notification.notification_id}:{status.lower()}"
        headers = cloudevent_headers(
            receipt_id, RECEIPT_SCHEMA, now, source=connector_source(self.recipient)
        ) + list(answers)
        if self._receipt_signer is not None:  # the hub checks it before recording anything
            key = self.recipient.encode()
            headers = signed(key, value, headers, self._receipt_signer, RECEIPT_CONTEXT)
        self._receipts.append((value, headers))

    def close(self) -> None:
        self._source.close()
        self._sink.close()
        self._producer.close()
