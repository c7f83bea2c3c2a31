"""BatchProcessor on the memory store: what recipients are told, what is withheld or rejected."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from consent.model import ConsentRevision, ConsentState, Evidence, IdentityLink
from consent.rules import next_revision
from hub.adapters.avro import AvroCodec
from hub.adapters.memory import MemoryStore
from hub.audit.oversight import reconcile, verify_store
from hub.audit.pseudonyms import Pseudonyms
from hub.config.directory import Directory
from hub.errors import BrokerError, StoreError
from hub.model import Decision, DecisionOutcome, InboundMessage, OutboxMessage
from hub.processing.life_events import BatchProcessor, BatchSummary
from hub.testing.fakes import FaultyCodec
from hub.wire.signatures import NOTICE_CONTEXT, event_digest_of
from hub.wire.topics import LIFEEVENTS_TOPIC, REJECTED_TOPIC, notify_topic
from tests.unit.conftest import PSEUDONYMS

PUBLISHER = "bc-service-bc"
SUBJECT = "SBC-1001"  # the client's id at Service BC
PERSON = "person-7f3a"
ADDRESS_CHANGED = "ca.tellonce.lifeevents.AddressChanged"
POSTAL_CODE = "V5K 0A1"
GROUP = "tellonce-hub"

# recipient -> the client's id there; bc-msp has consent but no link
LINKS = {
    PUBLISHER: SUBJECT,
    "cra-individual": "CRA-000123",
    "bc-icbc-licensing": "DL-4455",
    "esdc-cpp": "CPP-9876",
    "vancouver-property-tax": "FOLIO-31",
}
GIVEN_TO = ("cra-individual", "bc-icbc-licensing", "esdc-cpp", "bc-msp")
WITHDRAWN_FROM = ("esdc-cpp",)


def address(postal_code: str = POSTAL_CODE, lines: tuple[str, ...] = ("3 Oak St",)) -> Any:
    return {
        "lines": list(lines),
        "municipality": "Vancouver",
        "province": "BC",
        "postal_code": postal_code,
    }


def address_changed(subject: str = SUBJECT, postal_code: str = POSTAL_CODE) -> dict[str, Any]:
    return {
        "subject_id": subject,
        "effective_date": date(2025, 3, 1),
        "new_address": address(postal_code),
        "mailing_address": address("V6B 1A1", ("PO Box 88",)),
    }


class Publisher:
    """Builds inbound records the way a publishing back office would."""

    def __init__(self, codec: AvroCodec, now: datetime) -> None:
        self.codec = codec
        self.now = now
        self.offsets: Counter[int] = Counter()

    def message(
        self,
        ce_id: str,
        *,
        record: dict[str, Any] | None = None,
        key: str = SUBJECT,
        partition: int = 0,
        drop: tuple[str, ...] = (),
        **headers: str,
    ) -> InboundMessage:
        values = {
            "ce_specversion": "1.0",
            "ce_id": ce_id,
            "ce_source": PUBLISHER,
            "ce_type": ADDRESS_CHANGED,
            "ce_time": (self.now - timedelta(minutes=3)).isoformat().replace("+00:00", "Z"),
            "ce_subject": key,
            "content-type": "application/avro",
        } | headers
        offset = self.offsets[partition]
        self.offsets[partition] += 1
        return InboundMessage(
            topic=LIFEEVENTS_TOPIC,
            partition=partition,
            offset=offset,
            key=key.encode(),
            value=self.codec.encode(ADDRESS_CHANGED, record or address_changed(key)),
            headers=[(k, v.encode()) for k, v in values.items() if k not in drop],
        )


@pytest.fixture
def publisher(codec: AvroCodec, now: datetime) -> Publisher:
    return Publisher(codec, now)


@pytest.fixture
def processor(
    directory: Directory, codec: AvroCodec, clock: Callable[[], datetime]
) -> BatchProcessor:
    return BatchProcessor(
        directory=directory, codec=codec, clock=clock, group_id=GROUP, pseudonyms=PSEUDONYMS
    )


@pytest.fixture
def linked_store(store: MemoryStore, now: datetime) -> MemoryStore:
    """One client, linked at some programs, who consented to some of them."""
    evidence = Evidence("counter", "staff-042", now - timedelta(days=30))
    with store.transaction() as tx:
        tx.add_person(PERSON, evidence.recorded_at)
        for program, local_id in LINKS.items():
            tx.add_link(IdentityLink(PERSON, program, local_id, evidence))
        history: dict[str, list[ConsentRevision]] = {}
        changes = [(r, ConsentState.GIVEN) for r in GIVEN_TO]
        changes += [(r, ConsentState.WITHDRAWN) for r in WITHDRAWN_FROM]
        for recipient, state in changes:
            revision = next_revision(
                history.get(recipient, []),
                person_id=PERSON,
                recipient=recipient,
                event_type="AddressChanged",
                state=state,
                evidence=evidence,
            )
            tx.add_consents([revision])
            history.setdefault(recipient, []).append(revision)
    return store


def run(store: MemoryStore, processor: BatchProcessor, *messages: InboundMessage) -> BatchSummary:
    with store.transaction() as tx:
        return processor.process(tx, messages)


def outbox(store: MemoryStore) -> list[OutboxMessage]:
    with store.transaction() as tx:
        return tx.pending_outbox(10_000)


def by_recipient(store: MemoryStore) -> dict[str, Decision]:
    return {d.recipient: d for d in store.decisions()}


def header(message: OutboxMessage, name: str) -> bytes | None:
    return dict(message.headers).get(name)


# -- disclosure ------------------------------------------------------------------------------


FIELDS = {
    "cra-individual": ("effective_date", "new_address", "mailing_address"),
    "bc-icbc-licensing": ("new_address",),
}


@pytest.mark.parametrize("recipient", FIELDS)
def test_consenting_linked_recipient_gets_only_its_fields(
    linked_store: MemoryStore,
    processor: BatchProcessor,
    publisher: Publisher,
    codec: AvroCodec,
    recipient: str,
) -> None:
    """A recipient told of a move gets its agreed fields under its own id, nothing else."""
    run(linked_store, processor, publisher.message("evt-1"))
    notices = [m for m in outbox(linked_store) if m.topic == notify_topic(recipient)]
    assert len(notices) == 1
    notice = notices[0]
    local_id = LINKS[recipient]
    assert notice.key == local_id.encode()
    assert header(notice, "ce_subject") == local_id.encode()
    decoded = codec.decode(notice.value)
    assert decoded.entry.name == "ca.tellonce.notify.AddressChangeNotice"
    record = decoded.record
    assert record["subject_id"] == local_id
    assert record["recipient"] == recipient
    assert (record["event_source"], record["event_id"]) == (PUBLISHER, "evt-1")
    assert tuple(record["disclosed_fields"]) == FIELDS[recipient]
    sent = address_changed()
    for name in ("effective_date", "new_address", "mailing_address"):
        assert record[name] == (sent[name] if name in FIELDS[recipient] else None)
    assert SUBJECT.encode() not in notice.value  # the publisher's id for the client stays home


def test_each_disclosure_keeps_the_keyed_digest_of_the_notice_its_receipt_must_name(
    linked_store: MemoryStore, processor: BatchProcessor, publisher: Publisher
) -> None:
    """A disclosed decision keeps the keyed hash of the digest a connector computes from the
    notice as it receives it (README, "Signed receipts"); a withheld one has none."""
    run(linked_store, processor, publisher.message("evt-1"))
    decisions = by_recipient(linked_store)
    notices = outbox(linked_store)
    assert notices
    for notice in notices:
        received = InboundMessage(notice.topic, 0, 0, notice.key, notice.value, notice.headers)
        digest = event_digest_of(received, NOTICE_CONTEXT).hex()
        [decision] = [d for r, d in decisions.items() if notify_topic(r) == notice.topic]
        assert decision.notice_digest == PSEUDONYMS.of(digest)
    withheld = [d for d in decisions.values() if d.outcome is DecisionOutcome.WITHHELD]
    assert withheld
    assert all(d.notice_digest is None for d in withheld)


def test_disclosure_is_recorded_with_the_consent_relied_on(
    linked_store: MemoryStore, processor: BatchProcessor, publisher: Publisher, codec: AvroCodec
) -> None:
    """The decision names the consent revision and the field names that the notice carries."""
    run(linked_store, processor, publisher.message("evt-1"))
    decision = by_recipient(linked_store)["bc-icbc-licensing"]
    assert decision.outcome is DecisionOutcome.DISCLOSED
    assert decision.reason == "consent_given"
    assert decision.fields == ("new_address",)
    notice = next(m for m in outbox(linked_store) if m.message_id == decision.notification_id)
    assert codec.decode(notice.value).record["consent_revision"] == decision.consent_revision


@pytest.mark.parametrize(
    ("recipient", "reason"),
    [
        ("esdc-cpp", "consent_withdrawn"),
        ("bc-msp", "no_identity_link"),
        ("vancouver-property-tax", "no_consent"),
    ],
)
def test_recipient_without_usable_consent_is_not_told(
    linked_store: MemoryStore,
    processor: BatchProcessor,
    publisher: Publisher,
    recipient: str,
    reason: str,
) -> None:
    """Withdrawn consent, no link at the recipient, or no consent: withheld, no notice."""
    run(linked_store, processor, publisher.message("evt-1"))
    decision = by_recipient(linked_store)[recipient]
    assert (decision.outcome, decision.reason) == (DecisionOutcome.WITHHELD, reason)
    assert decision.notification_id is None
    assert decision.fields == ()
    assert not [m for m in outbox(linked_store) if m.topic == notify_topic(recipient)]


def test_unlinked_subject_is_accepted_but_nobody_is_told(
    linked_store: MemoryStore, processor: BatchProcessor, publisher: Publisher
) -> None:
    """An event about a client the hub cannot identify is recorded, and withheld from all."""
    summary = run(linked_store, processor, publisher.message("evt-1", key="SBC-UNKNOWN"))
    assert (summary.accepted, summary.disclosed) == (1, 0)
    assert linked_store.events()[0].person_id is None
    assert {d.reason for d in linked_store.decisions()} == {"subject_not_linked"}
    assert outbox(linked_store) == []


def test_one_decision_per_recipient_per_event(
    linked_store: MemoryStore,
    processor: BatchProcessor,
    publisher: Publisher,
    directory: Directory,
) -> None:
    """Every subscriber except the publisher gets exactly one decision per accepted event."""
    summary = run(linked_store, processor, publisher.message("evt-1"), publisher.message("evt-2"))
    expected = {p.id for p in directory.recipients_of("AddressChanged", origin=PUBLISHER)}
    counts = Counter((d.event_id, d.recipient) for d in linked_store.decisions())
    assert set(counts) == {(e, r) for e in ("evt-1", "evt-2") for r in expected}
    assert set(counts.values()) == {1}
    assert summary.disclosed + summary.withheld == len(counts)
    assert summary.disclosed == 2 * len(FIELDS)


# -- duplicates ------------------------------------------------------------------------------


def test_duplicate_in_the_same_batch_is_ignored(
    linked_store: MemoryStore, processor: BatchProcessor, publisher: Publisher
) -> None:
    """A redelivered event (same ce_source and ce_id) in one batch is counted, not re-sent."""
    summary = run(linked_store, processor, publisher.message("evt-1"), publisher.message("evt-1"))
    assert (summary.accepted, summary.duplicates) == (1, 1)
    assert len(linked_store.events()) == 1
    assert len(outbox(linked_store)) == len(FIELDS)
    assert summary.next_offsets == {(LIFEEVENTS_TOPIC, 0): 2}


def test_duplicate_in_a_later_batch_is_ignored(
    linked_store: MemoryStore, processor: BatchProcessor, publisher: Publisher
) -> None:
    """An event seen in an earlier batch adds no decision and no outbox row."""
    run(linked_store, processor, publisher.message("evt-1"))
    decisions, rows = len(linked_store.decisions()), len(outbox(linked_store))
    summary = run(linked_store, processor, publisher.message("evt-1"))
    assert (summary.accepted, summary.duplicates) == (0, 1)
    assert len(linked_store.decisions()) == decisions
    assert len(outbox(linked_store)) == rows
    with linked_store.transaction() as tx:
        assert tx.offsets(GROUP, LIFEEVENTS_TOPIC) == {0: 2}


# -- rejections ------------------------------------------------------------------------------


Headers = Callable[[Publisher], dict[str, Any]]

BAD: dict[str, tuple[Headers, str]] = {
    "missing-header": (lambda p: {"drop": ("ce_id",)}, "missing_header"),
    "unknown-source": (lambda p: {"ce_source": "bc-nowhere"}, "unknown_source"),
    "wrong-type": (lambda p: {"ce_type": "ca.tellonce.lifeevents.NameChanged"}, "type_mismatch"),
    "future-time": (
        lambda p: {"ce_time": (p.now + timedelta(hours=1)).isoformat()},
        "out_of_range",
    ),
    "year-one-east-of-utc": (lambda p: {"ce_time": "0001-01-01T00:00:00+01:00"}, "out_of_range"),
    "before-1970": (lambda p: {"ce_time": "1969-12-31T23:59:59Z"}, "out_of_range"),
    "time-without-zone": (lambda p: {"ce_time": "2025-03-14T15:00:00"}, "bad_header"),
    "nul-in-a-header": (lambda p: {"ce_type": "ca.tellonce\x00"}, "bad_header"),
    "newline-in-ce-subject": (lambda p: {"ce_subject": "SBC-1001\n"}, "bad_header"),
    # how the Kafka adapter hands over a header name that is not UTF-8
    "header-name-not-utf8": (lambda p: {"ce_\ufffd\ufffd": "1"}, "bad_header"),
    "postal-code-of-ontario": (
        lambda p: {"record": address_changed(postal_code="K1A 0B1")},
        "invalid_event",
    ),
    "wrong-content-type": (lambda p: {"content-type": "application/json"}, "bad_header"),
    "key-is-someone-else": (lambda p: {"ce_subject": "SBC-2002"}, "subject_mismatch"),
}


@pytest.mark.parametrize(("bad", "reason"), BAD.values(), ids=BAD.keys())
def test_bad_event_is_rejected_and_good_ones_still_flow(
    linked_store: MemoryStore,
    processor: BatchProcessor,
    publisher: Publisher,
    codec: AvroCodec,
    bad: Headers,
    reason: str,
) -> None:
    """A bad record becomes a rejection on the rejected topic; the rest of the batch goes on."""
    summary = run(
        linked_store,
        processor,
        publisher.message("evt-1"),
        publisher.message("evt-bad", **bad(publisher)),
        publisher.message("evt-3"),
    )
    assert (summary.accepted, summary.rejected) == (2, 1)
    [stored] = linked_store.rejections()
    assert (stored.reason, stored.offset) == (reason, 1)
    [published] = [m for m in outbox(linked_store) if m.topic == REJECTED_TOPIC]
    decoded = codec.decode(published.value)
    assert decoded.entry.name == "ca.tellonce.lifeevents.Rejection"
    assert decoded.record["reason"] == reason
    assert (decoded.record["topic"], decoded.record["offset"]) == (LIFEEVENTS_TOPIC, 1)
    for personal in (POSTAL_CODE, "K1A 0B1", SUBJECT, "3 Oak St", "PO Box 88"):
        assert personal.encode() not in published.value
        assert personal not in stored.detail
    told = {d.event_id for d in linked_store.decisions() if d.outcome is DecisionOutcome.DISCLOSED}
    assert told == {"evt-1", "evt-3"}


def test_undecodable_value_is_rejected(
    linked_store: MemoryStore, processor: BatchProcessor, publisher: Publisher
) -> None:
    """A value that is not framed Avro is rejected with the decoder's reason."""
    good = publisher.message("evt-1")
    bad = InboundMessage(good.topic, 0, 5, good.key, b"not avro", good.headers)
    summary = run(linked_store, processor, bad)
    assert summary.rejected == 1
    assert linked_store.rejections()[0].reason == "bad_framing"


