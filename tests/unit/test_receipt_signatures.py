"""Signed receipts: what a connector signs, and which receipts the hub records as deliveries
(README, "Signed receipts"). A receipt counts only when a key of its recipient signed it and it
names the digest of the notice the hub sent; anything else is refused, audited, not recorded."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors.contract import DeliveryResult, Notification, Outcome
from hub.adapters.avro import AvroCodec
from hub.adapters.memory import MemoryStore
from hub.adapters.record_keys import RecordKey, verify_ed25519
from hub.audit.oversight import reconcile
from hub.bootstrap import App, KafkaConnection
from hub.config.directory import load_directory
from hub.config.settings import AuditSettings, ConnectorSettings, Settings, StoreSettings
from hub.delivery.runner import ConnectorRunner
from hub.errors import ConfigError
from hub.model import AcceptedEvent, Decision, DecisionOutcome, InboundMessage
from hub.processing.receipts import DeliveryIntake, ReceiptSummary
from hub.testing.fakes import ListSource, RecordingProducer
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.schemas import RECEIPT_SCHEMA
from hub.wire.signatures import (
    NOTICE_CONTEXT,
    NOTICE_DIGEST,
    RECEIPT_CONTEXT,
    ReceiptSignatures,
    SignaturePolicy,
    event_digest_of,
    event_signing_text,
    signed,
)
from hub.wire.topics import RECEIPTS_TOPIC, connector_source, notify_topic
from tests.unit.conftest import PSEUDONYMS
from tests.unit.test_event_signatures import ROOT, generator

RECEIPT_VECTORS = ROOT / "schemas" / "signatures" / "receipt-signature-v1.json"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RECIPIENT, OTHER = "cra-individual", "bc-msp"
SOURCE = "bc-service-bc"
NOTICE_SCHEMA = "ca.tellonce.notify.AddressChangeNotice"
OWN, RETIRED, OTHERS = (RecordKey.generate() for _ in range(3))
_directory = load_directory()
DIRECTORY = _directory.with_program(
    _directory.program(RECIPIENT).with_keys(
        OWN.directory_entry(NOW - timedelta(days=1)),
        RETIRED.directory_entry(NOW - timedelta(days=60), NOW - timedelta(days=1)),
    )
).with_program(_directory.program(OTHER).with_keys(OTHERS.directory_entry(NOW - timedelta(days=1))))


def policy(*, required: bool) -> ReceiptSignatures:
    return ReceiptSignatures(DIRECTORY, SignaturePolicy(verify_ed25519, required=required))


def notice(codec: AvroCodec, nid: str, street: str = "77 Quillback Lane") -> InboundMessage:
    """A notice as the connector receives it from the hub."""
    record: dict[str, Any] = {
        "notification_id": nid,
        "recipient": RECIPIENT,
        "subject_id": "CRA-1",
        "event_id": f"evt-{nid}",
        "event_source": SOURCE,
        "event_time": NOW,
        "disclosed_fields": ["new_address"],
        "consent_revision": "c" * 64,
        "new_address": {
            "lines": [street],
            "municipality": "Tofino",
            "province": "BC",
            "postal_code": "V0R 2Z0",
        },
    }
    value = codec.encode(NOTICE_SCHEMA, record)
    headers = cloudevent_headers(nid, NOTICE_SCHEMA, NOW, subject="CRA-1")
    return InboundMessage(notify_topic(RECIPIENT), 0, 0, b"CRA-1", value, headers)


def accepted(event: str) -> AcceptedEvent:
    return AcceptedEvent(SOURCE, event, "AddressChanged", NOW, None, "t", 0, 0, NOW)


def digest_of(message: InboundMessage) -> bytes:
    return event_digest_of(message, NOTICE_CONTEXT)


@pytest.fixture
def sent(codec: AvroCodec) -> InboundMessage:
    return notice(codec, "n-1")


@pytest.fixture
def decided(store: MemoryStore, sent: InboundMessage) -> MemoryStore:
    """n-1 disclosed to the recipient (the hub kept its notice's digest); n-old too, decided
    before the hub kept digests (migration 0005)."""
    with store.transaction() as tx:
        for nid in ("n-1", "n-old"):
            event = f"evt-{nid}"
            tx.add_events(
                [AcceptedEvent(SOURCE, event, "AddressChanged", NOW, None, "t", 0, 0, NOW)]
            )
            kept = PSEUDONYMS.of(digest_of(sent).hex()) if nid == "n-1" else None
            decision = Decision(
                SOURCE,
                event,
                RECIPIENT,
                DecisionOutcome.DISCLOSED,
                "consent_given",
                "c" * 64,
                nid,
                ("new_address",),
                NOW,
                notice_digest=kept,
            )
            tx.add_decisions([decision])
    return store


def receipt(
    codec: AvroCodec,
    answers: bytes | str | None,
    signer: RecordKey | None = OWN,
    *,
    nid: str = "n-1",
    offset: int = 0,
    swap_digest: bytes | None = None,
) -> InboundMessage:
    """A DELIVERED receipt for ``nid`` naming the notice digest ``answers`` (or that header
    text), signed by ``signer``; ``swap_digest`` replaces the named digest after signing."""
    value = codec.encode(
        RECEIPT_SCHEMA,
        {
            "notification_id": nid,
            "recipient": RECIPIENT,
            "event_id": f"evt-{nid}",
            "status": "DELIVERED",
            "sink": "webhook",
            "detail": None,
            "recorded_at": NOW,
            "dead_letter_topic": None,
            "attempts": 1,
        },
    )
    headers = cloudevent_headers(
        f"{nid}:delivered", RECEIPT_SCHEMA, NOW, source=connector_source(RECIPIENT)
    )
    if answers is not None:
        text = answers if isinstance(answers, str) else answers.hex()
        headers += [(NOTICE_DIGEST, text.encode())]
    key = RECIPIENT.encode()
    if signer is not None:
        headers = signed(key, value, headers, signer, RECEIPT_CONTEXT)
    if swap_digest is not None:
        headers = [(n, swap_digest.hex().encode() if n == NOTICE_DIGEST else v) for n, v in headers]
    return InboundMessage(RECEIPTS_TOPIC, 0, offset, key, value, headers)


def take(
    store: MemoryStore, codec: AvroCodec, *messages: InboundMessage, required: bool = True
) -> ReceiptSummary:
    intake = DeliveryIntake(
        codec=codec,
        clock=lambda: NOW,
        group_id="tellonce-hub",
        pseudonyms=PSEUDONYMS,
        signatures=policy(required=required),
    )
    with store.transaction() as tx:
        return intake.process(tx, messages)


def refusal(store: MemoryStore) -> str:
    """The reason the one refused receipt earned (and nothing recorded as a delivery)."""
    assert store.deliveries() == []
    [row] = store.rejections()
    return row.reason


# -- what is signed ----------------------------------------------------------------------------


def test_a_receipts_text_has_its_own_context_and_ends_with_the_notice_digest(
    codec: AvroCodec, sent: InboundMessage
) -> None:
    """The signed text of a receipt starts with the receipt context line and ends with the
    ce_noticedigest header as sent, so a signature binds the receipt to that notice."""
    message = receipt(codec, digest_of(sent), signer=None)
    headers = dict(message.headers)
    text = event_signing_text(
        context=RECEIPT_CONTEXT,
        specversion="1.0",
        ce_id="n-1:delivered",
        source=connector_source(RECIPIENT),
        ce_type=headers["ce_type"].decode(),
        time=headers["ce_time"].decode(),
        subject=None,
        key=RECIPIENT.encode(),
        value=message.value or b"",
        trailing=[digest_of(sent).hex()],
    )
    assert text.split(b"\n")[0] == b"tellonce-receipt-signature-v1"
    assert text.split(b"\n")[-1] == digest_of(sent).hex().encode()
    assert event_digest_of(message, RECEIPT_CONTEXT) == hashlib.sha256(text).digest()
    assert event_digest_of(message, NOTICE_CONTEXT) != event_digest_of(message, RECEIPT_CONTEXT)


def test_the_published_receipt_vectors_are_what_the_code_computes() -> None:
    """schemas/signatures/receipt-signature-v1.json is what the generator writes now, and each
    case's digest, rebuilt from its headers (ce_noticedigest included), key and value, is the
    one its signature verifies over."""
    assert RECEIPT_VECTORS.read_text(encoding="utf-8") == generator().render_receipts()
    vectors = json.loads(RECEIPT_VECTORS.read_text(encoding="utf-8"))
    public = base64.b64decode(vectors["public_key_base64"])
    for case in vectors["cases"]:
        headers = [(k, v.encode()) for k, v in case["headers"].items()]
        message = InboundMessage(
            RECEIPTS_TOPIC, 0, 0, case["key"].encode(), bytes.fromhex(case["value_hex"]), headers
        )
        digest = event_digest_of(message, RECEIPT_CONTEXT)
        assert digest.hex() == case["digest_hex"]
        signature = base64.b64decode(case["signature_headers"]["ce_signature"])
        assert verify_ed25519(public, digest, signature)


# -- which receipts the hub records ------------------------------------------------------------


def test_a_receipt_signed_by_its_recipient_for_the_notice_sent_is_recorded(
    decided: MemoryStore, codec: AvroCodec, sent: InboundMessage
) -> None:
    """Signed by a listed key of the recipient, naming the digest of the notice the hub sent:
    one delivery, one delivered leaf, and the log still reconciles."""
    summary = take(decided, codec, receipt(codec, digest_of(sent)))
    assert (summary.recorded, summary.refused) == (1, 0)
    assert [(d.notification_id, d.status) for d in decided.deliveries()] == [("n-1", "delivered")]
    assert [r.kind for r in decided.audit_records()] == ["delivered"]


@pytest.mark.parametrize(
    ("signer", "expected"),
    [(None, "unsigned"), (OTHERS, "unknown_key"), (RETIRED, "key_expired")],
    ids=["unsigned", "another-recipients-key", "retired-key"],
)
def test_a_receipt_not_signed_by_a_valid_key_of_its_recipient_is_refused(
    decided: MemoryStore,
    codec: AvroCodec,
    sent: InboundMessage,
    signer: RecordKey | None,
    expected: str,
) -> None:
    """Unsigned (signed receipts required), signed by another recipient's key, or by the
    recipient's retired key: refused with that reason, though it names the right notice."""
    summary = take(decided, codec, receipt(codec, digest_of(sent), signer))
    assert (summary.recorded, summary.refused) == (0, 1)
    assert refusal(decided) == expected


def test_a_receipt_altered_after_signing_is_bad_signature(
    decided: MemoryStore, codec: AvroCodec, sent: InboundMessage
) -> None:
    """A genuine receipt for another notice whose ce_noticedigest is swapped for the right
    one no longer verifies: the digest is part of what is signed."""
    other_notice = digest_of(notice(codec, "n-1", street="1 Elsewhere Rd"))
    forged = receipt(codec, other_notice, swap_digest=digest_of(sent))
    take(decided, codec, forged)
    assert refusal(decided) == "bad_signature"


def test_a_receipt_signed_for_another_notice_is_a_notice_mismatch(
    decided: MemoryStore, codec: AvroCodec
) -> None:
    """Signed by the recipient's own key, but naming the digest of a notice the hub did not
    send for this notification: refused, audited with the notification, logged by its id."""
    other_notice = digest_of(notice(codec, "n-1", street="1 Elsewhere Rd"))
    with capture_logs() as logs:
        take(decided, codec, receipt(codec, other_notice))
    assert refusal(decided) == "notice_mismatch"
    [leaf] = decided.audit_records()
    assert (leaf.kind, leaf.data) == (
        "receipt_refused",
        {"position": f"{RECEIPTS_TOPIC}/0/0", "reason": "notice_mismatch", "notification": "n-1"},
    )
    [line] = [e for e in logs if e["event"] == "receipt refused"]
    assert (line["notification"], line["reason"]) == ("n-1", "notice_mismatch")
    tallies = {t.fact: t for t in reconcile(decided, PSEUDONYMS).tallies}
    assert (tallies["refused receipts"].leaves, tallies["refused receipts"].facts) == (1, 1)


@pytest.mark.parametrize("required", [True, False], ids=["required", "optional"])
def test_a_signed_receipt_must_name_a_well_formed_notice_digest(
    decided: MemoryStore, codec: AvroCodec, required: bool
) -> None:
    """A signed receipt that names no notice digest, or one that is not 64 hex digits, is a
    notice_mismatch whatever the policy."""
    bare = receipt(codec, None)
    malformed = receipt(codec, "not-a-digest", offset=1)
    upper = receipt(codec, "AB" * 32, offset=2)
    summary = take(decided, codec, bare, malformed, upper, required=required)
    assert (summary.recorded, summary.refused) == (0, 3)
    assert {r.reason for r in decided.rejections()} == {"notice_mismatch"}


def test_an_unsigned_receipt_passes_only_when_signatures_are_optional_and_its_digest_holds(
    decided: MemoryStore, codec: AvroCodec, sent: InboundMessage
) -> None:
    """With signed receipts not required, an unsigned receipt from an older connector (no
    digest) is recorded; one naming another notice's digest is still refused."""
    wrong = receipt(codec, hashlib.sha256(b"x").digest(), signer=None, offset=1)
    older = receipt(codec, None, signer=None, offset=2)
    summary = take(decided, codec, wrong, older, required=False)
    assert (summary.recorded, summary.refused) == (1, 1)
    assert [r.reason for r in decided.rejections()] == ["notice_mismatch"]
    assert [d.notification_id for d in decided.deliveries()] == ["n-1"]


def test_a_notification_decided_before_digests_were_kept_needs_only_the_signature(
    decided: MemoryStore, codec: AvroCodec
) -> None:
    """A notice sent before the hub kept digests (migration 0005) has nothing to compare: a
    receipt signed by the recipient's key is recorded, an unsigned one still refused."""
    digest = hashlib.sha256(b"whatever the connector computed").digest()
    summary = take(
        decided,
        codec,
        receipt(codec, digest, nid="n-old"),
        receipt(codec, digest, signer=None, nid="n-old", offset=1),
    )
    assert (summary.recorded, summary.refused) == (1, 1)
    assert [r.reason for r in decided.rejections()] == ["unsigned"]


# -- the connector's side ----------------------------------------------------------------------


class Outcomes:
    """Delivers n-1; refuses n-2 for good (a dead letter, with its receipt)."""

    name = "scripted"

    def deliver(self, notification: Notification) -> DeliveryResult:
        if notification.notification_id == "n-1":
            return DeliveryResult(Outcome.DELIVERED)
        return DeliveryResult(Outcome.FAILED, "the back office refused it", "HTTP422")

    def close(self) -> None:
        pass


def test_a_connectors_receipts_name_the_notice_received_and_verify_under_its_key(
    codec: AvroCodec, store: MemoryStore
) -> None:
    """The runner signs each receipt (delivered or dead-lettered) with its key over the
    receipt context and names the digest of the notice as it received it: the hub, which
    kept that digest, records both."""
    notices = [notice(codec, "n-1"), dataclasses.replace(notice(codec, "n-2"), offset=1)]
    producer = RecordingProducer()
    runner = ConnectorRunner(
        recipient=RECIPIENT,
        source=ListSource(notices),
        codec=codec,
        sink=Outcomes(),
        producer=producer,
        clock=lambda: NOW,
        receipt_signer=OWN,
    )
    runner.run(threading.Event(), idle_exit_s=0.0)

    receipts = [
        InboundMessage(RECEIPTS_TOPIC, 0, i, s.key, s.value, s.headers)
        for i, s in enumerate(producer.to(RECEIPTS_TOPIC))
    ]
    assert len(receipts) == 2
    for sent_notice, answer in zip(notices, receipts, strict=True):
        headers = dict(answer.headers)
        assert headers[NOTICE_DIGEST] == digest_of(sent_notice).hex().encode()
        assert headers["ce_signaturekey"].decode() == OWN.key_id
    with store.transaction() as tx:
        for sent_notice in notices:
            nid = dict(sent_notice.headers)["ce_id"].decode()
            event = f"evt-{nid}"
            tx.add_events(
                [AcceptedEvent(SOURCE, event, "AddressChanged", NOW, None, "t", 0, 0, NOW)]
            )
            kept = PSEUDONYMS.of(digest_of(sent_notice).hex())
            tx.add_decisions(
                [
                    Decision(
                        SOURCE,
                        event,
                        RECIPIENT,
                        DecisionOutcome.DISCLOSED,
                        "consent_given",
                        "c" * 64,
                        nid,
                        ("new_address",),
                        NOW,
                        notice_digest=kept,
                    )
                ]
            )
    summary = take(store, codec, *receipts)
    assert (summary.recorded, summary.refused) == (2, 0)
    statuses = {d.notification_id: d.status for d in store.deliveries()}
    assert statuses == {"n-1": "delivered", "n-2": "dead_lettered"}


def test_a_connector_whose_key_the_directory_does_not_list_stops_at_start(
    tmp_path: Path,
) -> None:
    """A connector given a key not listed for its recipient stops before it reads anything,
    saying what to add: the hub would refuse every receipt it signed."""
    RecordKey.new(tmp_path / "connector.pem")
    settings = Settings(
        store=StoreSettings(url=f"sqlite:///{tmp_path / 'hub.db'}"),
        audit=AuditSettings(signing_key=tmp_path / "audit.pem", create_key=True),
        connector=ConnectorSettings(signing_key=tmp_path / "connector.pem"),
    )
    app = App.from_settings(settings)
    with pytest.raises(ConfigError, match=r"is not listed for cra-individual.*keys new"):
        app.connector(
            KafkaConnection.plaintext("127.0.0.1:1"),
            RECIPIENT,
            "filedrop",
            {"directory": str(tmp_path / "drop")},
        )
    assert not (tmp_path / "drop").exists()


def test_a_connector_without_a_key_warns_that_a_default_hub_refuses_its_receipts(
    tmp_path: Path,
) -> None:
    """With no TELLONCE_CONNECTOR__SIGNING_KEY the connector signs nothing and says, at start,
    that a hub with the default settings (signed receipts required) refuses its receipts."""
    settings = Settings(
        store=StoreSettings(url=f"sqlite:///{tmp_path / 'hub.db'}"),
        audit=AuditSettings(signing_key=tmp_path / "audit.pem", create_key=True),
    )
    assert settings.hub.require_signed_receipts
    app = App.from_settings(settings)
    with capture_logs() as logs:
        assert app.receipt_signer(RECIPIENT) is None
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert "TELLONCE_CONNECTOR__SIGNING_KEY" in warning["event"]
    assert "refuses" in warning["event"]
    assert warning["recipient"] == RECIPIENT
