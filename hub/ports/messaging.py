"""The messaging ports: what the core needs from the broker (Kafka here).

A ``MessageSource`` polls, a ``Producer`` publishes, an ``OffsetLookup`` tells a source where
to resume (the store keeps offsets with the effects of the messages), and the ``ClaimLog`` is
the broker topic on which hubs claim consumer groups for their stores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from hub.model import Headers, InboundMessage, StoreClaim


class Producer(Protocol):
    """Publishes records; ``flush`` returns once the broker acknowledged all of them."""

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None:
        """Queue one record for ``topic``; it is not durable before ``flush`` returns."""

    def flush(self) -> None:
        """Return once the broker acknowledged every record sent; raise if it refused one."""

    def close(self) -> None:
        """Flush what is queued and release the connection."""


class MessageSource(Protocol):
    """Polls records of subscribed topics; positions are set by the caller's offset lookup."""

    def poll(self, max_records: int, timeout_ms: int) -> list[InboundMessage]:
        """Up to ``max_records`` records, waiting at most ``timeout_ms``; empty when none came."""

    @property
    def ready(self) -> bool:
        """True once partitions are assigned (a group join can take seconds)."""

    def rewind(self) -> None:
        """Go back to the offsets the lookup gives (after a failed batch)."""

    def commit(self) -> None:
        """Commit consumed positions to the broker (for sources that keep offsets there)."""

    def keep_alive(self) -> None:
        """Stay in the consumer group during a long wait, without taking new records."""

    def close(self) -> None:
        """Leave the consumer group and release the connection."""


OffsetLookup = Callable[[str, int], int | None]
"""``lookup(topic, partition)``: the next offset to read there, or None to start at the
beginning (nothing was consumed yet)."""


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

    def close(self) -> None:
        """Release the connection to the broker."""
