"""What a privacy officer runs: reconcile leaves with facts, inclusion proofs, disclosure reports.

The store is filled the way the hub fills it: links and consents through ConsentService,
life events through BatchProcessor, receipts through DeliveryIntake, checkpoints by Notary.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from consent.model import ConsentState, Evidence
from hub.adapters.avro import AvroCodec
from hub.adapters.memory import MemoryStore
from hub.adapters.signing import FileSigner
from hub.audit import merkle
from hub.audit.log import AuditLog, CheckpointPolicy, Notary
from hub.audit.oversight import correction_list, disclosure_rows, prove_inclusion, reconcile
from hub.config.directory import Directory
from hub.consents.service import ConsentService
from hub.errors import NotFoundError
from hub.model import DecisionOutcome, InboundMessage
from hub.processing.life_events import BatchProcessor
from hub.processing.receipts import RECEIPT_SCHEMA, DeliveryIntake
from hub.wire.topics import LIFEEVENTS_TOPIC, RECEIPTS_TOPIC
from tests.samples import address_changed
from tests.unit.conftest import PSEUDONYMS

DAY1 = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
DAY3 = DAY1 + timedelta(days=2)
PUBLISHER = "bc-service-bc"
ADDRESS_CHANGED = "ca.tellonce.lifeevents.AddressChanged"


def ref(event_id: str) -> str:
    """How leaves, reports and reconciliation name the publisher's event ``event_id``."""
    return PSEUDONYMS.event(PUBLISHER, event_id)


EVENT_IDS = {ref(e): e for e in ("evt-1", "evt-2", "evt-3")}
# person -> their id at each program; each consents to be told of moves by these recipients
CLIENTS = {
    "alice": {PUBLISHER: "SBC-1001", "cra-individual": "CRA-1", "bc-icbc-licensing": "DL-1"},
    "bob": {PUBLISHER: "SBC-2002", "cra-individual": "CRA-2"},
}
CONSENTS = {"alice": ("cra-individual", "bc-icbc-licensing"), "bob": ("cra-individual",)}


@dataclass
class Hub:
    store: MemoryStore
    persons: dict[str, str]  # name -> person id
    signed: int  # leaves covered by the newest checkpoint


def life_event(codec: AvroCodec, ce_id: str, subject: str, now: datetime, offset: int) -> Any:
    record = address_changed(subject, date(2025, 3, 1))
    headers = {
        "ce_specversion": "1.0",
        "ce_id": ce_id,
        "ce_source": PUBLISHER,
        "ce_type": ADDRESS_CHANGED,
        "ce_time": (now - timedelta(minutes=3)).isoformat(),
        "ce_subject": subject,
        "content-type": "application/avro",
    }
    return InboundMessage(
        topic=LIFEEVENTS_TOPIC,
        partition=0,
        offset=offset,
        key=subject.encode(),
        value=codec.encode(ADDRESS_CHANGED, record),
        headers=[(k, v.encode()) for k, v in headers.items()],
    )


def process(
    store: MemoryStore, directory: Directory, codec: AvroCodec, now: datetime, *events: Any
) -> None:
    processor = BatchProcessor(
        directory=directory,
        codec=codec,
        clock=lambda: now,
        group_id="hub",
        pseudonyms=PSEUDONYMS,
    )
    with store.transaction() as tx:
        processor.process(tx, events)


@pytest.fixture
def hub(tmp_path: Path, directory: Directory, codec: AvroCodec) -> Hub:
    """Two clients, three address changes over two days, one delivery, one checkpoint."""
    store = MemoryStore()
    service = ConsentService(store, directory)
    evidence = Evidence("counter", "staff-042", DAY1 - timedelta(days=30))
    persons: dict[str, str] = {}
    for name, ids in CLIENTS.items():
        person = None
        for program, local_id in ids.items():
            person = service.link(program, local_id, evidence, to=person)
        assert person is not None
        persons[name] = person
        for recipient in CONSENTS[name]:
            service.record(person, recipient, ["AddressChanged"], ConsentState.GIVEN, evidence)
    process(
        store,
        directory,
        codec,
        DAY1,
        life_event(codec, "evt-1", "SBC-1001", DAY1, 0),
        life_event(codec, "evt-2", "SBC-2002", DAY1, 1),
    )
    notary = Notary(FileSigner(tmp_path / "audit.pem", create=True), CheckpointPolicy(1, 60))
    with store.transaction() as tx:
        assert notary.maybe_checkpoint(tx, DAY1, force=True) is not None
    signed = store.checkpoints()[-1].size
    process(store, directory, codec, DAY3, life_event(codec, "evt-3", "SBC-1001", DAY3, 2))
    delivered = next(
        d for d in store.decisions() if (d.event_id, d.recipient) == ("evt-1", "cra-individual")
    )
    receipt = {
        "notification_id": delivered.notification_id,
        "recipient": "cra-individual",
        "event_id": "evt-1",
        "status": "DELIVERED",
        "sink": "webhook",
        "detail": None,
        "recorded_at": DAY1 + timedelta(hours=1),
    }
    intake = DeliveryIntake(codec=codec, clock=lambda: DAY3, group_id="hub", pseudonyms=PSEUDONYMS)
    with store.transaction() as tx:
        message = InboundMessage(RECEIPTS_TOPIC, 0, 0, None, codec.encode(RECEIPT_SCHEMA, receipt))
        assert intake.process(tx, [message]).recorded == 1
    return Hub(store, persons, signed)