# -- offsets and audit -----------------------------------------------------------------------


def test_offsets_saved_are_the_next_to_read_per_partition(
    linked_store: MemoryStore, processor: BatchProcessor, publisher: Publisher
) -> None:
    """After a batch the stored offset of each partition is its last offset + 1."""
    messages = [
        publisher.message("evt-1", partition=0),
        publisher.message("evt-2", partition=1),
        publisher.message("evt-3", partition=0),
        publisher.message("evt-4", partition=0, drop=("ce_type",)),  # rejected still counts
        publisher.message("evt-1", partition=1),  # duplicate still counts
    ]
    summary = run(linked_store, processor, *messages)
    with linked_store.transaction() as tx:
        assert tx.offsets(GROUP, LIFEEVENTS_TOPIC) == {0: 3, 1: 2}
    assert summary.next_offsets == {(LIFEEVENTS_TOPIC, 0): 3, (LIFEEVENTS_TOPIC, 1): 2}


def test_audit_log_verifies_and_reconciles_after_processing(
    linked_store: MemoryStore, processor: BatchProcessor, publisher: Publisher
) -> None:
    """Across batches the audit log verifies and holds one leaf per fact."""
    first = run(linked_store, processor, publisher.message("evt-1"))
    second = run(
        linked_store,
        processor,
        publisher.message("evt-2"),
        publisher.message("evt-1"),
        publisher.message("evt-x", ce_source="bc-nowhere"),
    )
    records = list(linked_store.audit_records())
    assert [r.index for r in records] == list(range(len(records)))
    verdict = verify_store(linked_store, lambda message, signature: False, None)
    assert verdict.ok, verdict.problem
    kinds = Counter(r.kind for r in records)
    assert kinds == {
        "accepted": first.accepted + second.accepted,
        "rejected": first.rejected + second.rejected,
        "disclosed": first.disclosed + second.disclosed,
        "withheld": first.withheld + second.withheld,
    }
    for record in records:
        assert POSTAL_CODE not in str(record.data)
        assert SUBJECT not in str(record.data)


