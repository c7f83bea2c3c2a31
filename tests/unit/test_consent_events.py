"""ConsentIntake on the memory store: portal consent changes, applied or rejected in order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from consent.model import ConsentState, Evidence
from consent.rules import decide_disclosure, verify_history
from hub.adapters.avro import AvroCodec
from hub.adapters.memory import MemoryStore
from hub.config.directory import Directory
from hub.consents.notices import load_notices
from hub.consents.service import ConsentService
from hub.errors import StoreError
from hub.model import InboundMessage
from hub.ports import Codec
from hub.privacy.erasure import ErasureService
from hub.processing.consent_events import (
    CONSENT_SCHEMA,
    ConsentIntake,
    ConsentSummary,
    consent_message,
)
from hub.testing.fakes import FaultyCodec
from hub.wire.topics import CONSENT_TOPIC, REJECTED_TOPIC
from tests.unit.conftest import PSEUDONYMS

PORTAL = "canada-ca-portal"
SUBJECT = "GCKEY-77A1"  # the client's id at the portal
RECIPIENT = "cra-individual"
GROUP = "tellonce-hub"
NOTICE = load_notices().latest()


class Portal:
    """Builds consent-change records the way a client-facing portal publishes them."""

    def __init__(self, codec: AvroCodec, now: datetime) -> None:
        self.codec = codec
        self.now = now
        self.offsets: Counter[int] = Counter()

    def record(self, state: str = "GIVEN", **fields: Any) -> dict[str, Any]:
        return {
            "subject_id": SUBJECT,
            "recipient": RECIPIENT,
            "event_types": ["AddressChanged"],
            "state": state,
            "purpose": "tell-us-once: update the recipient's records after a life event",
            "legal_basis": "consent of the individual (Privacy Act, s. 8(1))",
            "notice_version": NOTICE.version,
            "notice_hash": NOTICE.sha256,
            "channel": "online",
            "actor": "client",
            "recorded_at": self.now - timedelta(minutes=10),
            "expires_at": None,
        } | fields

    def message(
        self,
        ce_id: str,
        record: dict[str, Any] | None = None,
        *,
        key: str = SUBJECT,
        source: str = PORTAL,
        value: bytes | None = None,
    ) -> InboundMessage:
        headers = {
            "ce_specversion": "1.0",
            "ce_id": ce_id,
            "ce_source": source,
            "ce_type": CONSENT_SCHEMA,
            "ce_time": (self.now - timedelta(minutes=1)).isoformat(),
            "ce_subject": key,
            "content-type": "application/avro",
        }
        offset = self.offsets[0]
        self.offsets[0] += 1
        return InboundMessage(
            topic=CONSENT_TOPIC,
            partition=0,
            offset=offset,
            key=key.encode(),
            value=value or self.codec.encode(CONSENT_SCHEMA, record or self.record()),
            headers=[(k, v.encode()) for k, v in headers.items()],
        )


@pytest.fixture
def portal(codec: AvroCodec, now: datetime) -> Portal:
    return Portal(codec, now)


@pytest.fixture
def service(
    store: MemoryStore, directory: Directory, clock: Callable[[], datetime]
) -> ConsentService:
    return ConsentService(store, directory, clock=clock)


@pytest.fixture
def intake_with(
    store: MemoryStore,
    directory: Directory,
    clock: Callable[[], datetime],
    service: ConsentService,
) -> Callable[[Codec], ConsentIntake]:
    """Builds the intake around a codec of the test's choosing (one that fails, say)."""

    def build(codec: Codec) -> ConsentIntake:
        return ConsentIntake(
            directory=directory,
            codec=codec,
            clock=clock,
            group_id=GROUP,
            service=service,
            erasure=ErasureService(
                store, resolve=service.resolve, pseudonyms=PSEUDONYMS, clock=clock
            ),
            pseudonyms=PSEUDONYMS,
        )

    return build


@pytest.fixture
def intake(codec: AvroCodec, intake_with: Callable[[Codec], ConsentIntake]) -> ConsentIntake:
    return intake_with(codec)


@pytest.fixture
def person(service: ConsentService, now: datetime) -> str:
    evidence = Evidence("online", "client", now - timedelta(days=1))
    person_id = service.link(PORTAL, SUBJECT, evidence)
    service.link(RECIPIENT, "CRA-000123", evidence, to=person_id)
    return person_id


