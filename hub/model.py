"""The hub's message model: what comes in, what is decided, what goes out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# uuid5 namespace for notification and rejection ids: the same input always gives the same id,
# so reprocessing after a crash cannot mint a second notification for one (event, recipient).
ID_NAMESPACE = uuid.UUID("6f1c3a52-9a43-4d2e-9a51-7f0e2b8c1d10")


def notification_id(source: str, event_id: str, recipient: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{source}\x1f{event_id}\x1f{recipient}"))


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC: an aware time converted, a naive one taken to be UTC already (SQLite
    and some decoders hand back naive times; everything tellonce records is UTC)."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One Kafka record as the hub received it; nothing in it is trusted yet."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def position(self) -> str:
        """``topic/partition/offset``: how leaves, rejections and logs name a record without
        quoting anything it carries."""
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    source: str  # ce_source: the program that reported the event
    event_id: str  # ce_id
    event_type: str  # EventType.name
    time: datetime  # ce_time
    person_id: str | None  # None when the publisher's id is not linked to a person
    topic: str
    partition: int
    offset: int
    processed_at: datetime


class DecisionOutcome(StrEnum):
    """Whether a recipient was told about an event (not to be confused with a sink's delivery
    outcome, ``connectors.contract.Outcome``)."""

    DISCLOSED = "disclosed"
    WITHHELD = "withheld"


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one recipient was told about one event, and why."""

    source: str
    event_id: str
    recipient: str
    outcome: DecisionOutcome
    reason: str
    consent_revision: str | None  # hash of the revision relied on, when there was one
    notification_id: str | None
    fields: tuple[str, ...]  # names of the fields disclosed (never values)
    decided_at: datetime
    # The keyed hash (``Pseudonyms.of``) of the hex digest of the notice sent (README, "Signed
    # receipts"): a receipt must name that digest. Keyed, as the notice holds personal values
    # a plain hash would let a reader of the store confirm. None when nothing was sent, or
    # for a notice made before the hub kept it (migration 0005).
    notice_digest: str | None = None


@dataclass(frozen=True, slots=True)
class RejectionRecord:
    topic: str
    partition: int
    offset: int
    reason: str
    detail: str
    source: str | None
    event_id: str | None
    rejected_at: datetime

    @classmethod
    def of(
        cls,
        message: InboundMessage,
        reason: str,
        detail: str,
        rejected_at: datetime,
        *,
        source: str | None = None,
        event_id: str | None = None,
    ) -> RejectionRecord:
        """The row kept for a refused ``message``, at its position."""
        return cls(
            message.topic,
            message.partition,
            message.offset,
            reason,
            detail,
            source,
            event_id,
            rejected_at,
        )


@dataclass(frozen=True, slots=True)
class AppliedConsentEvent:
    """The row that marks a consent event applied: its ``(source, event id)`` once, for a
    person, from the record at a position."""

    source: str
    event_id: str
    person_id: str
    topic: str
    partition: int
    offset: int
    processed_at: datetime

    @classmethod
    def of(
        cls, key: tuple[str, str], person_id: str, message: InboundMessage, at: datetime
    ) -> AppliedConsentEvent:
        """The row for consent event ``key`` of ``person_id``, read from ``message``."""
        return cls(*key, person_id, message.topic, message.partition, message.offset, at)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A Kafka record written in the batch transaction and published later by the relay."""

    message_id: str  # unique: the notification id, or a rejection id
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    created_at: datetime
    seq: int | None = None  # assigned by the store; the relay publishes in this order
    # The person whose data key seals key, value and subject header at rest; None for a
    # message that carries no personal data (a rejection).
    person_id: str | None = None


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A person's data key wrapped under a key-encryption key (KEK), as the store keeps it."""

    kek_id: str  # which KEK wraps it: rotation rewraps every key not under the current one
    wrapped: bytes


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One leaf of the audit log: a fact, hashed as RFC 9162 leaf data (see ``hub.audit.log``)."""

    index: int  # 0-based position in the log
    kind: str  # accepted, rejected, disclosed, withheld, delivered, consent_given, ...
    data: dict[str, Any]  # ids, codes and hashes only: never personal values
    recorded_at: datetime
    prev_hash: str  # leaf hash of the previous leaf: pins each leaf's position
    hash: str  # RFC 9162 leaf hash (hex) of the canonical leaf bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement of the log's size and Merkle root (a signed tree head)."""

    seq: int  # 1-based; consecutive, so a dropped checkpoint shows
    size: int  # number of leaves covered
    root: str  # RFC 9162 Merkle tree hash of those leaves (hex)
    issued_at: datetime
    key_id: str
    signature: str  # base64 Ed25519 signature of ``hub.audit.log.checkpoint_body``
    # Hashes of the perfect subtrees at ``size`` (the compact range), so the next checkpoint
    # hashes only the new leaves. Not signed and not exported: it is a cache of the leaves.
    frontier: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the recipient's connector last reported for one notification."""

    notification_id: str
    recipient: str
    status: str  # delivered | failed | dead_lettered
    sink: str
    detail: str | None
    recorded_at: datetime
    dead_lettered_at: datetime | None = None  # kept after a replay delivers it


@dataclass(frozen=True, slots=True)
class StoreClaim:
    """A hub's statement on ``HUB_TOPIC`` that its consumer group works with its store."""

    group_id: str
    store_id: str  # the store's random id (``Store.store_id``), never its URL
    audit_key_id: str | None  # the key the claiming hub signed its audit log with
    claimed_at: datetime
    host: str | None  # where the claiming hub ran, to help find a stray one

    @property
    def key(self) -> str:
        """One record per (group, store) survives compaction; a tombstone takes it back."""
        return f"{self.group_id}/{self.store_id}"
