"""The connector runner: take notifications off a recipient's topic, hand them to its sink,
report a receipt for each.

Offsets are committed to Kafka only after the sink answered and the receipts were acknowledged,
so a crash redelivers; the sink's idempotency on the notification id absorbs the repeat.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from connectors.contract import DeliveryResult, Notification, Outcome, Sink
from hub.errors import RejectedEvent, TellonceError
from hub.events import EVENT_TYPES
from hub.model import RECEIPTS_TOPIC, InboundMessage
from hub.ports import Clock, Codec, MessageSource, Producer
from hub.processing import cloudevent_headers

log = structlog.get_logger(__name__)

RECEIPT_SCHEMA = "ca.tellonce.receipts.Receipt"
NOTICE_TYPES = {t.notice_schema: t.name for t in EVENT_TYPES.values()}
RETRY_DELAY_S = 1.0


@dataclass(slots=True)
class DeliveryTotals:
    delivered: int = 0
    duplicates: int = 0
    failed: int = 0
    retries: int = 0


def to_notification(decoded: Any) -> Notification:
    record: dict[str, Any] = decoded.record
    event_type = NOTICE_TYPES.get(decoded.entry.name)
    if event_type is None:
        raise RejectedEvent("unexpected_schema", f"{decoded.entry.name} is not a notice schema")
    return Notification(
        notification_id=record["notification_id"],
        recipient=record["recipient"],
        subject_id=record["subject_id"],
        event_type=event_type,
        event_id=record["event_id"],
        event_source=record["event_source"],
        event_time=record["event_time"],
        consent_revision=record["consent_revision"],
        fields={name: record.get(name) for name in record["disclosed_fields"]},
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
    ) -> None:
        self.recipient = recipient
        self._source = source
        self._codec = codec
        self._sink = sink
        self._producer = producer
        self._clock = clock
        self._batch_size = batch_size
        self._poll_timeout_ms = poll_timeout_ms
        self.totals = DeliveryTotals()

    def run(
        self,
        stop: threading.Event,
        *,
        idle_exit_s: float | None = None,
        on_batch: Callable[[DeliveryTotals], None] | None = None,
    ) -> DeliveryTotals:
        last_activity = time.monotonic()
        while not stop.is_set():
            messages = self._source.poll(self._batch_size, self._poll_timeout_ms)
            if not messages:
                if not self._source.ready:
                    # Idle time counts from the group join, which can take seconds.
                    last_activity = time.monotonic()
                elif idle_exit_s is not None and time.monotonic() - last_activity > idle_exit_s:
                    break
                continue
            last_activity = time.monotonic()
            try:
                complete = self._deliver_batch(messages)
            except TellonceError as exc:
                if not exc.retriable:
                    raise
                log.warning("receipts not acknowledged; will redeliver", error=str(exc))
                complete = False
            if complete:
                self._source.commit()
            else:
                # Something asked to be retried: go back to the last committed position.
                self.totals.retries += 1
                self._source.rewind()
                stop.wait(RETRY_DELAY_S)
            if on_batch:
                on_batch(self.totals)
        return self.totals

    def _deliver_batch(self, messages: list[InboundMessage]) -> bool:
        for message in messages:
            try:
                notification = to_notification(self._codec.decode(message.value))
            except RejectedEvent as exc:
                # Not ours to deliver; dead-lettering comes with the retry middleware.
                log.error(
                    "undecodable notification skipped",
                    topic=message.topic,
                    offset=message.offset,
                    reason=exc.reason,
                )
                self.totals.failed += 1
                continue
            result = self._sink.deliver(notification)
            if result.outcome is Outcome.RETRY:
                log.warning(
                    "delivery to retry",
                    notification=notification.notification_id,
                    reason=result.reason,
                )
                self._producer.flush()
                return False
            self._count(result)
            self._receipt(notification, result)
            log.info(
                "notification handled",
                notification=notification.notification_id,
                outcome=result.outcome.value,
            )
        self._producer.flush()
        return True

    def _count(self, result: DeliveryResult) -> None:
        if result.outcome is Outcome.DELIVERED:
            self.totals.delivered += 1
        elif result.outcome is Outcome.DUPLICATE:
            self.totals.duplicates += 1
        else:
            self.totals.failed += 1

    def _receipt(self, notification: Notification, result: DeliveryResult) -> None:
        now: datetime = self._clock()
        status = {
            Outcome.DELIVERED: "DELIVERED",
            Outcome.DUPLICATE: "DUPLICATE",
            Outcome.FAILED: "FAILED",
        }[result.outcome]
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
            },
        )
        receipt_id = f"{notification.notification_id}:{status.lower()}"
        self._producer.send(
            RECEIPTS_TOPIC,
            self.recipient.encode(),
            value,
            cloudevent_headers(
                receipt_id, RECEIPT_SCHEMA, now, source=f"tellonce-connector/{self.recipient}"
            ),
        )

    def close(self) -> None:
        self._source.close()
        self._sink.close()
        self._producer.close()
