"""Erasure requests from a portal on the consent topic (ErasureRequested), on the memory store:
applied as with --force in the consent batch, once, in order with the client's consent changes;
later changes for the erased client rejected as erased."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from consent.model import ConsentState, Evidence
from hub.adapters.avro import AvroCodec
from hub.adapters.memory import MemoryStore
from hub.audit.oversight import reconcile, verify_store
from hub.config.directory import Directory
from hub.consents.service import ConsentService
from hub.model import InboundMessage
from hub.privacy.erasure import ERASURE_SINK, ErasureService
from hub.processing.consent_events import (
    ConsentIntake,
    ConsentSummary,
    consent_message,
    erasure_message,
)
from hub.processing.life_events import BatchProcessor
from hub.wire.schemas import ERASURE_SCHEMA
from hub.wire.topics import CONSENT_TOPIC
from tests.unit.conftest import PSEUDONYMS
from tests.unit.test_consent_events import NOTICE, PORTAL, RECIPIENT, SUBJECT
from tests.unit.test_processing import Publisher

PUBLISHER = "bc-service-bc"
LOCAL_IDS = {PORTAL: SUBJECT, PUBLISHER: "SBC-1001", RECIPIENT: "CRA-000123"}


class Portal:
    """Sends a client's erasure requests and consent changes as a portal publishes them."""

    def __init__(self, codec: AvroCodec, now: datetime) -> None:
        self.codec = codec
        self.now = now
        self.offset = 0

    def _message(self, built: tuple[bytes, bytes, Any, str]) -> InboundMessage:
        key, value, headers, _ = built
        self.offset += 1
        return InboundMessage(CONSENT_TOPIC, 0, self.offset - 1, key, value, headers)

    def erase(self, ce_id: str, *, source: str = PORTAL, **fields: Any) -> InboundMessage:
        record = {
            "subject_id": SUBJECT,
            "channel": "online",
            "actor": "client",
            "recorded_at": self.now - timedelta(minutes=5),
        } | fields
        at = self.now - timedelta(minutes=1)
        return self._message(
            erasure_message(self.codec, source=source, record=record, at=at, event_id=ce_id)
        )

    def grant(self, ce_id: str, minutes_ago: int) -> InboundMessage:
        record = {
            "subject_id": SUBJECT,
            "recipient": RECIPIENT,
            "event_types": ["AddressChanged"],
            "state": "GIVEN",
            "purpose": "tell-us-once: update the recipient's records after a life event",
            "legal_basis": "consent of the individual (Privacy Act, s. 8(1))",
            "notice_version": NOTICE.version,
            "notice_hash": NOTICE.sha256,
            "channel": "online",
            "actor": "client",
            "recorded_at": self.now - timedelta(minutes=minutes_ago),
            "expires_at": None,
        }
        at = self.now - timedelta(minutes=1)
        return self._message(
            consent_message(self.codec, source=PORTAL, record=record, at=at, event_id=ce_id)
        )


class Hub:
    """One client linked at the portal, the publisher and the recipient, and the intakes."""

    def __init__(
        self, store: MemoryStore, directory: Directory, codec: AvroCodec, now: datetime
    ) -> None:
        def clock() -> datetime:
            return now

        self.store = store
        self.service = ConsentService(store, directory, clock=clock)
        self.intake = ConsentIntake(
            directory=directory,
            codec=codec,
            clock=clock,
            group_id="hub",
            service=self.service,
            erasure=ErasureService(
                store, resolve=self.service.resolve, pseudonyms=PSEUDONYMS, clock=clock
            ),
            pseudonyms=PSEUDONYMS,
        )
        self.processor = BatchProcessor(
            directory=directory, codec=codec, clock=clock, group_id="hub", pseudonyms=PSEUDONYMS
        )
        evidence = Evidence("online", "client", now - timedelta(days=1))
        person = None
        for program, local_id in LOCAL_IDS.items():
            person = self.service.link(program, local_id, evidence, to=person)
        assert person is not None
        self.person = person
        self.portal = Portal(codec, now)
        self.publisher = Publisher(codec, now)

    def consent(self, *messages: InboundMessage) -> ConsentSummary:
        with self.store.transaction() as tx:
            return self.intake.process(tx, messages)

    def event(self, ce_id: str) -> None:
        with self.store.transaction() as tx:
            self.processor.process(tx, [self.publisher.message(ce_id)])

    def assert_audit_holds(self) -> None:
        verdict = verify_store(self.store, lambda message, signature: False, None)
        assert verdict.ok, verdict.problem
        result = reconcile(self.store, PSEUDONYMS)
        assert result.ok, (result.tallies, result.problems)


