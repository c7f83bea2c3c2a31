"""The store contract: the cases every adapter of ``hub.ports.Store`` must pass.

As eventsourcing ships its recorder tests, tellonce ships this suite; a store adapter's tests
subclass ``StoreContract`` and provide a ``store`` fixture that yields a new, empty store::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self) -> Iterator[Store]:
            store = MyStore.open(...)
            yield store
            store.close()

The cases go through the ports only. Writes the store's constraints forbid raise a
RecordStoreError (the data's fault, not retriable) by the time the transaction block exits, and
leave nothing of that transaction behind. Needs pytest.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from consent.model import ConsentRevision, IdentityLink
from hub.errors import RecordStoreError, StoreError
from hub.model import AppliedConsentEvent, AuditRecord, Checkpoint
from hub.ports import Store, Transaction
from hub.testing.records import (
    EVIDENCE,
    MINUTE,
    SOURCE,
    T0,
    checkpoint,
    consent,
    decided,
    decision,
    delivery,
    event,
    leaves,
    message,
    outbox,
    rejection,
)
from hub.wire.topics import notify_topic

__all__ = ["StoreContract"]


def _append(store: Store, records: list[AuditRecord]) -> None:
    with store.transaction() as tx:
        tx.add_audit(records)


def _sign(store: Store, taken: Checkpoint) -> None:
    with store.transaction() as tx:
        tx.add_checkpoint(taken)


_Write = Callable[[Transaction], None]


def _revised(**changes: Any) -> ConsentRevision:
    return dataclasses.replace(consent(), **changes)


def _applied(event_id: str, person: str) -> AppliedConsentEvent:
    return AppliedConsentEvent.of((SOURCE, event_id), person, message(), T0)


_REFUSED: dict[str, _Write] = {
    "person-twice": lambda tx: tx.add_person("p-1", T0),
    "link-local-id-taken": lambda tx: tx.add_link(IdentityLink("p-2", "bc-msp", "MSP-1", EVIDENCE)),
    "link-program-taken": lambda tx: tx.add_link(IdentityLink("p-1", "bc-msp", "MSP-2", EVIDENCE)),
    "link-unknown-person": lambda tx: tx.add_link(IdentityLink("p-9", "cpp", "C-1", EVIDENCE)),
    "consent-seq-taken": lambda tx: tx.add_consents([_revised(hash="ee" * 32)]),
    "consent-hash-taken": lambda tx: tx.add_consents([_revised(seq=7)]),
    "consent-unknown-person": lambda tx: tx.add_consents([consent("p-9")]),
    "consent-event-twice": lambda tx: tx.add_consent_events([_applied("c-1", "p-1")]),
    "consent-event-unknown-person": lambda tx: tx.add_consent_events([_applied("c-2", "p-9")]),
    "consent-event-twice-in-one-write": lambda tx: tx.add_consent_events(
        [_applied("c-3", "p-1"), _applied("c-3", "p-2")]
    ),
    "event-twice": lambda tx: tx.add_events([event(offset=99)]),
    "decision-event-recipient-taken": lambda tx: tx.add_decisions(
        [decision(notification_id="n-2")]
    ),
    "decision-notification-id-taken": lambda tx: tx.add_decisions([decision("cpp", "n-1")]),
    "decision-unknown-event": lambda tx: tx.add_decisions(
        [decision(notification_id=None, event_id="e-404")]
    ),
    "rejection-position-taken": lambda tx: tx.add_rejections([rejection(7)]),
    "outbox-message-id-taken": lambda tx: tx.add_outbox([outbox("m-1")]),
    # the same key twice within one batch write: the whole write and transaction roll back
    "event-twice-in-one-write": lambda tx: tx.add_events([event("evt-3"), event("evt-3", 5)]),
    "decision-twice-in-one-write": lambda tx: tx.add_decisions(
        [decision("cpp", "n-7", "evt-2"), decision("cpp", "n-8", "evt-2")]
    ),
    "notification-id-twice-in-one-write": lambda tx: tx.add_decisions(
        [decision("cpp", "n-7", "evt-2"), decision("cra", "n-7", "evt-2")]
    ),
    "rejection-twice-in-one-write": lambda tx: tx.add_rejections([rejection(8), rejection(8)]),
    "outbox-twice-in-one-write": lambda tx: tx.add_outbox([outbox("m-2"), outbox("m-2")]),
    "delivery-twice": lambda tx: tx.save_deliveries([delivery()], new=True),
    "delivery-unknown-notification": lambda tx: tx.save_deliveries([delivery("n-9")], new=True),
}


class StoreContract:
    """The cases; subclass it and override the ``store`` fixture."""

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        """A new, empty store of the adapter under test, closed afterwards."""
        raise NotImplementedError("a StoreContract subclass provides the store fixture")

    def seed(self, store: Store) -> None:
        """One record of each kind, the ones _REFUSED collides with."""
        with store.transaction() as tx:
            tx.add_person("p-1", T0)
            tx.add_person("p-2", T0)
            tx.add_link(IdentityLink("p-1", "bc-msp", "MSP-1", EVIDENCE))
            tx.add_consents([consent()])
            tx.add_consent_events([_applied("c-1", "p-1")])
            tx.add_events([event()])
            tx.add_decisions([decision()])
            tx.add_rejections([rejection(7)])
            tx.add_outbox([outbox("m-1")])
            tx.save_deliveries([delivery()], new=True)

    # -- transactions ------------------------------------------------------------------------

    def test_an_empty_store_holds_nothing(self, store: Store) -> None:
        """A new store answers every read with nothing, and has an id that does not change."""
        with store.transaction() as tx:
            assert tx.last_audit() is None
            assert tx.last_checkpoint() is None
            assert tx.pending_outbox(10) == []
        assert store.events() == []
        assert store.decisions() == []
        assert store.consents() == []
        assert list(store.audit_records()) == []
        assert store.leaf_hashes() == []
        assert (store.link_count(), store.outbox_backlog()) == (0, 0)
        assert store.store_id()
        assert store.store_id() == store.store_id()

    def test_failed_transaction_leaves_nothing_behind(self, store: Store) -> None:
        """An exception inside the block rolls back every write of that transaction."""

        def write_then_fail() -> None:
            with store.transaction() as tx:
                decided(tx, "n-1")
                tx.add_outbox([outbox("m-1")])
                tx.save_offsets("hub", "t", {0: 5})
                tx.add_audit(leaves(0, 1))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            write_then_fail()
        assert store.events() == []
        assert store.decisions() == []
        assert store.outbox_backlog() == 0
        assert list(store.audit_records()) == []
        with store.transaction() as tx:
            assert not tx.person_exists("p-1")
            assert tx.offsets("hub", "t") == {}
            assert tx.known_events([(SOURCE, "evt-1")]) == set()

    @pytest.mark.parametrize("write", _REFUSED.values(), ids=_REFUSED.keys())
    def test_constraint_violation_is_refused_and_rolled_back(
        self, store: Store, write: _Write
    ) -> None:
        """A write the store's constraints forbid raises RecordStoreError (not retriable) and
        undoes the whole transaction."""
        self.seed(store)

        def new_event_then_write() -> None:
            with store.transaction() as tx:
                tx.add_events([event("evt-2")])
                write(tx)

        with pytest.raises(RecordStoreError) as refused:
            new_event_then_write()
        assert not refused.value.retriable
        assert refused.value.cause in ("UniqueViolation", "ForeignKeyViolation", "IntegrityError")
        assert [e.event_id for e in store.events()] == ["evt-1"]

    # -- offsets -----------------------------------------------------------------------------

    def test_offsets_are_kept_per_group_topic_and_partition(self, store: Store) -> None:
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

    # -- identity and consents ---------------------------------------------------------------

    def test_identity_links_are_found_both_ways(self, store: Store) -> None:
        """Links are found by local id and by person, with their evidence, and counted."""
        self.seed(store)
        with store.transaction() as tx:
            assert tx.person_exists("p-2")
            assert not tx.person_exists("p-9")
            assert tx.persons_for("bc-msp", ["MSP-1", "MSP-404"]) == {"MSP-1": "p-1"}
            assert tx.persons_for("cpp", ["MSP-1"]) == {}
            assert tx.links_of(["p-1", "p-2"]) == {"p-1": {"bc-msp": "MSP-1"}}
            assert tx.link_records("p-1") == [IdentityLink("p-1", "bc-msp", "MSP-1", EVIDENCE)]
        assert store.link_count() == 1

    def test_erasures_name_each_erased_person_once_with_its_time(self, store: Store) -> None:
        """erasures() lists the erased persons with when they were erased; erasing again
        changes nothing; a person not erased is not listed."""
        self.seed(store)
        assert store.erasures() == {}
        with store.transaction() as tx:
            tx.erase_person("p-1", T0 + MINUTE)
        with store.transaction() as tx:
            tx.erase_person("p-1", T0 + 2 * MINUTE)
            assert tx.erased_persons(["p-1", "p-2", "p-9"]) == {"p-1"}
        assert store.erasures() == {"p-1": T0 + MINUTE}
        assert store.link_count() == 1  # the link stays: its blind index still resolves

    def test_consent_history_is_grouped_and_ordered_by_seq(self, store: Store) -> None:
        """Revisions come back whole, per (person, recipient, event type), oldest seq first."""
        given = consent()
        withdrawn = consent(history=(given,))
        with store.transaction() as tx:
            tx.add_person("p-1", T0)
            tx.add_consents([given, withdrawn])
        with store.transaction() as tx:
            history = tx.consent_history(["p-1", "p-2"])
        assert history == {("p-1", "bc-msp", "AddressChanged"): [given, withdrawn]}
        assert store.consents() == [given, withdrawn]

    def test_consent_events_are_known_once_applied(self, store: Store) -> None:
        """known_consent_events answers the (source, id) keys applied, and only those."""
        self.seed(store)
        with store.transaction() as tx:
            assert tx.known_consent_events([(SOURCE, "c-1"), (SOURCE, "c-2")]) == {(SOURCE, "c-1")}

    # -- events, decisions, rejections -------------------------------------------------------

    def test_events_decisions_and_rejections_are_recorded(self, store: Store) -> None:
        """What a transaction recorded is known to the next one and read back whole."""
        with store.transaction() as tx:
            decided(tx, "n-1", None, None)  # withheld decisions may share a null notification id
            tx.add_rejections([rejection(7), rejection(8)])
        with store.transaction() as tx:
            assert tx.known_events([(SOURCE, "evt-1"), (SOURCE, "evt-2")]) == {(SOURCE, "evt-1")}
        assert store.events() == [event()]
        assert store.decisions() == [decision("r-0"), decision("r-1", None), decision("r-2", None)]
        assert store.rejections() == [rejection(7), rejection(8)]

    def test_one_write_records_many_rows_in_list_order(self, store: Store) -> None:
        """Events, decisions and outbox rows written as lists read back whole, in list order."""
        events = [event(f"evt-{n}", n) for n in (3, 1, 2)]
        with store.transaction() as tx:
            tx.add_person("p-1", T0)
            tx.add_events(events)
            tx.add_decisions([decision("cpp", f"n-{e.event_id}", e.event_id) for e in events])
            tx.add_outbox([outbox(f"m-{n}") for n in (3, 1, 2)])
        assert store.events() == events
        assert [d.event_id for d in store.decisions()] == ["evt-3", "evt-1", "evt-2"]
        with store.transaction() as tx:
            assert [m.message_id for m in tx.pending_outbox(10)] == ["m-3", "m-1", "m-2"]

    # -- outbox ------------------------------------------------------------------------------

    def test_outbox_is_published_in_increasing_seq_order(self, store: Store) -> None:
        """Messages get increasing seq across transactions; published ones leave the queue."""
        with store.transaction() as tx:
            tx.add_outbox([outbox("b"), outbox("a")])
            tx.add_outbox([])
        with store.transaction() as tx:
            tx.add_outbox([outbox("c")])
        with store.transaction() as tx:
            pending = tx.pending_outbox(10)
            assert [m.message_id for m in pending] == ["b", "a", "c"]
            assert next(dataclasses.replace(m, seq=None) for m in pending) == outbox("b")
            seqs = [m.seq or 0 for m in pending]
            assert seqs == sorted(seqs)
            assert len(set(seqs)) == 3
            assert [m.message_id for m in tx.pending_outbox(2)] == ["b", "a"]
            tx.mark_published(["b", "a", "unknown"], T0)
        assert store.outbox_backlog() == 1
        with store.transaction() as tx:
            assert [m.message_id for m in tx.pending_outbox(10)] == ["c"]

    def test_unanswered_notifications_are_republished_a_bounded_number_of_times(
        self, store: Store
    ) -> None:
        """Notifications published before the cut-off and not answered by a receipt come back,
        until republished ``max_republished`` times; others never do."""
        topic = notify_topic("bc-msp")
        with store.transaction() as tx:
            decided(tx, "n-1", "n-2")
            tx.add_outbox([outbox(n, topic) for n in ("n-1", "n-2", "n-3", "n-4")])
            tx.add_outbox([outbox("m-1")])  # not a notification
            tx.mark_published(["n-1", "n-2", "n-3", "m-1"], T0)  # n-4 never published
            tx.save_deliveries([delivery("n-1")], new=True)  # answered
        assert store.awaiting_receipt("bc-msp") == 2
        assert store.awaiting_receipt("cpp") == 0
        with store.transaction() as tx:
            assert tx.unreceipted_outbox(T0, 10, 2) == []  # not published before the cut-off
            stale = tx.unreceipted_outbox(T0 + MINUTE, 10, 2)
            assert [m.message_id for m in stale] == ["n-2", "n-3"]
            assert [m.message_id for m in tx.unreceipted_outbox(T0 + MINUTE, 1, 2)] == ["n-2"]
            tx.mark_republished(["n-2"], T0 + MINUTE)
        with store.transaction() as tx:
            assert [m.message_id for m in tx.unreceipted_outbox(T0 + MINUTE, 10, 2)] == ["n-3"]
            tx.mark_republished(["n-2"], T0 + MINUTE)
        with store.transaction() as tx:
            later = tx.unreceipted_outbox(T0 + 2 * MINUTE, 10, 2)
            assert [m.message_id for m in later] == ["n-3"]  # n-2 used up its two republishes
            assert [m.message_id for m in tx.unreceipted_outbox(T0 + 2 * MINUTE, 10, 3)] == [
                "n-2",
                "n-3",
            ]

    # -- audit -------------------------------------------------------------------------------

    def test_audit_leaves_append_and_read_in_order(self, store: Store) -> None:
        """Leaves written in two transactions read back whole, by range, with their hashes."""
        first, second = leaves(0, 3), leaves(3, 2)
        with store.transaction() as tx:
            tx.add_audit(first)
            tx.add_audit([])
        with store.transaction() as tx:
            assert tx.last_audit() == first[-1]
            tx.add_audit(second)
        with store.transaction() as tx:
            assert tx.last_audit() == second[-1]
            assert tx.leaf_hashes(1, 4) == [bytes.fromhex(r.hash) for r in (first + second)[1:4]]
        assert list(store.audit_records()) == first + second
        assert list(store.audit_records(2, 4)) == (first + second)[2:4]
        assert list(store.audit_records(3)) == second
        assert store.leaf_hashes() == [bytes.fromhex(r.hash) for r in first + second]
        assert store.leaf_hashes(2) == [bytes.fromhex(r.hash) for r in first[:2]]

    def test_an_audit_index_taken_is_refused(self, store: Store) -> None:
        """Appending at an index already written fails and adds nothing."""
        with store.transaction() as tx:
            tx.add_audit(leaves(0, 2))
        with pytest.raises(StoreError):
            _append(store, leaves(1, 2))
        assert [r.index for r in store.audit_records()] == [0, 1]

    def test_checkpoints_are_kept_by_seq(self, store: Store) -> None:
        """Checkpoints read back whole, the last by seq; a seq or tree size taken is refused."""
        with store.transaction() as tx:
            tx.add_checkpoint(checkpoint(1, 1))
            tx.add_checkpoint(checkpoint(2, 5))
        with store.transaction() as tx:
            assert tx.last_checkpoint() == checkpoint(2, 5)
        for taken in (checkpoint(2, 9), checkpoint(3, 5)):
            with pytest.raises(StoreError):
                _sign(store, taken)
        assert store.checkpoints() == [checkpoint(1, 1), checkpoint(2, 5)]

    # -- deliveries --------------------------------------------------------------------------

    def test_deliveries_are_recorded_then_updated(self, store: Store) -> None:
        """A receipt's delivery is found by notification id and replaced by a later one."""
        with store.transaction() as tx:
            decided(tx, "n-1", "n-2", None)
            tx.save_deliveries([delivery("n-2", minutes=1)], new=True)
            tx.save_deliveries([delivery("n-1", "failed", minutes=2)], new=True)
        again = dataclasses.replace(delivery("n-1", "dead_lettered", 3), dead_lettered_at=T0)
        with store.transaction() as tx:
            assert tx.decisions_by_notification(["n-1", "n-9"]) == {"n-1": decision("r-0")}
            assert tx.deliveries_of(["n-1", "n-9"]) == {"n-1": delivery("n-1", "failed", 2)}
            tx.save_deliveries([again], new=False)
        assert store.deliveries() == [delivery("n-2", minutes=1), again]

    def test_a_decision_keeps_the_digest_of_the_notice_it_sent(self, store: Store) -> None:
        """The notice digest a disclosure was sent with comes back with its decision, for the
        receipt that answers it to be checked against."""
        sent = dataclasses.replace(decision("r-0", "n-1"), notice_digest="h:" + "0f" * 32)
        with store.transaction() as tx:
            tx.add_person("p-1", T0)
            tx.add_events([event()])
            tx.add_decisions([sent, decision("r-1", None)])
        with store.transaction() as tx:
            assert tx.decisions_by_notification(["n-1"]) == {"n-1": sent}
        assert store.decisions() == [sent, decision("r-1", None)]

    def test_one_write_replaces_many_deliveries_each_with_its_values(self, store: Store) -> None:
        """A list of deliveries replaced in one call updates each row with its own values."""
        with store.transaction() as tx:
            decided(tx, "n-1", "n-2")
            tx.save_deliveries([delivery("n-1"), delivery("n-2")], new=True)
        later = [delivery("n-1", "failed", 1), delivery("n-2", "delivered", 2)]
        with store.transaction() as tx:
            tx.save_deliveries(later, new=False)
        with store.transaction() as tx:
            assert tx.deliveries_of(["n-1", "n-2"]) == {"n-1": later[0], "n-2": later[1]}

    # -- concurrent writers (the audit head, the relay's turn) -------------------------------

    def test_appends_queue_behind_the_audit_head(self, store: Store) -> None:
        """A writer that takes the head while another holds it reads the head only after the
        other committed, and appends after its leaves: no index collides."""
        waiting, failures = threading.Event(), []

        def second() -> None:
            waiting.set()
            try:
                with store.transaction() as tx:
                    tx.lock_audit_head()
                    last = tx.last_audit()
                    tx.add_audit(leaves(last.index + 1 if last else 0, 2))
            except BaseException as exc:  # re-raised in the test's thread
                failures.append(exc)

        thread = threading.Thread(target=second)
        with store.transaction() as tx:
            tx.lock_audit_head()
            tx.lock_audit_head()  # holding it twice is harmless
            assert tx.last_audit() is None
            thread.start()
            waiting.wait()
            tx.add_audit(leaves(0, 3))
        thread.join()
        assert failures == []
        assert [r.index for r in store.audit_records()] == [0, 1, 2, 3, 4]

    def test_the_relay_turn_is_held_until_the_transaction_ends(self, store: Store) -> None:
        """A transaction holds the relay's turn however often it asks, and frees it when it
        commits or rolls back."""
        with store.transaction() as tx:
            assert tx.claim_relay()
            assert tx.claim_relay()

        def rolled_back() -> None:
            with store.transaction() as tx:
                assert tx.claim_relay()
                raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError):
            rolled_back()
        with store.transaction() as tx:
            assert tx.claim_relay()
