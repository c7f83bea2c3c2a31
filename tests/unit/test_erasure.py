"""Erasing a person on the memory store: the policy on undelivered notices, what the store and
the audit log keep, later events withheld as erased, consent refused, reports marked erased.

The store is filled the way the hub fills it: links and consents through ConsentService, life
events through BatchProcessor, receipts through DeliveryIntake.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from consent.model import ConsentState, Evidence
from hub.adapters.avro import AvroCodec
from hub.adapters.keys import AesGcmSealer, FileKeyWrapper
from hub.adapters.memory import MemoryStore
from hub.audit.oversight import disclosure_report, reconcile, verify_store
from hub.config.directory import Directory
from hub.consents.history import consent_history
from hub.consents.service import ConsentService
from hub.errors import ConflictError, DecryptionError, NotFoundError
from hub.model import DecisionOutcome, InboundMessage
from hub.privacy.blind_index import BlindIndex
from hub.privacy.erasure import ERASURE_SINK, ErasureService
from hub.privacy.vault import Vault
from hub.processing.life_events import BatchProcessor
from hub.processing.receipts import RECEIPT_SCHEMA, DeliveryIntake
from hub.wire.topics import RECEIPTS_TOPIC
from tests.unit.conftest import PSEUDONYMS
from tests.unit.test_processing import Publisher

PUBLISHER = "bc-service-bc"
SUBJECT = "SBC-1001"  # the client's id at Service BC (Publisher's default key)
REF = f"{PUBLISHER}:{SUBJECT}"
LINKS = {PUBLISHER: SUBJECT, "cra-individual": "CRA-ERASE-1", "bc-msp": "MSP-ERASE-1"}
CONSENTS = ("cra-individual", "bc-msp")


class World:
    """One client linked at three programs and consenting to two, on a memory store, with the
    hub's use-cases around it."""

    def __init__(
        self, store: MemoryStore, directory: Directory, codec: AvroCodec, now: datetime
    ) -> None:
        self.store = store
        self.codec = codec
        self.now = now

        def clock() -> datetime:
            return now

        self.consent = ConsentService(store, directory, clock=clock)
        self.erasure = ErasureService(
            store, resolve=self.consent.resolve, pseudonyms=PSEUDONYMS, clock=clock
        )
        self.processor = BatchProcessor(
            directory=directory, codec=codec, clock=clock, group_id="hub", pseudonyms=PSEUDONYMS
        )
        self.receipts = DeliveryIntake(
            codec=codec, clock=clock, group_id="hub", pseudonyms=PSEUDONYMS
        )
        self.publisher = Publisher(codec, now)
        evidence = Evidence("counter", "staff-042", now - timedelta(days=1))
        person = None
        for program, local_id in LINKS.items():
            person = self.consent.link(program, local_id, evidence, to=person)
        assert person is not None
        self.person = person
        for recipient in CONSENTS:
            self.consent.record(person, recipient, ["AddressChanged"], ConsentState.GIVEN, evidence)
        self.receipt_offset = 0

    def event(self, ce_id: str) -> None:
        with self.store.transaction() as tx:
            self.processor.process(tx, [self.publisher.message(ce_id)])

    def notification(self, ce_id: str, recipient: str) -> str:
        (decision,) = [
            d for d in self.store.decisions() if (d.event_id, d.recipient) == (ce_id, recipient)
        ]
        assert decision.notification_id is not None
        return decision.notification_id

    def receipt(
        self, notification: str, recipient: str, status: str, dead_letter_topic: str | None = None
    ) -> None:
        record = {
            "notification_id": notification,
            "recipient": recipient,
            "event_id": "evt",
            "status": status,
            "sink": "webhook",
            "detail": None,
            "recorded_at": self.now,
            "dead_letter_topic": dead_letter_topic,
        }
        value = self.codec.encode(RECEIPT_SCHEMA, record)
        message = InboundMessage(RECEIPTS_TOPIC, 0, self.receipt_offset, None, value)
        self.receipt_offset += 1
        with self.store.transaction() as tx:
            assert self.receipts.process(tx, [message]).recorded == 1

    def leaves(self) -> list[str]:
        return [r.kind for r in self.store.audit_records()]

    def notices(self) -> list[str]:
        """Topics of the notices still queued in the outbox."""
        with self.store.transaction() as tx:
            return [m.topic for m in tx.pending_outbox(100) if m.topic.startswith("tellonce.n")]

    def assert_audit_holds(self) -> None:
        verdict = verify_store(self.store, lambda message, signature: False, None)
        assert verdict.ok, verdict.problem
        result = reconcile(self.store, PSEUDONYMS)
        assert result.ok, (result.tallies, result.problems)


@pytest.fixture
def world(store: MemoryStore, directory: Directory, codec: AvroCodec, now: datetime) -> World:
    return World(store, directory, codec, now)


