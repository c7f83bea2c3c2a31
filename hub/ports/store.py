"""The store as the core sees it: a ``Transaction`` is every write role at once, all or
nothing; a ``Store`` opens transactions and answers the read-side queries."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from hub.ports.audit import AuditRecorder
from hub.ports.consents import ConsentRecorder
from hub.ports.decisions import DecisionRecorder
from hub.ports.deliveries import DeliveryRecorder
from hub.ports.identity import IdentityRecorder
from hub.ports.offsets import OffsetRecorder
from hub.ports.outbox import OutboxRecorder
from hub.ports.queries import StoreQueries


class Transaction(
    OffsetRecorder,
    IdentityRecorder,
    ConsentRecorder,
    DecisionRecorder,
    OutboxRecorder,
    AuditRecorder,
    DeliveryRecorder,
    Protocol,
):
    """Reads and writes inside one database transaction; all or nothing. A store error
    raised by a write dooms the transaction even when the caller catches it."""


class Store(StoreQueries, Protocol):
    """A database of the hub: write transactions, read-side queries."""

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A new transaction: committed when the block exits normally, rolled back (nothing
        written) when it raises; not reentrant."""

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
