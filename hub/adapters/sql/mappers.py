"""Rows to records and records to rows: the one place that knows how each hub record is laid
out in the tables of ``hub.adapters.sql.tables`` (ISO strings for times that are hashed, base64
for header bytes, JSON lists for tuples). Sealing personal values is ``sealing``'s job: these
functions move bytes as they are given."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from consent.model import ConsentRevision, ConsentState, ConsentTerms, Evidence, IdentityLink
from hub.model import (
    AcceptedEvent,
    AppliedConsentEvent,
    AuditRecord,
    Checkpoint,
    Decision,
    DecisionOutcome,
    Delivery,
    OutboxMessage,
    RejectionRecord,
    as_utc,
)

Values = dict[str, object]
"""The column values of one row to insert."""


# -- rows to records -------------------------------------------------------------------------


def event_from(r: Row[Any]) -> AcceptedEvent:
    return AcceptedEvent(
        source=r.source,
        event_id=r.event_id,
        event_type=r.event_type,
        time=as_utc(r.event_time),
        person_id=r.person_id,
        topic=r.kafka_topic,
        partition=r.kafka_partition,
        offset=r.kafka_offset,
        processed_at=as_utc(r.processed_at),
    )


def outbox_from(r: Row[Any]) -> OutboxMessage:
    return OutboxMessage(
        message_id=r.message_id,
        topic=r.topic,
        key=r.key,
        value=r.value,
        # base64.b64decode without its wrapper, which costs three times the decoding (the relay
        # reads seven headers per notice); the same bytes, the same ValueError on bad input
        headers=[(k, binascii.a2b_base64(v)) for k, v in r.headers],
        created_at=as_utc(r.created_at),
        seq=r.seq,
        person_id=r.person_id,
    )


def decision_from(r: Row[Any]) -> Decision:
    return Decision(
        source=r.source,
        event_id=r.event_id,
        recipient=r.recipient,
        outcome=DecisionOutcome(r.outcome),
        reason=r.reason,
        consent_revision=r.consent_revision,
        notification_id=r.notification_id,
        fields=tuple(r.fields),
        decided_at=as_utc(r.decided_at),
        notice_digest=r.notice_digest,
    )


def rejection_from(r: Row[Any]) -> RejectionRecord:
    return RejectionRecord(
        topic=r.kafka_topic,
        partition=r.kafka_partition,
        offset=r.kafka_offset,
        reason=r.reason,
        detail=r.detail,
        source=r.source,
        event_id=r.event_id,
        rejected_at=as_utc(r.rejected_at),
    )


def audit_from(r: Row[Any]) -> AuditRecord:
    return AuditRecord(
        index=int(r.leaf_index),
        kind=r.kind,
        data=dict(r.data),
        recorded_at=datetime.fromisoformat(r.recorded_at),
        prev_hash=r.prev_hash,
        hash=r.leaf_hash,
    )


def checkpoint_from(r: Row[Any]) -> Checkpoint:
    return Checkpoint(
        seq=int(r.seq),
        size=int(r.tree_size),
        root=r.root_hash,
        issued_at=datetime.fromisoformat(r.issued_at),
        key_id=r.key_id,
        signature=r.signature,
        frontier=tuple(r.frontier),
    )


def delivery_from(r: Row[Any]) -> Delivery:
    return Delivery(
        notification_id=r.notification_id,
        recipient=r.recipient,
        status=r.status,
        sink=r.sink,
        detail=r.detail,
        recorded_at=as_utc(r.recorded_at),
        dead_lettered_at=as_utc(r.dead_lettered_at) if r.dead_lettered_at else None,
    )


def revision_from(r: Row[Any]) -> ConsentRevision:
    return ConsentRevision(
        person_id=r.person_id,
        recipient=r.recipient,
        event_type=r.event_type,
        seq=r.seq,
        state=ConsentState(r.state),
        evidence=Evidence(
            r.channel,
            r.actor,
            datetime.fromisoformat(r.recorded_at),
            notice_version=r.notice_version,
            notice_hash=r.notice_hash,
        ),
        terms=ConsentTerms(
            purpose=r.purpose,
            legal_basis=r.legal_basis,
            expires_at=datetime.fromisoformat(r.expires_at) if r.expires_at else None,
        ),
        prev_hash=r.prev_hash,
        hash=r.hash,
    )


def link_from(r: Row[Any], local_id: str) -> IdentityLink:
    """The link of row ``r``, whose sealed local id opened as ``local_id``."""
    return IdentityLink(
        person_id=r.person_id,
        program=r.program,
        local_id=local_id,
        evidence=Evidence(r.channel, r.actor, datetime.fromisoformat(r.recorded_at)),
    )


# -- records to rows -------------------------------------------------------------------------


def link_values(link: IdentityLink, index: str, sealed: bytes | None) -> Values:
    """The row of ``link``: its local id as its blind ``index`` and ``sealed``."""
    return {
        "person_id": link.person_id,
        "program": link.program,
        "local_id_index": index,
        "local_id_sealed": sealed,
        "channel": link.evidence.channel,
        "actor": link.evidence.actor,
        "recorded_at": link.evidence.recorded_at.isoformat(),
    }


def revision_values(revision: ConsentRevision) -> Values:
    terms = revision.terms
    return {
        "person_id": revision.person_id,
        "recipient": revision.recipient,
        "event_type": revision.event_type,
        "seq": revision.seq,
        "state": revision.state.value,
        "channel": revision.evidence.channel,
        "actor": revision.evidence.actor,
        "recorded_at": revision.evidence.recorded_at.isoformat(),
        "notice_version": revision.evidence.notice_version,
        "notice_hash": revision.evidence.notice_hash,
        "purpose": terms.purpose,
        "legal_basis": terms.legal_basis,
        "expires_at": terms.expires_at.isoformat() if terms.expires_at else None,
        "prev_hash": revision.prev_hash,
        "hash": revision.hash,
    }


def applied_values(applied: AppliedConsentEvent) -> Values:
    return {
        "source": applied.source,
        "event_id": applied.event_id,
        "person_id": applied.person_id,
        "kafka_topic": applied.topic,
        "kafka_partition": applied.partition,
        "kafka_offset": applied.offset,
        "processed_at": applied.processed_at,
    }


def event_values(event: AcceptedEvent) -> Values:
    return {
        "source": event.source,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "event_time": event.time,
        "person_id": event.person_id,
        "kafka_topic": event.topic,
        "kafka_partition": event.partition,
        "kafka_offset": event.offset,
        "processed_at": event.processed_at,
    }


def decision_values(decision: Decision) -> Values:
    return {
        "source": decision.source,
        "event_id": decision.event_id,
        "recipient": decision.recipient,
        "outcome": decision.outcome.value,
        "reason": decision.reason,
        "consent_revision": decision.consent_revision,
        "notification_id": decision.notification_id,
        "fields": list(decision.fields),
        "decided_at": decision.decided_at,
        "notice_digest": decision.notice_digest,
    }


def rejection_values(rejection: RejectionRecord) -> Values:
    return {
        "kafka_topic": rejection.topic,
        "kafka_partition": rejection.partition,
        "kafka_offset": rejection.offset,
        "reason": rejection.reason,
        "detail": rejection.detail,
        "source": rejection.source,
        "event_id": rejection.event_id,
        "rejected_at": rejection.rejected_at,
    }


def outbox_values(message: OutboxMessage) -> Values:
    return {
        "message_id": message.message_id,
        "topic": message.topic,
        "key": message.key,
        "value": message.value,
        "headers": [[k, base64.b64encode(v).decode()] for k, v in message.headers],
        "created_at": message.created_at,
        "person_id": message.person_id,
    }


def audit_values(record: AuditRecord) -> Values:
    return {
        "leaf_index": record.index,
        "kind": record.kind,
        "data": record.data,
        "recorded_at": record.recorded_at.isoformat(),
        "prev_hash": record.prev_hash,
        "leaf_hash": record.hash,
    }


def checkpoint_values(checkpoint: Checkpoint) -> Values:
    return {
        "seq": checkpoint.seq,
        "tree_size": checkpoint.size,
        "root_hash": checkpoint.root,
        "issued_at": checkpoint.issued_at.isoformat(),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
        "frontier": list(checkpoint.frontier),
    }


def delivery_values(delivery: Delivery) -> Values:
    """Every column but the notification id, which an update matches on."""
    return {
        "recipient": delivery.recipient,
        "status": delivery.status,
        "sink": delivery.sink,
        "detail": delivery.detail,
        "recorded_at": delivery.recorded_at,
        "dead_lettered_at": delivery.dead_lettered_at,
    }