def test_leaves_and_rejections_keep_keyed_hashes_of_publisher_ids(
    linked_store: MemoryStore, processor: BatchProcessor, publisher: Publisher, codec: AvroCodec
) -> None:
    """ce_id (and a ce_source that is no program) are kept as keyed hashes in leaves and
    rejection rows; the rejected topic gives the publisher its ids back; reconcile passes."""
    good, refused, stranger = "evt-Jane-Doe-1", "evt-Jane-Doe-2", "src-Jane-Doe"
    run(
        linked_store,
        processor,
        publisher.message(good),
        publisher.message(refused, ce_subject="SBC-2002"),
        publisher.message("evt-3", ce_source=stranger),
    )
    leaves = [json.dumps(r.data) for r in linked_store.audit_records()]
    rows = linked_store.rejections()
    assert not [s for s in leaves + [repr(r) for r in rows] if "Jane" in s]
    by_offset = {r.offset: r for r in rows}
    assert (by_offset[1].source, by_offset[1].event_id) == (PUBLISHER, PSEUDONYMS.of(refused))
    assert (by_offset[2].source, by_offset[2].event_id) == (
        PSEUDONYMS.of(stranger),
        PSEUDONYMS.of("evt-3"),
    )
    accepted = [r.data for r in linked_store.audit_records() if r.kind == "accepted"]
    assert [a["event"] for a in accepted] == [PSEUDONYMS.event(PUBLISHER, good)]
    wire = sorted(
        (codec.decode(m.value).record["ce_source"], codec.decode(m.value).record["ce_id"])
        for m in outbox(linked_store)
        if m.topic == REJECTED_TOPIC
    )
    assert wire == [(PUBLISHER, refused), (stranger, "evt-3")]
    # Per-event matching (the fixture's links and consents were stored without leaves).
    assert reconcile(linked_store, PSEUDONYMS).problems == []
    assert reconcile(linked_store, Pseudonyms(bytes(32))).problems  # bound to the hub's key