def run(store: MemoryStore, intake: ConsentIntake, *messages: InboundMessage) -> ConsentSummary:
    with store.transaction() as tx:
        return intake.process(tx, messages)


def history(service: ConsentService, person: str) -> list[Any]:
    return service.show(person).history.get((RECIPIENT, "AddressChanged"), [])


def kinds(store: MemoryStore) -> list[str]:
    return [r.kind for r in store.audit_records() if r.kind != "identity_linked"]


def test_grant_then_withdraw_in_one_batch_ends_withdrawn(
    store: MemoryStore,
    intake: ConsentIntake,
    service: ConsentService,
    portal: Portal,
    person: str,
    now: datetime,
) -> None:
    """Changes apply in offset order: grant then withdrawal in one batch leaves it withdrawn."""
    granted_at = now - timedelta(minutes=10)
    summary = run(
        store,
        intake,
        portal.message("c-1", portal.record("GIVEN", recorded_at=granted_at)),
        portal.message("c-2", portal.record("WITHDRAWN", recorded_at=granted_at + timedelta(1e-3))),
    )
    assert (summary.applied, summary.rejected, summary.duplicates) == (2, 0, 0)
    revisions = history(service, person)
    assert [r.state for r in revisions] == [ConsentState.GIVEN, ConsentState.WITHDRAWN]
    assert verify_history(revisions) is None
    decision = decide_disclosure(revisions, recipient_linked=True, now=now)
    assert decision.reason == "consent_withdrawn"
    assert revisions[0].evidence.notice_version == NOTICE.version
    assert kinds(store) == ["consent_given", "consent_withdrawn"]
    with store.transaction() as tx:
        assert tx.offsets(GROUP, CONSENT_TOPIC) == {0: 2}


def test_grant_carries_terms_and_expiry(
    store: MemoryStore,
    intake: ConsentIntake,
    service: ConsentService,
    portal: Portal,
    person: str,
    now: datetime,
) -> None:
    """Purpose, legal basis, channel and expiry of the event become the revision's terms."""
    expires = now + timedelta(days=365)
    run(store, intake, portal.message("c-1", portal.record(expires_at=expires, channel="phone")))
    (revision,) = history(service, person)
    assert revision.terms.expires_at == expires.replace(microsecond=0)
    assert revision.evidence.channel == "phone"
    assert revision.evidence.actor == "client"


def test_unknown_person_is_rejected_like_a_bad_life_event(
    store: MemoryStore,
    intake: ConsentIntake,
    codec: AvroCodec,
    portal: Portal,
    person: str,
) -> None:
    """An unlinked portal id gives a rejection row, a rejected-topic message and a leaf."""
    stranger = "GCKEY-NOBODY"
    with capture_logs() as logs:
        summary = run(
            store,
            intake,
            portal.message("c-1", portal.record(subject_id=stranger), key=stranger),
            portal.message("c-2"),
        )
    assert (summary.applied, summary.rejected) == (1, 1)
    [rejection] = store.rejections()
    assert (rejection.reason, rejection.topic, rejection.offset) == (
        "unknown_person",
        CONSENT_TOPIC,
        0,
    )
    with store.transaction() as tx:
        [published] = [m for m in tx.pending_outbox(100) if m.topic == REJECTED_TOPIC]
    decoded = codec.decode(published.value)
    assert (decoded.record["reason"], decoded.record["ce_id"]) == ("unknown_person", "c-1")
    assert stranger.encode() not in published.value
    assert kinds(store) == ["rejected", "consent_given"]
    assert stranger not in repr(logs)
    assert stranger not in rejection.detail


def test_duplicate_event_is_applied_once(
    store: MemoryStore,
    intake: ConsentIntake,
    service: ConsentService,
    portal: Portal,
    person: str,
) -> None:
    """The same (ce_source, ce_id) again, in the batch or a later one, changes nothing."""
    first = run(store, intake, portal.message("c-1"), portal.message("c-1"))
    again = run(store, intake, portal.message("c-1"))
    assert (first.applied, first.duplicates, again.applied, again.duplicates) == (1, 1, 0, 1)
    assert len(history(service, person)) == 1
    assert kinds(store) == ["consent_given"]
    with store.transaction() as tx:
        assert tx.offsets(GROUP, CONSENT_TOPIC) == {0: 3}


