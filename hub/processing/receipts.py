"""Receipts from the connectors, recorded as the delivery status of each notification.

The hub worker consumes ``tellonce.receipts.v1`` with the life events and runs this inside the
same batch transaction, so a receipt's status, its audit leaf and the consumed offset commit
together. Connectors redeliver after a crash and then report DUPLICATE: a notification already
recorded as delivered gets no second leaf, so leaves reconcile one-to-one with deliveries.

A receipt must come from the recipient it names and answer the very notice the hub sent
(README, "Signed receipts"): a notification id alone proves nothing, anyone can compute one. A
signature present is checked against the keys the directory lists for that recipient
(``bad_signature``, ``unknown_key``, ``key_expired``; ``unsigned`` when signed receipts are
required), and the notice digest it names (header ``ce_noticedigest``, part of what is signed)
must be the one the hub kept with its decision (``notice_mismatch``).

A receipt the hub cannot use (undecodable, another schema, a notification it did not issue to
that recipient, a signature or notice digest that does not hold, a sink name longer than the
hub keeps, or anything that makes reading it raise) is refused: counted, logged by position
and reason (and notification, when it names one the hub issued to that recipient), kept as a
row of the rejections table (on the receipts topic) and audited as a ``receipt_refused`` leaf,
which ``audit reconcile`` counts against those rows. The notification stays as it was: one
never answered is still published again after ``redeliver_after_s``. A refusal never stops
the batch; only a failing database (or signer) does, and the worker retries the whole batch.
A receipt whose writes the database itself refuses is refused the same way by the worker
(``set_aside``, reason ``unstorable``; see ``hub.processing.worker``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog

from hub.audit.log import AuditLog
from hub.audit.pseudonyms import Pseudonyms
from hub.errors import RejectedEvent
from hub.model import Decision, Delivery, InboundMessage, RejectionRecord
from hub.ports import Clock, Codec, Transaction
from hub.processing.rejections import rejection_for
from hub.processing.rows import BatchRows
from hub.wire.cloudevents import header_text
from hub.wire.schemas import RECEIPT_SCHEMA
from hub.wire.signatures import NOTICE_DIGEST, SIGNATURE, ReceiptSignatures
from hub.wire.topics import RECEIPTS_TOPIC

log = structlog.get_logger(__name__)

REFUSED_LEAF = "receipt_refused"
# Receipt status -> delivery status kept by the hub. DUPLICATE means the sink already had it;
# FAILED with a dead-letter topic means the connector gave up and kept it there.
STATUS = {"DELIVERED": "delivered", "DUPLICATE": "delivered", "FAILED": "failed"}
LEAF_KIND = {
    "delivered": "delivered",
    "failed": "delivery_failed",
    "dead_lettered": "dead_lettered",
}
MAX_SINK_CHARS = 64  # the deliveries.sink column
HEX_DIGEST = frozenset("0123456789abcdef")


@dataclass(slots=True)
class ReceiptSummary:
    recorded: int = 0
    repeated: int = 0
    refused: int = 0
    next_offsets: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Receipt:
    notification_id: str
    recipient: str
    status: str  # delivered | failed | dead_lettered
    sink: str
    detail: str | None
    recorded_at: datetime | None


class DeliveryIntake:
    topic = RECEIPTS_TOPIC

    def __init__(
        self,
        *,
        codec: Codec,
        clock: Clock,
        group_id: str,
        pseudonyms: Pseudonyms,
        signatures: ReceiptSignatures | None = None,
    ) -> None:
        """``signatures``: the recipients' keys and the policy receipts are checked under;
        None checks no signature (the notice digest a receipt names is checked whatever)."""
        self._codec = codec
        self._clock = clock
        self._ids = pseudonyms
        self._signatures = signatures
        self.group_id = group_id

    def process(self, tx: Transaction, messages: Sequence[InboundMessage]) -> ReceiptSummary:
        now = self._clock()
        summary = ReceiptSummary()
        read: list[tuple[InboundMessage, _Receipt | RejectedEvent]] = []
        for message in messages:
            summary.next_offsets[message.partition] = max(
                summary.next_offsets.get(message.partition, 0), message.offset + 1
            )
            try:
                read.append((message, self._read(message)))
            except Exception as exc:
                read.append((message, rejection_for(exc)))

        ids = [r.notification_id for _, r in read if isinstance(r, _Receipt)]
        decisions = tx.decisions_by_notification(ids)
        known = tx.deliveries_of(ids)
        stored = set(known)  # the notifications whose delivery is replaced, not inserted
        saved: dict[str, Delivery] = {}  # the latest delivery per notification, written once
        chain, rows = AuditLog(tx.last_audit()), BatchRows()
        for message, receipt in read:
            if isinstance(receipt, RejectedEvent):
                self._refuse(rows, chain, summary, message, receipt, now)
                continue
            notification = receipt.notification_id
            decision = decisions.get(notification)
            if decision is None or decision.recipient != receipt.recipient:
                # Not a notification this hub issued to that recipient: nothing to record.
                refusal = RejectedEvent(
                    "unknown_notification",
                    "the receipt names no notification this hub issued to that recipient",
                )
                self._refuse(rows, chain, summary, message, refusal, now)
                continue
            try:
                self._check_origin(message, decision, now)
            except RejectedEvent as refusal:  # forged, or about another notice: not recorded
                self._refuse(rows, chain, summary, message, refusal, now, notification)
                continue
            status = receipt.status
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
                sink=receipt.sink,
                detail=receipt.detail,
                recorded_at=receipt.recorded_at or now,
            )
            if status == "dead_lettered" or (previous and previous.dead_lettered_at):
                dead_at = previous.dead_lettered_at if previous else None
                delivery = replace(delivery, dead_lettered_at=dead_at or delivery.recorded_at)
            saved[notification] = known[notification] = delivery
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
        tx.save_deliveries([d for n, d in saved.items() if n not in stored], new=True)
        tx.save_deliveries([d for n, d in saved.items() if n in stored], new=False)
        rows.write(tx)
        chain.write(tx)
        if summary.next_offsets:
            tx.save_offsets(self.group_id, self.topic, summary.next_offsets)
        return summary

    def set_aside(
        self, tx: Transaction, message: InboundMessage, error: RejectedEvent
    ) -> ReceiptSummary:
        """Refuse one receipt alone in ``tx`` and save its partition's offset past it: for a
        receipt whose writes the database refused (``unstorable``,
        see ``hub.processing.worker``)."""
        summary = ReceiptSummary(next_offsets={message.partition: message.offset + 1})
        chain, rows = AuditLog(tx.last_audit()), BatchRows()
        self._refuse(rows, chain, summary, message, error, self._clock())
        rows.write(tx)
        chain.write(tx)
        tx.save_offsets(self.group_id, self.topic, summary.next_offsets)
        return summary

    def _check_origin(self, message: InboundMessage, decision: Decision, now: datetime) -> None:
        """Raise RejectedEvent unless the receipt is signed as the policy asks by a key of
        ``decision``'s recipient, and names the digest of the notice the hub sent for it."""
        signed = required = False
        if self._signatures is not None:
            self._signatures.check(message, decision.recipient, now)
            signed = message.header(SIGNATURE) is not None  # and it verified
            required = self._signatures.policy.required
        named = header_text(message, NOTICE_DIGEST)
        if named is None:
            # A connector from before signed receipts names none; one that signs always does.
            if decision.notice_digest is not None and (signed or required):
                raise RejectedEvent(
                    "notice_mismatch",
                    f"the receipt names no notice (header {NOTICE_DIGEST}, the hex SHA-256 "
                    "digest of the notice it answers); a signed receipt must",
                )
            return
        if len(named) != 64 or not HEX_DIGEST.issuperset(named):
            raise RejectedEvent(
                "notice_mismatch",
                f"header {NOTICE_DIGEST} must be a SHA-256 digest in 64 lowercase hex digits",
            )
        if decision.notice_digest is not None and self._ids.of(named) != decision.notice_digest:
            raise RejectedEvent(
                "notice_mismatch",
                "the receipt answers another notice than the one the hub sent for this "
                f"notification (header {NOTICE_DIGEST})",
            )

    def _read(self, message: InboundMessage) -> _Receipt:
        """The receipt in ``message``; writes nothing, raises whatever the record provokes."""
        decoded = self._codec.decode(message.value)
        if decoded.entry.name != RECEIPT_SCHEMA:
            raise RejectedEvent(
                "unexpected_schema",
                f"schema {decoded.entry.name} is not {RECEIPT_SCHEMA}; only receipts belong on "
                f"{RECEIPTS_TOPIC}",
            )
        status = STATUS[decoded.text("status")]
        if status == "failed" and decoded.optional_text("dead_letter_topic"):
            status = "dead_lettered"
        sink = decoded.text("sink")
        if not 1 <= len(sink) <= MAX_SINK_CHARS:
            raise RejectedEvent(
                "invalid_receipt",
                f"sink: must be 1 to {MAX_SINK_CHARS} characters (the name of the connector's "
                "sink, e.g. webhook)",
            )
        recorded_at = decoded.record.get("recorded_at")
        return _Receipt(
            notification_id=decoded.text("notification_id"),
            recipient=decoded.text("recipient"),
            status=status,
            sink=sink,
            detail=decoded.optional_text("detail"),
            recorded_at=recorded_at if isinstance(recorded_at, datetime) else None,
        )

    def _refuse(
        self,
        rows: BatchRows,
        chain: AuditLog,
        summary: ReceiptSummary,
        message: InboundMessage,
        error: RejectedEvent,
        now: datetime,
        notification: str | None = None,
    ) -> None:
        """Count, log, keep and audit a receipt the hub does not record as a delivery.

        The position and the reason, and ``notification`` only when the receipt names one the
        hub issued to that recipient: the ids of any other refused receipt are not the hub's
        to trust.
        """
        position = message.position
        rows.rejections.append(RejectionRecord.of(message, error.reason, error.detail, now))
        leaf: dict[str, str] = {"position": position, "reason": error.reason}
        if notification is not None:
            leaf["notification"] = notification
        chain.append(REFUSED_LEAF, leaf, now)
        summary.refused += 1
        log.warning(
            "receipt refused",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            reason=error.reason,
            detail=error.detail,
            notification=notification,
        )
