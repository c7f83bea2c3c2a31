"""The in-memory store keeps the SQL store's promises: atomic transactions, unique constraints."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from consent.model import ConsentRevision, ConsentState, Evidence, IdentityLink
from consent.rules import next_revision
from hub.adapters.memory import MemoryStore, MemoryTransaction
from hub.audit.log import AuditLog, record_bytes
from hub.audit.verification import LeafInput, verify_log
from hub.errors import RecordStoreError, StoreError
from hub.model import (
    AcceptedEvent,
    AuditRecord,
    Checkpoint,
    Decision,
    OutboxMessage,
    Outcome,
    RejectionRecord,
)
from hub.ports import Store

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
EVIDENCE = Evidence("counter", "staff-042", T0)


def event(event_id: str = "evt-1", offset: int = 0) -> AcceptedEvent:
    return AcceptedEvent("bc-service-bc", event_id, "AddressChanged", T0, None, "t", 0, offset, T0)


def decision(recipient: str = "bc-msp", notification_id: str | None = "n-1") -> Decision:
    outcome = Outcome.DISCLOSED if notification_id else Outcome.WITHHELD
    return Decision(
        "bc-service-bc", "evt-1", recipient, outcome, "r", None, notification_id, (), T0
    )


def outbox(message_id: str) -> OutboxMessage:
    return OutboxMessage(message_id, "topic", b"k", b"v", [("ce_id", b"1")], T0)


def rejection(offset: int) -> RejectionRecord:
    return RejectionRecord("t", 0, offset, "bad_header", "detail", None, None, T0)


def consent(person: str = "p-1", recipient: str = "bc-msp", minutes: int = 0) -> ConsentRevision:
    return next_revision(
        [],
        person_id=person,
        recipient=recipient,
        event_type="AddressChanged",
        state=ConsentState.GIVEN,
        evidence=Evidence("counter", "staff", T0.replace(minute=minutes)),
    )


def leaf(kind: str, data: dict[str, int], after: AuditRecord | None = None) -> list[AuditRecord]:
    return [AuditLog(after).append(kind, data, T0)]


def checkpoint(seq: int, size: int) -> Checkpoint:
    return Checkpoint(seq, size, "0" * 64, T0, "ed25519:0000000000000000", "")


def log_verifies(store: MemoryStore) -> bool:
    """The leaves alone: indexes, links and stored hashes (signatures are not this file's job)."""
    leaves = (LeafInput(record_bytes(r), r.hash) for r in store.audit_records())
    return verify_log(leaves, [], lambda message, signature: False).ok


def seeded(store: MemoryStore) -> None:
    with store.transaction() as tx:
        tx.add_person("p-1", T0)
        tx.add_person("p-2", T0)
        tx.add_link(IdentityLink("p-1", "bc-msp", "MSP-1", EVIDENCE))
        tx.add_event(event())
        tx.add_decision(decision())
        tx.add_consent(consent())
        tx.add_outbox(outbox("m-1"))
        tx.add_rejection(rejection(7))
        tx.add_audit(leaf("accepted", {"n": 1}))
        tx.add_checkpoint(checkpoint(1, 1))


def test_memory_store_satisfies_the_store_port() -> None:
    """MemoryStore can stand wherever the hub expects a Store."""
    store: Store = MemoryStore()
    with store.transaction() as tx:
        assert tx.last_audit() is None
    store.close()


def test_committed_transaction_is_visible(store: MemoryStore) -> None:
    """What a transaction wrote is there for the next transaction and the reports."""
    seeded(store)
    with store.transaction() as tx:
        assert tx.persons_for("bc-msp", ["MSP-1", "MSP-404"]) == {"MSP-1": "p-1"}
        assert tx.links_of(["p-1", "p-2"]) == {"p-1": {"bc-msp": "MSP-1"}}
        assert [link.local_id for link in tx.link_records("p-1")] == ["MSP-1"]
        assert tx.known_events([("bc-service-bc", "evt-1"), ("bc-service-bc", "evt-2")]) == {
            ("bc-service-bc", "evt-1")
        }
        assert list(tx.consent_history(["p-1"])) == [("p-1", "bc-msp", "AddressChanged")]
    assert [e.event_id for e in store.events()] == ["evt-1"]
    assert [d.recipient for d in store.decisions()] == ["bc-msp"]
    assert [r.offset for r in store.rejections()] == [7]
    assert store.outbox_backlog() == 1
    assert [r.index for r in store.audit_records()] == [0]
    assert log_verifies(store)
    assert [(c.seq, c.size) for c in store.checkpoints()] == [(1, 1)]


def test_failed_transaction_leaves_nothing_behind(store: MemoryStore) -> None:
    """An exception inside the block rolls back every write of that transaction."""

    def write_then_fail() -> None:
        with store.transaction() as tx:
            tx.add_person("p-1", T0)
            tx.add_event(event())
            tx.add_outbox(outbox("m-1"))
            tx.save_offsets("hub", "t", {0: 5})
            tx.add_audit(leaf("accepted", {}))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert store.events() == []
    assert store.outbox_backlog() == 0
    assert list(store.audit_records()) == []
    with store.transaction() as tx:
        assert not tx.person_exists("p-1")
        assert tx.offsets("hub", "t") == {}
        assert tx.known_events([("bc-service-bc", "evt-1")]) == set()
        assert tx.pending_outbox(10) == []


Write = Callable[[MemoryTransaction], None]

VIOLATIONS: dict[str, Write] = {
    "person": lambda tx: tx.add_person("p-1", T0),
    "event": lambda tx: tx.add_event(event(offset=99)),
    "decision": lambda tx: tx.add_decision(decision(notification_id="n-2")),
    "notification-id": lambda tx: tx.add_decision(decision("esdc-cpp", "n-1")),
    "link-local-id": lambda tx: tx.add_link(IdentityLink("p-2", "bc-msp", "MSP-1", EVIDENCE)),
    "link-person-program": lambda tx: tx.add_link(IdentityLink("p-1", "bc-msp", "MSP-2", EVIDENCE)),
    "consent-seq": lambda tx: tx.add_consent(consent(minutes=5)),
    "consent-hash": lambda tx: tx.add_consent(consent()),
    "outbox-message-id": lambda tx: tx.add_outbox(outbox("m-1")),
    "rejection-position": lambda tx: tx.add_rejection(rejection(7)),
    "audit-index": lambda tx: tx.add_audit(leaf("rejected", {"n": 2})),
    "audit-gap": lambda tx: tx.add_audit(
        [dataclasses.replace(leaf("rejected", {"n": 2})[0], index=5)]
    ),
    "checkpoint-seq": lambda tx: tx.add_checkpoint(checkpoint(1, 2)),
    "checkpoint-size": lambda tx: tx.add_checkpoint(checkpoint(2, 1)),
    "link-unknown-person": lambda tx: tx.add_link(
        IdentityLink("p-404", "esdc-cpp", "CPP-1", EVIDENCE)
    ),
    "consent-unknown-person": lambda tx: tx.add_consent(consent("p-404")),
    "decision-unknown-event": lambda tx: tx.add_decision(
        Decision("bc-service-bc", "evt-404", "bc-msp", Outcome.WITHHELD, "r", None, None, (), T0)
    ),
}


@pytest.mark.parametrize("write", VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_constraint_violation_raises_store_error_and_rolls_back(
    store: MemoryStore, write: Write
) -> None:
    """A write the SQL constraints forbid raises RecordStoreError (not retriable, as a
    PostgreSQL integrity violation) and undoes the whole transaction."""
    seeded(store)

    def new_event_then(write: Write) -> None:
        with store.transaction() as tx:
            tx.add_event(event("evt-2"))
            write(tx)

    with pytest.raises(RecordStoreError) as refused:
        new_event_then(write)
    assert not refused.value.retriable
    assert refused.value.cause in ("UniqueViolation", "ForeignKeyViolation", "IntegrityError")
    assert [e.event_id for e in store.events()] == ["evt-1"]


def test_swallowed_violation_still_rolls_back(store: MemoryStore) -> None:
    """Catching a StoreError inside the block does not commit the rest of the transaction."""

    def carry_on_after_violation() -> None:
        with store.transaction() as tx:
            tx.add_event(event())
            with contextlib.suppress(StoreError):
                tx.add_event(event())
            tx.add_outbox(outbox("m-1"))

    with pytest.raises(StoreError, match="uq_events_source_event_id violated"):
        carry_on_after_violation()
    assert store.events() == []
    assert store.outbox_backlog() == 0


def test_withheld_decisions_may_share_a_null_notification_id(store: MemoryStore) -> None:
    """Like SQL NULLs, missing notification ids never collide."""
    with store.transaction() as tx:
        tx.add_event(event())
        tx.add_decision(decision("bc-msp", None))
        tx.add_decision(decision("esdc-cpp", None))
    assert len(store.decisions()) == 2


def test_outbox_is_published_in_increasing_seq_order(store: MemoryStore) -> None:
    """Outbox rows get increasing seq across transactions; the relay sees them in that order."""
    with store.transaction() as tx:
        tx.add_outbox(outbox("b"))
        tx.add_outbox(outbox("a"))
    with store.transaction() as tx:
        tx.add_outbox(outbox("c"))
    with store.transaction() as tx:
        pending = tx.pending_outbox(10)
        assert [(m.message_id, m.seq) for m in pending] == [("b", 1), ("a", 2), ("c", 3)]
        assert [m.message_id for m in tx.pending_outbox(2)] == ["b", "a"]
        tx.mark_published(["b", "a"], T0)
    assert store.outbox_backlog() == 1
    with store.transaction() as tx:
        assert [m.message_id for m in tx.pending_outbox(10)] == ["c"]


def test_offsets_are_kept_per_group_topic_and_partition(store: MemoryStore) -> None:
    """Saved offsets overwrite earlier ones and stay apart per group and topic."""
    with store.transaction() as tx:
        tx.save_offsets("hub", "t", {0: 5, 1: 2})
        tx.save_offsets("other", "t", {0: 9})
    with store.transaction() as tx:
        tx.save_offsets("hub", "t", {0: 8})
    with store.transaction() as tx:
        assert tx.offsets("hub", "t") == {0: 8, 1: 2}
        assert tx.offsets("other", "t") == {0: 9}
        assert tx.offsets("hub", "u") == {}


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
