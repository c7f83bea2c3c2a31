"""Signed consent events on the memory store: the consent intake checks a portal's signature as
the hub checks a publisher's (README, "Signed life events"), before anything is applied."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from consent.model import Evidence
from hub.adapters.avro import AvroCodec
from hub.adapters.memory import MemoryStore
from hub.adapters.record_keys import RecordKey, verify_ed25519
from hub.config.directory import Directory
from hub.consents.service import ConsentService
from hub.model import InboundMessage
from hub.privacy.erasure import ErasureService
from hub.processing.consent_events import (
    ConsentIntake,
    ConsentSummary,
    consent_message,
    erasure_message,
)
from hub.wire.signatures import SignaturePolicy
from hub.wire.topics import CONSENT_TOPIC
from tests.unit.conftest import PSEUDONYMS
from tests.unit.test_consent_events import PORTAL, RECIPIENT, SUBJECT, Portal

LISTED, RETIRED, STRANGER = RecordKey.generate(), RecordKey.generate(), RecordKey.generate()


class SignedHub:
    """A consent intake whose directory lists the portal's keys, and one client linked."""

    def __init__(
        self,
        store: MemoryStore,
        directory: Directory,
        codec: AvroCodec,
        now: datetime,
        *,
        required: bool,
    ) -> None:
        def clock() -> datetime:
            return now

        portal = directory.program(PORTAL).with_keys(
            LISTED.directory_entry(now - timedelta(days=1)),
            RETIRED.directory_entry(now - timedelta(days=60), now - timedelta(days=1)),
        )
        directory = directory.with_program(portal)
        self.store, self.codec, self.now = store, codec, now
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
            signatures=SignaturePolicy(verify_ed25519, required=required),
        )
        evidence = Evidence("online", "client", now - timedelta(days=1))
        self.person = self.service.link(PORTAL, SUBJECT, evidence)
        self.service.link(RECIPIENT, "CRA-000123", evidence, to=self.person)
        self.records = Portal(codec, now)
        self.offset = 0

    def _message(self, built: tuple[bytes, bytes, Any, str], alter: bool) -> InboundMessage:
        key, value, headers, _ = built
        if alter:  # someone on the way changes the recorded channel after the signature
            value = value.replace(b"online", b"onfile")
        self.offset += 1
        return InboundMessage(CONSENT_TOPIC, 0, self.offset - 1, key, value, headers)

    def grant(self, ce_id: str, signer: RecordKey | None, *, alter: bool = False) -> InboundMessage:
        at = self.now - timedelta(minutes=1)
        built = consent_message(
            self.codec,
            source=PORTAL,
            record=self.records.record(),
            at=at,
            event_id=ce_id,
            signer=signer,
        )
        return self._message(built, alter)

    def erase(self, ce_id: str, signer: RecordKey | None) -> InboundMessage:
        record = {
            "subject_id": SUBJECT,
            "channel": "online",
            "actor": "client",
            "recorded_at": self.now - timedelta(minutes=5),
        }
        at = self.now - timedelta(minutes=1)
        built = erasure_message(
            self.codec, source=PORTAL, record=record, at=at, event_id=ce_id, signer=signer
        )
        return self._message(built, False)

    def process(self, *messages: InboundMessage) -> ConsentSummary:
        with self.store.transaction() as tx:
            return self.intake.process(tx, messages)

    def grants(self) -> int:
        return len(self.service.show(self.person).history.get((RECIPIENT, "AddressChanged"), []))

    def erased(self) -> bool:
        with self.store.transaction() as tx:
            return self.person in tx.erased_persons({self.person})


def test_forged_consent_changes_are_refused_with_their_reason_and_change_nothing(
    store: MemoryStore, directory: Directory, codec: AvroCodec, now: datetime
) -> None:
    """With signatures required, a consent change unsigned, signed by an unlisted key, by a
    retired key, or altered after signing is rejected with that reason and records no consent;
    one signed by the portal's listed key is applied."""
    hub = SignedHub(store, directory, codec, now, required=True)
    summary = hub.process(
        hub.grant("c-1", None),
        hub.grant("c-2", STRANGER),
        hub.grant("c-3", RETIRED),
        hub.grant("c-4", LISTED, alter=True),
    )
    assert (summary.applied, summary.rejected) == (0, 4)
    assert [(r.offset, r.reason) for r in store.rejections()] == [
        (0, "unsigned"),
        (1, "unknown_key"),
        (2, "key_expired"),
        (3, "bad_signature"),
    ]
    assert hub.grants() == 0

    assert hub.process(hub.grant("c-5", LISTED)).applied == 1
    assert hub.grants() == 1


def test_a_signature_present_is_checked_even_when_not_required(
    store: MemoryStore, directory: Directory, codec: AvroCodec, now: datetime
) -> None:
    """With signatures not required, an unsigned consent change still applies, but one signed
    by a key not listed for the portal is refused as unknown_key."""
    hub = SignedHub(store, directory, codec, now, required=False)
    summary = hub.process(hub.grant("c-1", STRANGER), hub.grant("c-2", None))
    assert (summary.applied, summary.rejected) == (1, 1)
    assert [r.reason for r in store.rejections()] == ["unknown_key"]
    assert hub.grants() == 1


def test_an_unsigned_erasure_request_erases_nobody(
    store: MemoryStore, directory: Directory, codec: AvroCodec, now: datetime
) -> None:
    """With signatures required, an unsigned erasure request is rejected unsigned and the
    client stays; the same request signed by the portal's key erases them."""
    hub = SignedHub(store, directory, codec, now, required=True)
    assert hub.process(hub.erase("e-1", None)).rejected == 1
    assert [r.reason for r in store.rejections()] == ["unsigned"]
    assert not hub.erased()

    assert hub.process(hub.erase("e-2", LISTED)).erased == 1
    assert hub.erased()
