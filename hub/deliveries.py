"""Receipts from the connectors, recorded as the delivery status of each notification.

The hub worker consumes ``tellonce.receipts.v1`` with the life events and runs this inside the
same batch transaction, so a receipt's status, its audit leaf and the consumed offset commit
together. Connectors redeliver after a crash and then report DUPLICATE: a notification already
recorded as delivered gets no second leaf, so leaves reconcile one-to-one with deliveries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import structlog

from hub.audit import AuditLog
from hub.errors import RejectedEvent
from hub.model import RECEIPTS_TOPIC, Delivery, InboundMessage
from hub.ports import Clock, Codec, Transaction
from hub.pseudonyms import Pseudonyms

log = structlog.get_logger(__name__)

RECEIPT_SCHEMA = "ca.tellonce.receipts.Receipt"
# Receipt status -> delivery status kept by the hub. DUPLICATE means the sink already had it;
# FAILED with a dead-letter topic means the connector gave up and kept it there.
STATUS = {"DELIVERED": "delivered", "DUPLICATE": "delivered", "FAILED": "failed"}
LEAF_KIND = {
    "delivered": "delivered",
    "failed": "delivery_failed",
    "dead_lettered": "dead_lettered",
}


@dataclass(slots=True)
class ReceiptSummary:
    recorded: int = 0
    repeated: int = 0
    ignored: int = 0
    next_offsets: dict[int, int] = field(default_factory=dict)


class DeliveryIntake:
    topic = RECEIPTS_TOPIC

    def __init__(
        self, *, codec: Codec, clock: Clock, group_id: str, pseudonyms: Pseudonyms
    ) -> None:
        self._codec = codec
        self._clock = clock
        self._ids = pseudonyms
        self.group_id = group_id

    def process(self, tx: Transaction, messages: Sequence[InboundMessage]) -> ReceiptSummary:
        summary = ReceiptSummary()
        receipts: list[tuple[InboundMessage, dict[str, Any]]] = []
        for message in messages:
            summary.next_offsets[message.partition] = max(
                summary.next_offsets.get(message.partition, 0), message.offset + 1
            )
            try:
                decoded = self._codec.decode(message.value)
            except RejectedEvent as exc:
                self._ignore(summary, message, exc.reason)
                continue
            if decoded.entry.name != RECEIPT_SCHEMA:
                self._ignore(summary, message, "unexpected_schema")
                continue
            receipts.append((message, decoded.record))

        ids = [record["notification_id"] for _, record in receipts]
        decisions = tx.decisions_by_notification(ids)
        known = tx.deliveries_of(ids)
        chain = AuditLog(tx.last_audit())
        for message, record in receipts:
            notification = record["notification_id"]
            decision = decisions.get(notification)
            if decision is None or decision.recipient != record["recipient"]:
                # Not a notification this hub issued to that recipient: nothing to record.
                self._ignore(summary, message, "unknown_notification")
                continue
            status = STATUS[record["status"]]
            if status == "failed" and record.get("dead_letter_topic"):
                status = "dead_lettered"
            previous = known.get(notification)
            if previous is not None and previous.status in (status, "delivered"):
                # A repeat, or a late failure report after the sink confirmed delivery:
                # delivered is final.
                summary.repeated += 1
                continue
            delivery = Delivery(
                notification_id=notification,
                recipient=decision.recipient,
                status=status,
                sink=str(record["sink"])[:64],
                detail=record.get("detail"),
                recorded_at=_utc(record["recorded_at"], self._clock()),
            )
            if status == "dead_lettered" or (previous and previous.dead_lettered_at):
                dead_at = previous.dead_lettered_at if previous else None
                delivery = replace(delivery, dead_lettered_at=dead_at or delivery.recorded_at)
            tx.save_delivery(delivery, new=previous is None)
            known[notification] = delivery
            chain.append(
                LEAF_KIND[status],
                {
                    "notification": notification,
                    "event": self._ids.event(decision.source, decision.event_id),
                    "recipient": decision.recipient,
                    "sink": delivery.sink,
                },
                delivery.recorded_at,
            )
            summary.recorded += 1
        chain.write(tx)
        if summary.next_offsets:
            tx.save_offsets(self.group_id, self.topic, summary.next_offsets)
        return summary

    def _ignore(self, summary: ReceiptSummary, message: InboundMessage, reason: str) -> None:
        summary.ignored += 1
        log.warning(
            "receipt ignored",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            reason=reason,
        )


def _utc(value: Any, fallback: datetime) -> datetime:
    return value if isinstance(value, datetime) else fallback
