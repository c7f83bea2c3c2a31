"""The offsets role: positions of consumed topics, kept in the store with the effects of the
messages (DESIGN.md 9), so a batch and its offsets commit or roll back together."""

from __future__ import annotations

from typing import Protocol


class OffsetRecorder(Protocol):
    """Next offsets to read, per consumer group, topic and partition."""

    def offsets(self, group: str, topic: str) -> dict[int, int]:
        """Partition to next offset for ``group`` on ``topic``; empty when none was saved."""

    def save_offsets(self, group: str, topic: str, next_offsets: dict[int, int]) -> None:
        """Set the next offsets of these partitions, replacing earlier ones; others stay."""