# -- reconciliation --------------------------------------------------------------------------


def test_reconcile_matches_every_leaf_kind_with_the_store(hub: Hub) -> None:
    """After linking, consenting, processing and a delivery, leaf counts equal the facts."""
    result = reconcile(hub.store, PSEUDONYMS)
    assert result.ok, (result.tallies, result.problems)
    counts = {t.fact: (t.leaves, t.facts) for t in result.tallies}
    decisions = hub.store.decisions()
    disclosed = sum(d.outcome is DecisionOutcome.DISCLOSED for d in decisions)
    assert disclosed == 5  # alice: 2 recipients x 2 events; bob: 1
    assert counts == {
        "accepted events": (3, 3),
        "rejected records": (0, 0),
        "refused receipts": (0, 0),
        "disclosures": (disclosed, disclosed),
        "withholdings": (len(decisions) - disclosed, len(decisions) - disclosed),
        "confirmed deliveries": (1, 1),
        "dead letters": (0, 0),
        "consents given": (3, 3),
        "consents withdrawn": (0, 0),
        "identity links": (5, 5),
        "erased persons": (0, 0),
    }
    assert result.problems == []


def test_reconcile_fails_when_a_decision_is_deleted(hub: Hub) -> None:
    """A disclosure missing from the store fails the disclosures tally and names the event."""
    decisions = hub.store.decisions()
    gone = next(d for d in decisions if (d.event_id, d.recipient) == ("evt-2", "cra-individual"))
    result = reconcile(
        hub.store.tampered(decisions=[d for d in decisions if d != gone]), PSEUDONYMS
    )
    assert not result.ok
    assert [t.fact for t in result.tallies if not t.ok] == ["disclosures"]
    event = PSEUDONYMS.event(PUBLISHER, "evt-2")
    assert f"event {event}, cra-individual: disclosed only in the audit log" in result.problems
    assert any(
        p.startswith(f"event {event}: ") and "recipients announced" in p for p in result.problems
    )


def test_reconcile_fails_on_a_leaf_without_its_fact(hub: Hub) -> None:
    """An extra `delivered` leaf with no delivery behind it fails the deliveries tally."""
    store = hub.store.tampered()
    with store.transaction() as tx:
        log = AuditLog(tx.last_audit())
        log.append("delivered", {"notification": "n-forged", "recipient": "bc-msp"}, DAY3)
        log.write(tx)
    result = reconcile(store, PSEUDONYMS)
    assert not result.ok
    [wrong] = [t for t in result.tallies if not t.ok]
    assert (wrong.fact, wrong.leaves, wrong.facts) == ("confirmed deliveries", 2, 1)


def test_reconcile_fails_on_a_fact_without_its_leaf(hub: Hub) -> None:
    """An identity link added straight into the store, without its leaf, fails the links tally."""
    with hub.store.transaction() as tx:
        links = [link for person in hub.persons.values() for link in tx.link_records(person)]
    result = reconcile(
        hub.store.tampered(links=[*links, dataclasses.replace(links[0], local_id="X")]),
        PSEUDONYMS,
    )
    assert [(t.fact, t.leaves, t.facts) for t in result.tallies if not t.ok] == [
        ("identity links", 5, 6)
    ]


# -- inclusion proofs ------------------------------------------------------------------------


def test_every_signed_leaf_has_a_proof_that_verifies(hub: Hub) -> None:
    """prove_inclusion gives, for each covered leaf, a path that checks against the signed root."""
    checkpoint = hub.store.checkpoints()[-1]
    hashes = hub.store.leaf_hashes(checkpoint.size)
    for index in range(checkpoint.size):
        proof = prove_inclusion(hub.store, index).as_json()
        assert (proof["leaf_index"], proof["tree_size"]) == (index, checkpoint.size)
        assert (proof["root"], proof["checkpoint"]) == (checkpoint.root, checkpoint.seq)
        assert proof["leaf_hash"] == hashes[index].hex()
        merkle.verify_inclusion(
            index,
            proof["tree_size"],
            bytes.fromhex(proof["leaf_hash"]),
            [bytes.fromhex(h) for h in proof["path"]],
            bytes.fromhex(proof["root"]),
        )


