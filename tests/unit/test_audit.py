"""The audit hash chain: an intact chain verifies; any edit is found at the right position."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from hub.audit import GENESIS, AuditChain, record_hash, verify_chain
from hub.model import AuditRecord

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def chain(n: int = 5) -> list[AuditRecord]:
    builder = AuditChain(None)
    for i in range(n):
        builder.append("accepted", {"event": f"bc-service-bc/evt-{i}"}, T0 + timedelta(seconds=i))
    return builder.pending


def test_intact_chain_verifies() -> None:
    """A chain built by AuditChain verifies, starting at seq 1 from genesis."""
    records = chain()
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS
    assert verify_chain(records) is None


def test_empty_chain_verifies() -> None:
    """No records is a valid (empty) trail."""
    assert verify_chain([]) is None


def test_chain_continues_after_the_last_stored_record() -> None:
    """A chain resumed from its last record keeps numbering and linking."""
    records = chain(3)
    more = AuditChain(records[-1])
    more.append("withheld", {"recipient": "bc-msp", "reason": "no_consent"}, T0)
    assert more.pending[0].seq == 4
    assert verify_chain(records + more.pending) is None


def test_modified_record_is_found() -> None:
    """Changing the data of record 3 is reported at seq 3."""
    records = chain()
    records[2] = dataclasses.replace(records[2], data={"event": "bc-service-bc/forged"})
    assert verify_chain(records) == 3


def test_modified_time_is_found() -> None:
    """Changing the time of record 2 is reported at seq 2."""
    records = chain()
    records[1] = dataclasses.replace(records[1], recorded_at=T0 - timedelta(days=1))
    assert verify_chain(records) == 2


def test_deleted_record_is_found() -> None:
    """Removing record 3 is reported at seq 3, where it is missing."""
    records = chain()
    del records[2]
    assert verify_chain(records) == 3


def test_deleted_last_record_is_not_detectable_by_the_chain_alone() -> None:
    """Truncation at the end leaves a valid prefix (signed checkpoints must catch it)."""
    assert verify_chain(chain()[:-1]) is None


def test_inserted_copy_is_found() -> None:
    """A copy of record 2 inserted after it is reported at seq 3."""
    records = chain()
    records.insert(2, records[1])
    assert verify_chain(records) == 3


def test_inserted_well_formed_record_is_found() -> None:
    """A forged but well-hashed record 3 is caught at seq 4, where the originals resume."""
    records = chain()
    data = {"event": "bc-service-bc/forged"}
    forged = AuditRecord(
        3,
        "accepted",
        data,
        T0,
        records[1].hash,
        record_hash(3, "accepted", data, T0, records[1].hash),
    )
    records.insert(2, forged)
    assert verify_chain(records) == 4


def test_reordered_records_are_found() -> None:
    """Swapping records 3 and 4 is reported at seq 3."""
    records = chain()
    records[2], records[3] = records[3], records[2]
    assert verify_chain(records) == 3
