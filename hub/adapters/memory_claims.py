"""The ClaimLog port in memory: the store fence's claims topic for fast tests, a real adapter
beside the Kafka one (``hub.adapters.claims``)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from hub.model import StoreClaim

if TYPE_CHECKING:
    from hub.ports import ClaimLog


class MemoryClaimLog:
    """hub.ports.ClaimLog in memory: the records of one compacted partition, never compacted.

    Several fences may share one log, as hubs share the topic. ``records`` is the log itself
    (key, claim or None for a tombstone), for tests that stage what a broker would hold.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[tuple[str, StoreClaim | None]] = []

    def read(self, through: int | None = None) -> list[tuple[int, StoreClaim]]:
        with self._lock:
            records = list(self.records if through is None else self.records[: through + 1])
        live: dict[str, tuple[int, StoreClaim]] = {}
        for position, (key, claim) in enumerate(records):
            if claim is None:
                live.pop(key, None)
            elif key not in live:
                live[key] = (position, claim)
        return sorted(live.values(), key=lambda entry: entry[0])

    def append(self, claim: StoreClaim) -> int:
        with self._lock:
            self.records.append((claim.key, claim))
            return len(self.records) - 1

    def withdraw(self, claim: StoreClaim) -> None:
        with self._lock:
            self.records.append((claim.key, None))

    def close(self) -> None:
        """Nothing to release."""


if TYPE_CHECKING:  # mypy proves the adapter satisfies the port

    def _is_claim_log(claims: MemoryClaimLog) -> ClaimLog:
        return claims