def test_failed_batch_leaves_no_trace(
    linked_store: MemoryStore, processor: BatchProcessor, publisher: Publisher
) -> None:
    """If the batch transaction fails, no decision, notice, audit leaf or offset survives it."""

    def process_then_fail() -> None:
        with linked_store.transaction() as tx:
            processor.process(tx, [publisher.message("evt-1")])
            raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="went away"):
        process_then_fail()
    assert linked_store.decisions() == []
    assert outbox(linked_store) == []
    assert list(linked_store.audit_records()) == []
    with linked_store.transaction() as tx:
        assert tx.offsets(GROUP, LIFEEVENTS_TOPIC) == {}


def test_death_report_reaches_each_recipient_with_its_own_fields(
    store: MemoryStore, processor: BatchProcessor, codec: AvroCodec, now: datetime
) -> None:
    """A death reported by vital statistics reaches CPP with all four fields, ICBC with one."""
    evidence = Evidence("counter", "staff-042", now - timedelta(days=400))
    local = {"bc-vital-statistics": "REG-2025-1", "esdc-cpp": "CPP-1", "bc-icbc-licensing": "DL-1"}
    with store.transaction() as tx:
        tx.add_person(PERSON, evidence.recorded_at)
        for program, local_id in local.items():
            tx.add_link(IdentityLink(PERSON, program, local_id, evidence))
        for recipient in ("esdc-cpp", "bc-icbc-licensing"):
            tx.add_consents(
                [
                    next_revision(
                        [],
                        person_id=PERSON,
                        recipient=recipient,
                        event_type="DeathReported",
                        state=ConsentState.GIVEN,
                        evidence=evidence,
                    )
                ]
            )
    reported = {
        "subject_id": "REG-2025-1",
        "date_of_death": now.date() - timedelta(days=2),
        "province_of_death": "BC",
        "death_registration_number": "2025-59-000123",
        "informant_relationship": "SPOUSE",
    }
    message = InboundMessage(
        topic=LIFEEVENTS_TOPIC,
        partition=0,
        offset=0,
        key=b"REG-2025-1",
        value=codec.encode("ca.tellonce.lifeevents.DeathReported", reported),
        headers=[
            ("ce_specversion", b"1.0"),
            ("ce_id", b"death-1"),
            ("ce_source", b"bc-vital-statistics"),
            ("ce_type", b"ca.tellonce.lifeevents.DeathReported"),
            ("ce_time", now.isoformat().encode()),
            ("content-type", b"application/avro"),
        ],
    )
    assert run(store, processor, message).disclosed == 2
    notices = {m.topic: codec.decode(m.value).record for m in outbox(store)}
    cpp = notices[notify_topic("esdc-cpp")]
    assert cpp["subject_id"] == "CPP-1"
    for name, value in reported.items():
        if name != "subject_id":
            assert cpp[name] == value
    icbc = notices[notify_topic("bc-icbc-licensing")]
    assert icbc["date_of_death"] == reported["date_of_death"]
    assert icbc["province_of_death"] is None
    assert icbc["death_registration_number"] is None
    assert icbc["informant_relationship"] is None


