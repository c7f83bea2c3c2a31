"""What the in-memory store (``hub.adapters.memory``) holds: one ``MemoryState`` per committed
version of the data, copied whole when a transaction opens, so the adapter's rules and the
shape of its data change apart."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime

from consent.model import ConsentRevision, IdentityLink
from hub.model import (
    AcceptedEvent,
    AuditRecord,
    Checkpoint,
    Decision,
    Delivery,
    OutboxMessage,
    RejectionRecord,
    WrappedKey,
)


@dataclass(slots=True)
class MemoryState:
    """Everything the store holds. Records are immutable; containers are copied per txn."""

    persons: dict[str, datetime] = field(default_factory=dict)
    data_keys: dict[str, WrappedKey] = field(default_factory=dict)  # only with a vault
    erased: dict[str, datetime] = field(default_factory=dict)
    links: list[IdentityLink] = field(default_factory=list)
    consents: list[ConsentRevision] = field(default_factory=list)
    events: list[AcceptedEvent] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    rejections: list[RejectionRecord] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)
    published: dict[str, datetime] = field(default_factory=dict)
    republished: dict[str, int] = field(default_factory=dict)
    audit: list[AuditRecord] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    offsets: dict[tuple[str, str, int], int] = field(default_factory=dict)
    # constraint name -> keys taken; the names are those of the SQL unique constraints
    unique: dict[str, set[Hashable]] = field(default_factory=dict)
    last_outbox_seq: int = 0

    def copy(self) -> MemoryState:
        return MemoryState(
            persons=dict(self.persons),
            data_keys=dict(self.data_keys),
            erased=dict(self.erased),
            links=list(self.links),
            consents=list(self.consents),
            events=list(self.events),
            decisions=list(self.decisions),
            rejections=list(self.rejections),
            outbox=list(self.outbox),
            published=dict(self.published),
            republished=dict(self.republished),
            audit=list(self.audit),
            checkpoints=list(self.checkpoints),
            deliveries=dict(self.deliveries),
            offsets=dict(self.offsets),
            unique={name: set(keys) for name, keys in self.unique.items()},
            last_outbox_seq=self.last_outbox_seq,
        )
