"""Signed receipts on the real broker: with signed receipts required, the hub records a delivery
only on a receipt its recipient's connector signed for the very notice the hub sent. Receipts
forged with a computed notification id are refused with their reason and audited, and the
notification stays undelivered: it is published again, and the genuine receipt then counts."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from pathlib import Path

import pytest

from hub.adapters.record_keys import RecordKey
from hub.audit.oversight import reconcile
from hub.model import notification_id
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.schemas import RECEIPT_SCHEMA
from hub.wire.signatures import (
    NOTICE_CONTEXT,
    NOTICE_DIGEST,
    RECEIPT_CONTEXT,
    event_digest_of,
    signed,
)
from hub.wire.topics import RECEIPTS_TOPIC, connector_source, notify_topic

from .harness import PUBLISHER, Harness, Record, address_payload, inbound, send_all, tuned

pytestmark = pytest.mark.integration

RECIPIENT = "cra-individual"
OTHER = "bc-msp"  # another recipient, with a key of its own


def forged(harness: Harness, nid: str, digest: bytes, signer: RecordKey | None) -> Record:
    """A DELIVERED receipt for ``nid`` as anyone who can write the receipts topic makes one."""
    value = harness.app.codec.encode(
        RECEIPT_SCHEMA,
        {
            "notification_id": nid,
            "recipient": RECIPIENT,
            "event_id": "whatever",
            "status": "DELIVERED",
            "sink": "forged-by-anyone",
            "detail": None,
            "recorded_at": harness.now,
            "dead_letter_topic": None,
            "attempts": 1,
        },
    )
    headers = cloudevent_headers(
        f"{nid}:delivered", RECEIPT_SCHEMA, harness.now, source=connector_source(RECIPIENT)
    )
    headers += [(NOTICE_DIGEST, digest.hex().encode())]
    if signer is not None:
        headers = signed(RECIPIENT.encode(), value, headers, signer, RECEIPT_CONTEXT)
    return RECIPIENT.encode(), value, headers


def test_forged_receipts_are_refused_and_the_notice_is_republished_until_truly_delivered(
    harness: Harness, tmp_path: Path
) -> None:
    """Unsigned, signed by another recipient's key, or signed by the connector's own key for
    another notice: each refused (unsigned, unknown_key, notice_mismatch), audited with the
    notification, never a delivery; the notice is published again after redeliver_after_s and
    the connector's signed receipt is what records it as delivered."""
    app = harness.app
    since = harness.now - timedelta(minutes=1)
    own = RecordKey.new(tmp_path / "cra-connector.pem")  # as 'tellonce keys new' writes it
    other = RecordKey.generate()
    app.directory = app.directory.with_program(
        app.directory.program(RECIPIENT).with_keys(own.directory_entry(since))
    ).with_program(app.directory.program(OTHER).with_keys(other.directory_entry(since)))
    app.settings = tuned(
        app.settings,
        hub={"require_signed_receipts": True},
        connector={"signing_key": tmp_path / "cra-connector.pem"},
    )
    harness.client({PUBLISHER: "SBC-1", RECIPIENT: "CRA-1"}, consents=[RECIPIENT])
    (event_id,) = harness.publish([address_payload("SBC-1")])
    harness.run_worker(records=1)
    published_at = time.monotonic()
    (notice,) = harness.read(notify_topic(RECIPIENT))
    nid = notification_id(PUBLISHER, event_id, RECIPIENT)  # anyone can compute it
    assert harness.decode(notice.value)["notification_id"] == nid
    right = event_digest_of(inbound(notice), NOTICE_CONTEXT)  # anyone who reads the topic can
    another = hashlib.sha256(b"another notice").digest()

    send_all(
        harness,
        RECEIPTS_TOPIC,
        [
            forged(harness, nid, right, None),
            forged(harness, nid, right, other),
            forged(harness, nid, another, own),
        ],
    )
    harness.run_worker_until(lambda: harness.consumed(RECEIPTS_TOPIC) == 3)

    assert app.store.deliveries() == []
    refused = [(r.reason, r.offset) for r in app.store.rejections() if r.topic == RECEIPTS_TOPIC]
    assert refused == [("unsigned", 0), ("unknown_key", 1), ("notice_mismatch", 2)]
    leaves = [r.data for r in app.store.audit_records() if r.kind == "receipt_refused"]
    assert [(d["reason"], d["notification"]) for d in leaves] == [
        ("unsigned", nid),
        ("unknown_key", nid),
        ("notice_mismatch", nid),
    ]
    assert app.store.awaiting_receipt(RECIPIENT) == 1

    # Not delivered, so published again once redeliver_after_s has passed.
    app.settings = tuned(app.settings, hub={"redeliver_after_s": 1.0, "redeliver_max": 1})
    time.sleep(max(0.0, published_at + 1.2 - time.monotonic()))
    assert harness.run_worker(records=None).republished == 1
    assert len(harness.read(notify_topic(RECIPIENT))) == 2

    drop = tmp_path / "drop"
    totals = harness.run_connectors({RECIPIENT: ("filedrop", {"directory": str(drop)})})
    assert (totals[RECIPIENT].delivered, totals[RECIPIENT].duplicates) == (1, 1)
    harness.run_worker_until(lambda: harness.consumed(RECEIPTS_TOPIC) == 5)

    [delivery] = app.store.deliveries()
    assert (delivery.notification_id, delivery.status, delivery.sink) == (
        nid,
        "delivered",
        "filedrop",
    )
    assert app.store.awaiting_receipt(RECIPIENT) == 0
    harness.checkpoint()
    assert app.verify_audit().ok
    assert reconcile(app.store, app.pseudonyms()).ok