def test_logs_carry_ids_never_personal_values(
    linked_store: MemoryStore, processor: BatchProcessor, publisher: Publisher
) -> None:
    """Neither accepted, duplicate nor rejected events put addresses or client ids in logs."""
    with capture_logs() as logs:
        run(
            linked_store,
            processor,
            publisher.message("evt-1"),
            publisher.message("evt-1"),
            publisher.message("evt-2", record=address_changed(postal_code="K1A 0B1")),
        )
    assert {entry["event"] for entry in logs} >= {"event rejected", "duplicate event ignored"}
    for entry in logs:
        for personal in (POSTAL_CODE, "K1A 0B1", SUBJECT, "3 Oak St", *LINKS.values()):
            assert personal not in str(entry)


# -- poison records ----------------------------------------------------------------------------


def faulty_processor(
    directory: Directory, codec: AvroCodec, now: datetime, error: Exception
) -> BatchProcessor:
    return BatchProcessor(
        directory=directory,
        codec=FaultyCodec(codec, error, poison_event="poison-notice"),
        clock=lambda: now,
        group_id=GROUP,
        pseudonyms=PSEUDONYMS,
    )


def poisoned(message: InboundMessage) -> InboundMessage:
    return InboundMessage(
        message.topic,
        message.partition,
        message.offset,
        message.key,
        (message.value or b"") + b"poison",
        message.headers,
    )


