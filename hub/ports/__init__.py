"""Ports: what the hub core needs from the outside world, as Protocols.

Adapters in ``hub.adapters`` implement them with kafka-python, fastavro and SQLAlchemy; the
in-memory store in ``hub.adapters.memory`` is a real adapter used by the fast unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from consent.model import ConsentRevision, IdentityLink
from hub.model import (
    AcceptedEvent,
    AuditRecord,
    Checkpoint,
    Decision,
    Delivery,
    Headers,
    InboundMessage,
    OutboxMessage,
    RejectionRecord,
    StoreClaim,
)


class Clock(Protocol):
    def __call__(self) -> datetime: ...


class Codec(Protocol):
    def encode(self, name: str, record: dict[str, Any]) -> bytes: ...

    def decode(self, value: bytes | None) -> Any: ...

    def from_json(self, name: str, data: Any) -> dict[str, Any]:
        """A record of schema ``name`` from its JSON form, or PayloadError naming the field."""


class Signer(Protocol):
    """Signs audit checkpoints and consent receipts with Ed25519 (a file key here, an HSM later)."""

    @property
    def key_id(self) -> str: ...

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature; raises SignerError when the key cannot be used."""

    def public_key_pem(self) -> str: ...


SignatureCheck = Callable[[bytes, bytes], bool]
"""``check(message, signature)``: True when the signature verifies under a known public key."""


class Transaction(Protocol):
    """Reads and writes inside one database transaction; all or nothing."""

    # offsets of consumed topics, stored with the effects of the messages (DESIGN.md 9)
    def offsets(self, group: str, topic: str) -> dict[int, int]: ...
    def save_offsets(self, group: str, topic: str, next_offsets: dict[int, int]) -> None: ...

    # identity and consent
    def persons_for(self, program: str, local_ids: Iterable[str]) -> dict[str, str]: ...
    def links_of(self, person_ids: Iterable[str]) -> dict[str, dict[str, str]]: ...
    def person_exists(self, person_id: str) -> bool: ...
    def add_person(self, person_id: str, at: datetime) -> None: ...
    def add_link(self, link: IdentityLink) -> None: ...
    def consent_history(
        self, person_ids: Iterable[str]
    ) -> dict[tuple[str, str, str], list[ConsentRevision]]: ...
    def add_consent(self, revision: ConsentRevision) -> None: ...
    # consent changes received as events: (ce_source, ce_id) applied once
    def known_consent_events(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]: ...
    def add_consent_event(
        self, key: tuple[str, str], person_id: str, message: InboundMessage, at: datetime
    ) -> None: ...

    # processing results
    def known_events(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]: ...
    def add_event(self, event: AcceptedEvent) -> None: ...
    def add_decision(self, decision: Decision) -> None: ...
    def add_rejection(self, rejection: RejectionRecord) -> None: ...
    def add_outbox(self, message: OutboxMessage) -> None: ...

    # audit log
    def last_audit(self) -> AuditRecord | None: ...
    def add_audit(self, records: Sequence[AuditRecord]) -> None: ...
    def leaf_hashes(self, start: int, stop: int) -> list[bytes]: ...
    def last_checkpoint(self) -> Checkpoint | None: ...
    def add_checkpoint(self, checkpoint: Checkpoint) -> None: ...

    # deliveries, from the connectors' receipts
    def decisions_by_notification(self, notification_ids: Iterable[str]) -> dict[str, Decision]: ...
    def deliveries_of(self, notification_ids: Iterable[str]) -> dict[str, Delivery]: ...
    def save_delivery(self, delivery: Delivery, *, new: bool) -> None: ...

    # relay
    def pending_outbox(self, limit: int) -> list[OutboxMessage]: ...
    def mark_published(self, message_ids: Sequence[str], at: datetime) -> None: ...
    def unreceipted_outbox(
        self, published_before: datetime, limit: int, max_republished: int
    ) -> list[OutboxMessage]:
        """Notifications published before then that no receipt answered and that were
        republished fewer than ``max_republished`` times, oldest first."""

    def mark_republished(self, message_ids: Sequence[str], at: datetime) -> None: ...


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[Transaction]: ...

    def store_id(self) -> str:
        """The random id made once with the schema: tells this database from any other."""

    def events(self) -> list[AcceptedEvent]: ...
    def decisions(self) -> list[Decision]: ...
    def rejections(self) -> list[RejectionRecord]: ...
    def audit_records(self, start: int = 0, stop: int | None = None) -> Iterator[AuditRecord]: ...
    def checkpoints(self) -> list[Checkpoint]: ...
    def leaf_hashes(self, stop: int | None = None) -> list[bytes]: ...
    def deliveries(self) -> list[Delivery]: ...
    def consents(self) -> list[ConsentRevision]: ...
    def link_count(self) -> int: ...
    def awaiting_receipt(self, recipient: str) -> int: ...
    def close(self) -> None: ...


class Producer(Protocol):
    """Publishes records; ``flush`` returns once the broker acknowledged all of them."""

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class MessageSource(Protocol):
    """Polls records of subscribed topics; positions are set by the caller's offset lookup."""

    def poll(self, max_records: int, timeout_ms: int) -> list[InboundMessage]: ...
    @property
    def ready(self) -> bool:
        """True once partitions are assigned (a group join can take seconds)."""

    def rewind(self) -> None:
        """Go back to the offsets the lookup gives (after a failed batch)."""

    def commit(self) -> None:
        """Commit consumed positions to the broker (for sources that keep offsets there)."""

    def keep_alive(self) -> None:
        """Stay in the consumer group during a long wait, without taking new records."""

    def close(self) -> None: ...


OffsetLookup = Callable[[str, int], int | None]


class ClaimLog(Protocol):
    """The hub's claims of consumer groups for stores (``tellonce.hub.v1``, one partition,
    compacted). Positions are the order claims were recorded in; anyone on the broker can
    write the topic, so a record that is not a claim is skipped, never fatal."""

    def read(self, through: int | None = None) -> list[tuple[int, StoreClaim]]:
        """The claims in force with their positions, oldest first: up to and including
        position ``through``, or (None) until the log is quiet. A claim taken back is gone."""

    def append(self, claim: StoreClaim) -> int:
        """Record ``claim``; its position, once the broker acknowledged it."""

    def withdraw(self, claim: StoreClaim) -> None:
        """Take ``claim`` back (a tombstone), once the broker acknowledged it."""

    def close(self) -> None: ...