@pytest.fixture
def hub(store: MemoryStore, directory: Directory, codec: AvroCodec, now: datetime) -> Hub:
    return Hub(store, directory, codec, now)


def test_erasure_request_erases_and_dead_letters_notices_in_flight(hub: Hub) -> None:
    """A portal's request erases the client at once, its notice in flight dead-lettered (the
    client asked: --force), with an erased leaf naming the request; the audit holds."""
    hub.consent(hub.portal.grant("c-1", minutes_ago=30))
    hub.event("evt-1")
    (notification,) = [d.notification_id for d in hub.store.decisions() if d.notification_id]
    summary = hub.consent(hub.portal.erase("erase-1"))
    assert (summary.applied, summary.erased, summary.rejected) == (1, 1, 0)
    assert set(hub.store.erasures()) == {hub.person}
    (dead,) = hub.store.deliveries()
    assert (dead.notification_id, dead.status, dead.sink) == (
        notification,
        "dead_lettered",
        ERASURE_SINK,
    )
    (leaf,) = [r.data for r in hub.store.audit_records() if r.kind == "erased"]
    assert leaf == {
        "person": hub.person,
        "links": 3,
        "dead_lettered": 1,
        "channel": "online",
        "event": PSEUDONYMS.event(PORTAL, "erase-1"),
    }
    leaves = json.dumps([r.data for r in hub.store.audit_records()])
    assert not [local_id for local_id in LOCAL_IDS.values() if local_id in leaves]
    hub.assert_audit_holds()


def test_changes_after_the_erasure_in_the_batch_are_rejected_as_erased(hub: Hub) -> None:
    """Grant, erasure, a later grant, another erasure and a repeat of the first, in one batch:
    the grant before applies, the repeat is a duplicate, the rest are rejected as erased."""
    summary = hub.consent(
        hub.portal.grant("c-1", minutes_ago=30),
        hub.portal.erase("erase-1"),
        hub.portal.grant("c-2", minutes_ago=2),
        hub.portal.erase("erase-2"),
        hub.portal.erase("erase-1"),
    )
    assert (summary.applied, summary.erased, summary.rejected, summary.duplicates) == (2, 1, 2, 1)
    assert [(r.offset, r.reason) for r in hub.store.rejections()] == [(2, "erased"), (3, "erased")]
    assert [r.state for r in hub.store.consents()] == [ConsentState.GIVEN]
    kinds = [r.kind for r in hub.store.audit_records() if r.kind != "identity_linked"]
    assert kinds == ["consent_given", "erased", "rejected", "rejected"]
    later = hub.consent(hub.portal.erase("erase-1"), hub.portal.grant("c-3", minutes_ago=1))
    assert (later.duplicates, later.rejected) == (1, 1)
    hub.assert_audit_holds()


@pytest.mark.parametrize(
    ("source", "fields", "reason"),
    [
        (PUBLISHER, {"subject_id": LOCAL_IDS[PUBLISHER]}, "not_authorized"),
        (PORTAL, {"subject_id": "GCKEY-NOBODY"}, "unknown_person"),
        (PORTAL, {"channel": "x" * 33}, "invalid_event"),
        (PORTAL, {"actor": ""}, "invalid_event"),
    ],
    ids=["not-a-portal", "unknown-client", "long-channel", "no-actor"],
)
def test_bad_erasure_request_is_rejected_and_erases_nobody(
    hub: Hub, source: str, fields: dict[str, Any], reason: str
) -> None:
    """A request from a program that is no portal, about nobody, or with bad evidence is
    rejected with its reason code, naming no value sent; nobody is erased."""
    summary = hub.consent(hub.portal.erase("erase-1", source=source, **fields))
    assert (summary.applied, summary.rejected) == (0, 1)
    (rejection,) = hub.store.rejections()
    assert rejection.reason == reason
    assert "GCKEY" not in rejection.detail
    assert hub.store.erasures() == {}


def test_erasure_body_with_a_consent_type_header_is_a_type_mismatch(
    hub: Hub, codec: AvroCodec
) -> None:
    """ce_type must name the body's schema: an ErasureRequested sent as ConsentChanged is
    rejected and erases nobody."""
    message = hub.portal.erase("erase-1")
    headers = [
        (k, b"ca.tellonce.consent.ConsentChanged" if k == "ce_type" else v)
        for k, v in message.headers
    ]
    assert codec.decode(message.value).entry.name == ERASURE_SCHEMA
    summary = hub.consent(
        InboundMessage(message.topic, 0, message.offset, message.key, message.value, headers)
    )
    assert summary.rejected == 1
    assert hub.store.rejections()[0].reason == "type_mismatch"
    assert hub.store.erasures() == {}