def test_erasing_a_person_without_notices_in_flight(world: World) -> None:
    """PROGRAM:LOCAL_ID erases the person: links no longer open, one erased leaf with the
    person id and counts only, and verify and reconcile still pass."""
    erasure = world.erasure.erase(REF)
    assert (erasure.person_id, erasure.links, erasure.dead_lettered) == (world.person, 3, ())
    assert world.store.erasures() == {world.person: world.now}
    with world.store.transaction() as tx:
        assert tx.links_of([world.person]) == {}
        assert tx.link_records(world.person) == []
        assert tx.persons_for(PUBLISHER, [SUBJECT]) == {SUBJECT: world.person}  # blind index
    leaf = list(world.store.audit_records())[erasure.leaf]
    assert leaf.kind == "erased"
    assert leaf.data == {
        "person": world.person,
        "links": 3,
        "dead_lettered": 0,
        "channel": "counter",
    }
    leaves = json.dumps([r.data for r in world.store.audit_records()])
    assert not [local_id for local_id in LINKS.values() if local_id in leaves]
    world.assert_audit_holds()


def test_erasing_twice_is_refused(world: World) -> None:
    """A second erasure is a ConflictError and writes nothing more."""
    world.erasure.erase(world.person)
    leaves = world.leaves()
    with pytest.raises(ConflictError, match="erased already"):
        world.erasure.erase(REF)
    assert world.leaves() == leaves


def test_unknown_person_is_not_found(world: World) -> None:
    """Nobody under that local id: NotFoundError naming the program, not the id."""
    with pytest.raises(NotFoundError, match="bc-service-bc") as raised:
        world.erasure.erase(f"{PUBLISHER}:SBC-NOBODY")
    assert "SBC-NOBODY" not in str(raised.value)


def test_undelivered_notices_are_refused_then_dead_lettered_with_force(world: World) -> None:
    """With notices no receipt settled, erase refuses and names how many; --force records each
    as a dead letter (delivery and leaf, sink tellonce-erasure), drops them from the outbox
    and erases; the delivered notice stays delivered; verify and reconcile pass."""
    world.event("evt-1")
    delivered = world.notification("evt-1", "cra-individual")
    world.receipt(delivered, "cra-individual", "DELIVERED")
    world.event("evt-2")
    failed = world.notification("evt-2", "cra-individual")
    world.receipt(failed, "cra-individual", "FAILED")  # failed: not settled
    in_flight = {
        failed,
        world.notification("evt-1", "bc-msp"),
        world.notification("evt-2", "bc-msp"),
    }
    before = world.leaves()

    with pytest.raises(ConflictError, match="3 notices about this person have no delivery") as no:
        world.erasure.erase(REF)
    assert "--force" in str(no.value)
    assert world.store.erasures() == {}
    assert world.leaves() == before
    assert len(world.notices()) == 4

    erasure = world.erasure.erase(REF, force=True)
    assert set(erasure.dead_lettered) == in_flight
    deliveries = {d.notification_id: d for d in world.store.deliveries()}
    assert deliveries[delivered].status == "delivered"
    for notification in in_flight:
        dead = deliveries[notification]
        assert (dead.status, dead.sink, dead.dead_lettered_at) == (
            "dead_lettered",
            ERASURE_SINK,
            world.now,
        )
        assert dead.detail is not None
        assert SUBJECT not in dead.detail
    new_leaves = world.leaves()[len(before) :]
    assert new_leaves == ["dead_lettered"] * 3 + ["erased"]
    assert world.notices() == []  # the person's queued notices are gone
    with world.store.transaction() as tx:
        assert tx.undelivered_notifications(world.person) == []
    world.assert_audit_holds()


def test_a_notice_dead_lettered_before_gets_no_second_dead_letter_leaf(world: World) -> None:
    """A notice a connector dead-lettered, replayed and then failed is undelivered: --force
    settles it as dead-lettered again without a second dead_lettered leaf, so reconcile,
    which counts each dead-lettered notice once, still passes."""
    world.event("evt-1")
    notification = world.notification("evt-1", "bc-msp")
    world.receipt(notification, "bc-msp", "FAILED", dead_letter_topic="tellonce.notify.bc-msp.dlq")
    world.receipt(notification, "bc-msp", "FAILED")  # the replay failed
    before = Counter(world.leaves())
    erasure = world.erasure.erase(REF, force=True)
    assert notification in erasure.dead_lettered
    added = Counter(world.leaves()) - before
    assert added == {"dead_lettered": 1, "erased": 1}  # for the cra-individual notice only
    (dead,) = [d for d in world.store.deliveries() if d.notification_id == notification]
    assert dead.status == "dead_lettered"
    world.assert_audit_holds()


