"""What the in-memory store promises beyond the store contract (tests/unit/test_store_contract.py
runs that): one lock serializes transactions, a caught violation still dooms the transaction,
and the audit log's order is enforced like a constraint."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable

import pytest

from hub.adapters.memory import MemoryStore, MemoryTransaction
from hub.audit.log import AuditLog, record_bytes
from hub.audit.verification import LeafInput, verify_log
from hub.errors import RecordStoreError, StoreError
from hub.model import AuditRecord
from hub.testing.records import T0, checkpoint, event, outbox


def leaf(kind: str, data: dict[str, int], after: AuditRecord | None = None) -> list[AuditRecord]:
    return [AuditLog(after).append(kind, data, T0)]


def log_verifies(store: MemoryStore) -> bool:
    """The leaves alone: indexes, links and stored hashes (signatures are not this file's job)."""
    leaves = (LeafInput(record_bytes(r), r.hash) for r in store.audit_records())
    return verify_log(leaves, [], lambda message, signature: False).ok


def seeded(store: MemoryStore) -> None:
    with store.transaction() as tx:
        tx.add_audit(leaf("accepted", {"n": 1}))
        tx.add_checkpoint(checkpoint(1, 1))


Write = Callable[[MemoryTransaction], None]

# Another writer can never have appended first here (one lock), so an audit collision is the
# data's fault: RecordStoreError, where the SQL store answers a retriable StoreError.
VIOLATIONS: dict[str, Write] = {
    "audit-index": lambda tx: tx.add_audit(leaf("rejected", {"n": 2})),
    "audit-gap": lambda tx: tx.add_audit(
        [dataclasses.replace(leaf("rejected", {"n": 2})[0], index=5)]
    ),
    "checkpoint-seq": lambda tx: tx.add_checkpoint(checkpoint(1, 2)),
    "checkpoint-size": lambda tx: tx.add_checkpoint(checkpoint(2, 1)),
}


@pytest.mark.parametrize("write", VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_audit_collision_raises_record_store_error_and_rolls_back(
    store: MemoryStore, write: Write
) -> None:
    """An audit leaf or checkpoint out of order raises RecordStoreError (not retriable, as a
    PostgreSQL integrity violation) and undoes the whole transaction."""
    seeded(store)

    def new_event_then(write: Write) -> None:
        with store.transaction() as tx:
            tx.add_events([event("evt-2")])
            write(tx)

    with pytest.raises(RecordStoreError) as refused:
        new_event_then(write)
    assert not refused.value.retriable
    assert refused.value.cause in ("UniqueViolation", "ForeignKeyViolation", "IntegrityError")
    assert store.events() == []


def test_swallowed_violation_still_rolls_back(store: MemoryStore) -> None:
    """Catching a StoreError inside the block does not commit the rest of the transaction."""

    def carry_on_after_violation() -> None:
        with store.transaction() as tx:
            tx.add_events([event()])
            with contextlib.suppress(StoreError):
                tx.add_events([event()])
            tx.add_outbox([outbox("m-1")])

    with pytest.raises(StoreError, match="uq_events_source_event_id violated"):
        carry_on_after_violation()
    assert store.events() == []
    assert store.outbox_backlog() == 0


def test_transaction_cannot_be_used_after_it_ended(store: MemoryStore) -> None:
    """Writing through a transaction after its block ended raises instead of losing data."""
    with store.transaction() as tx:
        pass
    with pytest.raises(StoreError, match="has ended"):
        tx.add_person("p-1", T0)


def test_concurrent_transactions_serialize(store: MemoryStore) -> None:
    """Threads appending to the audit log at once produce one intact log, no lost write."""

    def append(n: int) -> None:
        with store.transaction() as tx:
            last = tx.last_audit()
            time.sleep(0.002)  # widen the window a lost update would need
            tx.add_audit(leaf("accepted", {"n": n}, last))

    threads = [threading.Thread(target=append, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = list(store.audit_records())
    assert [r.index for r in records] == list(range(8))
    assert log_verifies(store)