def test_same_event_id_from_another_portal_is_not_a_duplicate(
    store: MemoryStore, intake: ConsentIntake, portal: Portal, person: str
) -> None:
    """The key recorded is ce_source + ce_id: the same id from another source is not known."""
    run(store, intake, portal.message("c-1"))
    with store.transaction() as tx:
        known = tx.known_consent_events([(PORTAL, "c-1"), ("other-portal", "c-1")])
    assert known == {(PORTAL, "c-1")}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"notice_hash": "0" * 64}, "notice_mismatch"),
        ({"notice_version": "2019-01"}, "unknown_notice"),
        ({"notice_version": None, "notice_hash": None}, "missing_notice"),
        ({"recipient": "cra-individua"}, "unknown_recipient"),
        ({"event_types": ["NameChanged"]}, "not_subscribed"),
        ({"state": "WITHDRAWN"}, "consent_conflict"),
        ({"actor": "x" * 65}, "invalid_event"),
        ({"event_types": []}, "invalid_event"),
        ({"expires_at": datetime(2150, 1, 1, tzinfo=UTC)}, "out_of_range"),
        ({"recorded_at": datetime(1899, 12, 31, tzinfo=UTC)}, "out_of_range"),
        ({"channel": "online\x00"}, "invalid_text"),
    ],
    ids=[
        "bad-notice-hash",
        "unknown-notice",
        "grant-without-notice",
        "unknown-recipient",
        "not-subscribed",
        "withdraw-nothing",
        "long-actor",
        "no-event-types",
        "expiry-after-2100",
        "recorded-before-1900",
        "nul-in-channel",
    ],
)
def test_bad_consent_event_is_rejected_and_the_batch_goes_on(
    store: MemoryStore,
    intake: ConsentIntake,
    service: ConsentService,
    portal: Portal,
    person: str,
    fields: dict[str, Any],
    reason: str,
) -> None:
    """Each broken rule gives its own reason code; the next good change still applies."""
    summary = run(
        store, intake, portal.message("c-bad", portal.record(**fields)), portal.message("c-ok")
    )
    assert (summary.applied, summary.rejected) == (1, 1)
    assert [r.reason for r in store.rejections()] == [reason]
    assert [r.state for r in history(service, person)] == [ConsentState.GIVEN]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"event_types": ["Jane Doe 1984"]}, "not_subscribed"),
        ({"notice_version": "Jane Doe 1984"}, "unknown_notice"),
        ({"notice_hash": "Jane Doe 1984"}, "notice_mismatch"),
    ],
    ids=["event-type", "notice-version", "notice-hash"],
)
def test_a_rejection_names_the_field_never_the_value_sent(
    store: MemoryStore,
    intake: ConsentIntake,
    portal: Portal,
    person: str,
    fields: dict[str, Any],
    reason: str,
) -> None:
    """A refused value of the portal's (free text) is in neither the detail nor the logs."""
    with capture_logs() as logs:
        run(store, intake, portal.message("c-bad", portal.record(**fields)))
    (rejection,) = store.rejections()
    assert rejection.reason == reason
    (field,) = fields
    assert rejection.detail.startswith(field)
    assert "Jane" not in rejection.detail
    assert not [entry for entry in logs if "Jane" in repr(entry)]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [(lambda v: v[:-3], "truncated"), (lambda v: v + b"\x00", "trailing_bytes")],
    ids=["cut-short", "trailing-bytes"],
)
def test_malformed_avro_is_rejected(
    store: MemoryStore,
    intake: ConsentIntake,
    portal: Portal,
    codec: AvroCodec,
    person: str,
    mangle: Callable[[bytes], bytes],
    reason: str,
) -> None:
    """A value that is not exactly one ConsentChanged body is rejected with the decoder's reason."""
    value = mangle(codec.encode(CONSENT_SCHEMA, portal.record()))
    summary = run(store, intake, portal.message("c-1", value=value))
    assert summary.rejected == 1
    assert store.rejections()[0].reason == reason


def test_only_consent_portals_may_publish_consent(
    store: MemoryStore,
    intake: ConsentIntake,
    service: ConsentService,
    portal: Portal,
    person: str,
    now: datetime,
) -> None:
    """A directory program not marked consent_portal is refused as not_authorized."""
    service.link("bc-service-bc", "SBC-5", Evidence("counter", "staff-1", now), to=person)
    record = portal.record(subject_id="SBC-5")
    summary = run(store, intake, portal.message("c-1", record, key="SBC-5", source="bc-service-bc"))
    assert summary.rejected == 1
    assert store.rejections()[0].reason == "not_authorized"


