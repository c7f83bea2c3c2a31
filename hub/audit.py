"""The audit trail: an append-only hash chain of facts.

Each record's hash covers its sequence number, kind, data, time and the previous hash, so a
record that is changed, removed, inserted or moved breaks verification at that position.
Records hold ids, codes and hashes, never personal values. (A signed Merkle log replaces the
chain in a later issue; the records it hashes stay the same.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from hub.model import AuditRecord

GENESIS = "0" * 64


def record_hash(seq: int, kind: str, data: dict[str, Any], at: datetime, prev_hash: str) -> str:
    body = {"seq": seq, "kind": kind, "data": data, "at": at.isoformat(), "prev": prev_hash}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


class AuditChain:
    """Builds the next records of a chain, starting after ``last`` (None for an empty chain)."""

    def __init__(self, last: AuditRecord | None) -> None:
        self._seq = last.seq if last else 0
        self._hash = last.hash if last else GENESIS
        self.pending: list[AuditRecord] = []

    def append(self, kind: str, data: dict[str, Any], at: datetime) -> AuditRecord:
        self._seq += 1
        digest = record_hash(self._seq, kind, data, at, self._hash)
        record = AuditRecord(self._seq, kind, data, at, self._hash, digest)
        self._hash = digest
        self.pending.append(record)
        return record


def verify_chain(records: Iterable[AuditRecord]) -> int | None:
    """Sequence number of the first record that does not verify, or None if all do."""
    prev_hash = GENESIS
    expected = 1
    for record in records:
        if record.seq != expected or record.prev_hash != prev_hash:
            return expected
        if record.hash != record_hash(
            record.seq, record.kind, record.data, record.recorded_at, prev_hash
        ):
            return record.seq
        prev_hash = record.hash
        expected += 1
    return None