@pytest.mark.parametrize(
    "error",
    [KeyError("subject_id"), OverflowError("signed integer is greater than maximum"), TypeError()],
    ids=["KeyError", "OverflowError", "TypeError"],
)
def test_any_exception_a_record_provokes_rejects_that_record_only(
    linked_store: MemoryStore,
    directory: Directory,
    codec: AvroCodec,
    now: datetime,
    publisher: Publisher,
    error: Exception,
) -> None:
    """Not only RejectedEvent: whatever reading one record raises rejects it as unprocessable,
    naming the error class and not its text, and the events around it are accepted."""
    processor = faulty_processor(directory, codec, now, error)
    summary = run(
        linked_store,
        processor,
        publisher.message("evt-1"),
        poisoned(publisher.message("evt-2")),
        publisher.message("evt-3"),
    )
    assert (summary.accepted, summary.rejected) == (2, 1)
    [stored] = linked_store.rejections()
    assert (stored.reason, stored.offset) == ("unprocessable", 1)
    assert type(error).__name__ in stored.detail
    assert "maximum" not in stored.detail
    assert "subject_id" not in stored.detail
    with linked_store.transaction() as tx:
        assert tx.offsets(GROUP, LIFEEVENTS_TOPIC) == {0: 3}


def test_a_notice_that_cannot_be_built_rejects_its_event_before_anything_is_written(
    linked_store: MemoryStore,
    directory: Directory,
    codec: AvroCodec,
    now: datetime,
    publisher: Publisher,
) -> None:
    """An event whose notice raises while it is built is rejected whole: no accepted row, no
    decision, no notice, and the audit log still reconciles."""
    processor = faulty_processor(directory, codec, now, KeyError())
    summary = run(
        linked_store, processor, publisher.message("poison-notice"), publisher.message("evt-2")
    )
    assert (summary.accepted, summary.rejected) == (1, 1)
    assert {e.event_id for e in linked_store.events()} == {"evt-2"}
    assert {d.event_id for d in linked_store.decisions()} == {"evt-2"}
    assert linked_store.rejections()[0].reason == "unprocessable"
    result = reconcile(linked_store, PSEUDONYMS)  # the fixture's links and consents have no leaves
    decided = ("accepted events", "rejected records", "disclosures", "withholdings")
    assert all(t.ok for t in result.tallies if t.fact in decided)
    assert result.problems == []