def test_life_event_schema_on_the_consent_topic_is_rejected(
    store: MemoryStore, intake: ConsentIntake, portal: Portal, codec: AvroCodec, person: str
) -> None:
    """Only ConsentChanged belongs on tellonce.consent.v1."""
    value = codec.encode(
        "ca.tellonce.lifeevents.Rejection",
        {
            "reason": "x",
            "detail": "y",
            "topic": "t",
            "partition": 0,
            "offset": 0,
            "ce_source": None,
            "ce_id": None,
            "rejected_at": datetime(2025, 1, 1).astimezone(),
        },
    )
    summary = run(store, intake, portal.message("c-1", value=value))
    assert summary.rejected == 1
    assert store.rejections()[0].reason == "unexpected_schema"


def test_change_older_than_the_latest_is_rejected(
    store: MemoryStore,
    intake: ConsentIntake,
    service: ConsentService,
    portal: Portal,
    person: str,
    now: datetime,
) -> None:
    """A portal grant made before a withdrawal already recorded cannot undo that withdrawal."""
    run(store, intake, portal.message("c-1", portal.record(recorded_at=now - timedelta(hours=2))))
    service.record(
        person,
        RECIPIENT,
        ["AddressChanged"],
        ConsentState.WITHDRAWN,
        Evidence("counter", "staff-9", now - timedelta(hours=1)),
    )
    stale = portal.record(recorded_at=now - timedelta(minutes=90))
    summary = run(store, intake, portal.message("c-2", stale))
    assert summary.rejected == 1
    assert store.rejections()[0].reason == "consent_conflict"
    assert history(service, person)[-1].state is ConsentState.WITHDRAWN


def test_consent_message_is_what_the_intake_reads(
    store: MemoryStore,
    intake: ConsentIntake,
    service: ConsentService,
    codec: AvroCodec,
    portal: Portal,
    person: str,
    now: datetime,
) -> None:
    """consent_message builds key, value and CloudEvents headers the intake accepts."""
    key, value, headers, ce_id = consent_message(
        codec, source=PORTAL, record=portal.record(), at=now - timedelta(minutes=1)
    )
    message = InboundMessage(CONSENT_TOPIC, 0, 0, key, value, headers)
    assert run(store, intake, message).applied == 1
    assert key == SUBJECT.encode()
    assert dict(headers)["ce_id"] == ce_id.encode()
    assert len(history(service, person)) == 1


def test_any_exception_a_consent_event_provokes_rejects_it_only(
    store: MemoryStore,
    codec: AvroCodec,
    intake_with: Callable[[Codec], ConsentIntake],
    service: ConsentService,
    portal: Portal,
    person: str,
) -> None:
    """An OverflowError (not a RejectedEvent) while reading one change rejects that change as
    unprocessable; the next change still applies."""
    intake = intake_with(FaultyCodec(codec, OverflowError("date value out of range")))
    value = codec.encode(CONSENT_SCHEMA, portal.record()) + b"poison"
    summary = run(store, intake, portal.message("c-bad", value=value), portal.message("c-ok"))
    assert (summary.applied, summary.rejected) == (1, 1)
    [rejection] = store.rejections()
    assert (rejection.reason, rejection.offset) == ("unprocessable", 0)
    assert "OverflowError" in rejection.detail
    assert [r.state for r in history(service, person)] == [ConsentState.GIVEN]


def test_a_store_failure_while_reading_fails_the_batch(
    store: MemoryStore,
    codec: AvroCodec,
    intake_with: Callable[[Codec], ConsentIntake],
    service: ConsentService,
    portal: Portal,
    person: str,
) -> None:
    """A retriable StoreError is not the record's fault: the batch fails, nothing is rejected."""
    intake = intake_with(FaultyCodec(codec, StoreError("database went away")))
    value = codec.encode(CONSENT_SCHEMA, portal.record()) + b"poison"
    with pytest.raises(StoreError):
        run(store, intake, portal.message("c-ok"), portal.message("c-bad", value=value))
    assert store.rejections() == []
    assert history(service, person) == []