def test_proof_does_not_verify_another_leaf(hub: Hub) -> None:
    """The path of leaf 3 fails for the hash of leaf 4 and at index 4."""
    proof = prove_inclusion(hub.store, 3)
    root = bytes.fromhex(proof.checkpoint.root)
    path = [bytes.fromhex(h) for h in proof.path]
    other = hub.store.leaf_hashes(5)[4]
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(3, proof.checkpoint.size, other, path, root)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(
            4, proof.checkpoint.size, bytes.fromhex(proof.leaf_hash), path, root
        )


def test_unsigned_leaf_has_no_proof_yet(hub: Hub) -> None:
    """A leaf after the newest checkpoint has no proof: the error says to sign one first."""
    total = len(list(hub.store.audit_records()))
    assert total > hub.signed
    with pytest.raises(NotFoundError, match=f"leaf {hub.signed} is not covered by checkpoint 1"):
        prove_inclusion(hub.store, hub.signed)
    with pytest.raises(NotFoundError, match="no such signed checkpoint"):
        prove_inclusion(hub.store, 0, checkpoint_seq=2)
    with pytest.raises(NotFoundError, match="tellonce audit checkpoint"):
        prove_inclusion(MemoryStore(), 0)


# -- disclosure reports ----------------------------------------------------------------------


def test_disclosure_rows_of_one_person(hub: Hub) -> None:
    """A person's rows cover only their events, one per recipient, with delivery and proof refs."""
    rows = disclosure_rows(hub.store, PSEUDONYMS, person_id=hub.persons["alice"])
    assert {r.event for r in rows} == {ref("evt-1"), ref("evt-3")}
    assert len(rows) == len({(r.event, r.recipient) for r in rows})
    assert rows == sorted(rows, key=lambda r: (r.decided_at, r.leaf_index))  # oldest first
    records = {r.index: r for r in hub.store.audit_records()}
    for row in rows:
        leaf = records[row.leaf_index]
        assert (leaf.kind, leaf.data["event"], leaf.data["recipient"]) == (
            row.outcome,
            row.event,
            row.recipient,
        )
        assert row.checkpoint_size == (hub.signed if row.leaf_index < hub.signed else None)
    by_key = {(EVENT_IDS[r.event], r.recipient): r for r in rows}
    assert by_key["evt-1", "cra-individual"].delivery == "delivered"
    assert by_key["evt-3", "cra-individual"].delivery == "pending"
    assert by_key["evt-1", "esdc-cpp"].delivery == "not_sent"
    assert by_key["evt-1", "esdc-cpp"].reason == "no_identity_link"


def test_disclosure_rows_filter_by_recipient_and_dates(hub: Hub) -> None:
    """Recipient and [since, until) narrow the rows; until is exclusive."""
    rows = disclosure_rows(hub.store, PSEUDONYMS, recipient="cra-individual")
    assert [(r.event, r.outcome) for r in rows] == [
        (ref("evt-1"), "disclosed"),
        (ref("evt-2"), "disclosed"),
        (ref("evt-3"), "disclosed"),
    ]
    later = disclosure_rows(hub.store, PSEUDONYMS, recipient="cra-individual", since=DAY3)
    assert [r.event for r in later] == [ref("evt-3")]
    earlier = disclosure_rows(hub.store, PSEUDONYMS, recipient="cra-individual", until=DAY3)
    assert [r.event for r in earlier] == [ref("evt-1"), ref("evt-2")]
    assert disclosure_rows(hub.store, PSEUDONYMS, since=DAY3 + timedelta(seconds=1)) == []


def test_correction_list_names_each_program_that_received_data(
    hub: Hub, directory: Directory
) -> None:
    """One correction-list line per program that got the person's data; withholdings left out."""
    rows = disclosure_rows(hub.store, PSEUDONYMS, person_id=hub.persons["alice"])
    listed = correction_list(rows, directory)
    assert [r.recipient for r in listed] == ["bc-icbc-licensing", "cra-individual"]
    jurisdictions = {j.id: j.name for j in directory.jurisdictions}
    for line in listed:
        program = directory.program(line.recipient)
        assert (line.recipient_name, line.jurisdiction) == (
            program.name,
            jurisdictions[program.jurisdiction],
        )
        assert line.disclosures == 2
        assert (line.first_disclosed_at, line.last_disclosed_at) == (DAY1, DAY3)
        assert line.event_types == ("AddressChanged",)