@pytest.mark.parametrize(
    "error",
    [StoreError("database went away"), BrokerError("schema registry unreachable")],
    ids=["store", "broker"],
)
def test_infrastructure_failures_fail_the_batch_instead_of_rejecting(
    linked_store: MemoryStore,
    directory: Directory,
    codec: AvroCodec,
    now: datetime,
    publisher: Publisher,
    error: Exception,
) -> None:
    """A retriable error (database, broker) is not the record's fault: the batch fails, nothing
    is rejected, and the worker retries it."""
    processor = faulty_processor(directory, codec, now, error)
    with pytest.raises(type(error)):
        run(linked_store, processor, publisher.message("evt-1"), poisoned(publisher.message("x")))
    assert linked_store.rejections() == []
    assert linked_store.events() == []


def test_ce_time_window_follows_the_clock_skew_setting(
    linked_store: MemoryStore, directory: Directory, codec: AvroCodec, now: datetime
) -> None:
    """With no skew allowed, an event stamped one second ahead of the hub is out_of_range."""
    strict = BatchProcessor(
        directory=directory,
        codec=codec,
        clock=lambda: now,
        group_id=GROUP,
        pseudonyms=PSEUDONYMS,
        clock_skew=timedelta(0),
    )
    publisher = Publisher(codec, now)
    ahead = (now + timedelta(seconds=1)).isoformat()
    summary = run(linked_store, strict, publisher.message("evt-1", ce_time=ahead))
    assert summary.rejected == 1
    [stored] = linked_store.rejections()
    assert stored.reason == "out_of_range"
    assert stored.detail.startswith("ce_time: must not be more than 0 s ahead")


def test_a_repeated_cloudevents_header_is_rejected(
    linked_store: MemoryStore, processor: BatchProcessor, publisher: Publisher
) -> None:
    """A record carrying ce_source twice (which copy counts?) is rejected as bad_header."""
    good = publisher.message("evt-1")
    twice = InboundMessage(
        good.topic,
        0,
        7,
        good.key,
        good.value,
        [*good.headers, ("ce_source", b"bc-vital-statistics")],
    )
    assert run(linked_store, processor, twice).rejected == 1
    [stored] = linked_store.rejections()
    assert (stored.reason, stored.detail) == (
        "bad_header",
        "header ce_source appears more than once; send each attribute once",
    )
