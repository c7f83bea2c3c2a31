"""The read side of the store: what reports, oversight, the audit verifier and tests read,
outside any write transaction. Each read sees committed data only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from consent.model import ConsentRevision
from hub.model import AcceptedEvent, AuditRecord, Checkpoint, Decision, Delivery, RejectionRecord


class StoreQueries(Protocol):
    """Committed records, each list in the order the records were written."""

    def store_id(self) -> str:
        """The random id made once with the schema: tells this database from any other."""

    def events(self) -> list[AcceptedEvent]:
        """Every accepted event."""

    def decisions(self) -> list[Decision]:
        """Every decision."""

    def rejections(self) -> list[RejectionRecord]:
        """Every rejected record."""

    def audit_records(self, start: int = 0, stop: int | None = None) -> Iterator[AuditRecord]:
        """Leaves ``start`` to ``stop`` (exclusive; None: to the end) in index order, streamed."""

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint, by ``seq``."""

    def leaf_hashes(self, stop: int | None = None) -> list[bytes]:
        """The hashes of the leaves before ``stop`` (None: all), in index order."""

    def deliveries(self) -> list[Delivery]:
        """Every delivery, oldest ``recorded_at`` first."""

    def consents(self) -> list[ConsentRevision]:
        """Every consent revision."""

    def link_count(self) -> int:
        """How many identity links exist."""

    def erasures(self) -> dict[str, datetime]:
        """Erased person id to when it was erased, for every erased person (erasures are
        few; reconcile counts them against ``erased`` leaves, reports mark their rows)."""

    def awaiting_receipt(self, recipient: str) -> int:
        """Notifications published to ``recipient`` that no receipt answered yet."""

    def outbox_backlog(self) -> int:
        """Outbox messages not published yet."""