def test_later_events_are_withheld_as_erased(world: World) -> None:
    """After erasure every recipient of a new event about the person is withheld with reason
    erased, with withheld leaves, and no notice is queued; reconcile still passes."""
    world.erasure.erase(REF)
    world.event("evt-after")
    decisions = [d for d in world.store.decisions() if d.event_id == "evt-after"]
    assert decisions
    assert {(d.outcome, d.reason) for d in decisions} == {(DecisionOutcome.WITHHELD, "erased")}
    assert world.notices() == []
    withheld = [r.data for r in world.store.audit_records() if r.kind == "withheld"]
    assert {w["reason"] for w in withheld} == {"erased"}
    assert len(withheld) == len(decisions)
    (accepted,) = [r.data for r in world.store.audit_records() if r.kind == "accepted"]
    assert accepted["person"] == world.person  # the event is still known to be theirs
    world.assert_audit_holds()


def test_consent_changes_and_links_for_an_erased_person_are_refused(world: World) -> None:
    """Grant, withdrawal and a new link to an erased person raise ConflictError saying so."""
    world.erasure.erase(REF)
    evidence = Evidence("counter", "staff-042", world.now)
    for state in (ConsentState.GIVEN, ConsentState.WITHDRAWN):
        with pytest.raises(ConflictError, match="was erased"):
            world.consent.record(REF, "cra-individual", ["AddressChanged"], state, evidence)
    with pytest.raises(ConflictError, match="was erased"):
        world.consent.link("esdc-cpp", "CPP-1", evidence, to=REF)
    assert Counter(r.state for r in world.store.consents()) == {ConsentState.GIVEN: 2}


def test_show_and_history_say_the_person_was_erased(world: World) -> None:
    """show and history of an erased person (found by a local id) say erased, open no local
    id, and keep the consent revisions as evidence."""
    world.erasure.erase(world.person)
    view = world.consent.show(REF)
    assert (view.person_id, view.erased, view.links) == (world.person, True, {})
    assert set(view.history) == {(r, "AddressChanged") for r in CONSENTS}
    history = consent_history(world.consent, REF)
    assert history.erased
    assert history.verified


def test_report_marks_the_erased_persons_disclosures(
    world: World, directory: Directory, now: datetime
) -> None:
    """audit report --person PROGRAM:LOCAL_ID of an erased person lists their disclosures and
    withholdings marked erased, without their local ids."""
    world.event("evt-1")
    world.erasure.erase(REF, force=True)
    world.event("evt-2")

    def report(fmt: str) -> str:
        return disclosure_report(
            world.store,
            PSEUDONYMS,
            directory,
            now=now,
            fmt=fmt,  # type: ignore[arg-type]
            lang="en",
            person=REF,
            resolve=world.consent.person_id,
        ).text

    document = json.loads(report("json"))
    rows = document["rows"]
    assert {(r["outcome"], r["erased"]) for r in rows} >= {
        ("disclosed", True),
        ("withheld", True),
    }
    assert all(r["erased"] for r in rows)
    assert "erased" in {r["reason"] for r in rows}  # evt-2, decided after the erasure
    assert document["scope"]["person"].endswith("(erased)")
    table = report("table")
    assert "Person erased" in table
    assert "client erased" in table
    for text in (table, report("csv"), json.dumps(document)):
        assert not [local_id for local_id in LINKS.values() if local_id in text]


def test_reconcile_fails_when_an_erasure_has_no_leaf(world: World) -> None:
    """An erasure written behind the use-case's back (no erased leaf) is a reconcile mismatch
    naming the person."""
    with world.store.transaction() as tx:
        tx.erase_person(world.person, world.now)
    result = reconcile(world.store, PSEUDONYMS)
    assert not result.ok
    (tally,) = [t for t in result.tallies if t.fact == "erased persons"]
    assert (tally.leaves, tally.facts) == (0, 1)
    assert result.problems == [f"person {world.person}: erased only in the store"]


def test_erasure_destroys_the_data_key(
    directory: Directory, codec: AvroCodec, now: datetime, tmp_path: Path
) -> None:
    """With a vault, erasing drops the person's wrapped data key from the store, so what was
    sealed under it no longer opens with what the store holds."""
    vault = Vault(
        FileKeyWrapper(tmp_path / "keks", create=True), AesGcmSealer(), BlindIndex(bytes(32))
    )
    world = World(MemoryStore(vault), directory, codec, now)
    with world.store.transaction() as tx:
        assert sum(tx.data_keys_by_kek().values()) == 1
        key = tx.state.data_keys[world.person]
    sealed = vault.seal(world.person, key, b"CRA-ERASE-1", b"row")
    assert vault.open(world.person, key, sealed, b"row") == b"CRA-ERASE-1"
    world.erasure.erase(REF)
    with world.store.transaction() as tx:
        assert tx.data_keys_by_kek() == {}
        kept = tx.state.data_keys.get(world.person)
    with pytest.raises(DecryptionError, match="erased"):
        vault.open(world.person, kept, sealed, b"row")
