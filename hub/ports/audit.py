"""The audit role: the append-only, hash-chained audit log and its signed checkpoints
(``hub.audit.log`` builds the records; the store keeps them in order)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hub.model import AuditRecord, Checkpoint


class AuditRecorder(Protocol):
    """Audit leaves numbered from 0 without gaps, and checkpoints numbered by ``seq``."""

    def lock_audit_head(self, wait_s: float | None = None) -> bool:
        """Wait until no other open transaction holds the log's head, then hold it until this
        one ends, so that appends queue instead of colliding; holding it twice is harmless.
        With ``wait_s``, wait at most that long: False when another still holds it (this
        transaction stays usable and may ask again), True once held."""

    def last_audit(self) -> AuditRecord | None:
        """The leaf with the highest index, None when the log is empty; holds the log's head
        from then on (``lock_audit_head``), since the caller is about to append after it."""

    def add_audit(self, records: Sequence[AuditRecord]) -> None:
        """Append leaves, each at the next index; a StoreError when an index is taken (another
        writer appended first)."""

    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        """The hashes of leaves ``start`` to ``stop`` (exclusive), in index order."""

    def last_checkpoint(self) -> Checkpoint | None:
        """The checkpoint with the highest ``seq``; None before the first."""

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Add a checkpoint; a store error when its ``seq`` or its tree size is taken."""
