"""Crafted poison records on the real broker: each is refused with its reason code, the hub and
the connector never stop, and the good records behind them still get through.

The corpus is in ``tests/integration/poison.py``: on the life-event topic the framing, the Avro
body (truncations, indexes, counts, trailing bytes, other schemas, text that is not UTF-8 or
holds NUL), every logical type at and beyond its limits, the CloudEvents headers (missing,
repeated, not UTF-8, ce_time malformed, far past, future) and the key; and poison records on
the consent, receipts and a notify topic.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from hub.adapters.avro import AvroCodec
from hub.audit.oversight import reconcile
from hub.delivery.dead_letters import CLASS, MESSAGE, dlq_topic
from hub.processing.consent_events import CONSENT_SCHEMA, consent_message
from hub.wire.catalog import load_catalog
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.publishing import event_message
from hub.wire.topics import (
    CONSENT_TOPIC,
    LIFEEVENTS_TOPIC,
    RECEIPTS_TOPIC,
    REJECTED_TOPIC,
    notify_topic,
)
from tests import samples
from tests.keyring import signer
from tests.samples import consent_grant

from .harness import PUBLISHER, Harness, Record, address_payload, send_all, signed_record
from .poison import (
    ADDRESS_CHANGED,
    CORPUS,
    CORPUS_TABLE,
    DEATH_23_BYTES,
    GOOD,
    MUNICIPALITY,
    NOTICE,
    PERSONAL,
    POISON_NOTICE,
    PORTAL,
    POSTAL_CODE,
    RECEIPT,
    RECIPIENT,
    STREET,
    SUBJECT,
    address_changed,
    ce,
    consent_poison,
    framed,
    receipt_poison,
    varint,
)

pytestmark = pytest.mark.integration


def good_event(harness: Harness) -> tuple[Record, str]:
    """A valid AddressChanged from the publisher, and its ce_id."""
    key, value, headers, event_id = event_message(
        harness.app.codec,
        source=PUBLISHER,
        event_type="AddressChanged",
        payload=address_payload(SUBJECT),
        at=harness.now,
        signer=signer(PUBLISHER),
    )
    return (key, value, headers), event_id


def good_grant(harness: Harness) -> Record:
    """A valid consent grant from the portal for the linked client."""
    record = consent_grant("GCKEY-P", RECIPIENT, harness.now)
    key, value, headers, _ = consent_message(
        harness.app.codec, source=PORTAL, record=record, at=harness.now, signer=signer(PORTAL)
    )
    return key, value, headers


def no_personal_data(harness: Harness) -> None:
    for rejection in harness.app.store.rejections():
        for secret in PERSONAL:
            assert secret not in rejection.detail
    for record in harness.read(REJECTED_TOPIC):
        wire = (record.key or b"") + record.value + b"".join(v for _, v in record.headers)
        for secret in PERSONAL:
            assert secret.encode() not in wire


def test_the_corpus_is_forty_records_or_more_around_a_real_encoding() -> None:
    """The corpus meets the issue's size, the DeathReported is the 23 bytes fuzzing found, and
    GOOD is the real encoding of a valid event, so each poison differs from it only on purpose."""
    assert len(CORPUS) >= 40
    assert len(DEATH_23_BYTES) == 23
    payload = address_payload(
        SUBJECT,
        effective_date=date(2025, 1, 1),
        new_address=samples.address(STREET, municipality=MUNICIPALITY, postal_code=POSTAL_CODE),
        mailing_address=None,
    )
    assert AvroCodec(load_catalog()).encode(ADDRESS_CHANGED, payload) == GOOD


def test_every_code_of_the_corpus_is_documented() -> None:
    """Each record is listed once, and each code is in the README's list of reason codes."""
    recent = 0
    rows = CORPUS_TABLE + [(n, c) for n, c, _ in consent_poison(recent) + receipt_poison(recent)]
    assert len({record for record, _ in rows}) == len(rows)
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert [code for _, code in rows if f"`{code}`" not in readme] == []


def test_poison_records_are_refused_by_code_and_the_good_ones_still_flow(
    harness: Harness, tmp_path: Path
) -> None:
    """Every poison record on every consumed topic is refused with its code, the hub and the
    connector never stop, the good event is delivered, a restarted hub reads on, and the audit
    log verifies and reconciles."""
    app = harness.app
    harness.client(
        {PUBLISHER: SUBJECT, RECIPIENT: "CRA-5", PORTAL: "GCKEY-P"}, consents=[RECIPIENT]
    )
    now = harness.now
    recent = int((now - timedelta(minutes=1)).timestamp() * 1000)

    # Life events: the corpus, then one good event behind it on the same partition.
    good, good_id = good_event(harness)
    # Each signed over its crafted bytes, by the key its ce_source names, so that it is
    # refused for what was crafted.
    life = [signed_record((p.key, p.value, (p.headers or ce())(harness))) for p in CORPUS]
    life_offsets = send_all(harness, LIFEEVENTS_TOPIC, [*life, good])
    # Consent: poison, then a good grant, on the partition of the portal's key.
    consent = consent_poison(recent)
    consent_offsets = send_all(
        harness,
        CONSENT_TOPIC,
        [
            signed_record(
                (
                    b"GCKEY-P",
                    value,
                    cloudevent_headers(f"p-{n}", CONSENT_SCHEMA, now, source=PORTAL),
                )
            )
            for n, (_, _, value) in enumerate(consent)
        ]
        + [good_grant(harness)],
        partition=None,
    )
    # Receipts: poison, keyed as the connector keys its receipts, so the good one comes after.
    receipts = receipt_poison(recent)
    from_connector = cloudevent_headers("r", RECEIPT, now, source=f"tellonce-connector/{RECIPIENT}")
    receipt_offsets = send_all(
        harness,
        RECEIPTS_TOPIC,
        [(RECIPIENT.encode(), value, from_connector) for _, _, value in receipts],
        partition=None,
    )
    # A poison notice on the recipient's topic, ahead of the good notice (same key).
    send_all(
        harness,
        notify_topic(RECIPIENT),
        [
            (
                b"CRA-5",
                POISON_NOTICE,
                harness.sign_notice(b"CRA-5", POISON_NOTICE, ce(NOTICE)(harness)),
            )
        ],
        partition=None,
    )

    def all_read() -> bool:
        return (
            harness.consumed(LIFEEVENTS_TOPIC) == len(life_offsets)
            and harness.consumed(CONSENT_TOPIC) == len(consent_offsets)
            and harness.consumed(RECEIPTS_TOPIC) == len(receipt_offsets)
        )

    totals = harness.run_worker_until(all_read)  # it returns: the hub never exited
    assert all_read()
    assert (totals.rejected, totals.accepted, totals.disclosed) == (len(CORPUS), 1, 1)

    # Each life event landed with its code, in the table and on the rejected topic.
    expected = {offset: p.code for offset, p in zip(life_offsets, CORPUS, strict=False)}
    stored = {r.offset: r.reason for r in app.store.rejections() if r.topic == LIFEEVENTS_TOPIC}
    assert stored == expected
    wire = [harness.decode(r.value) for r in harness.read(REJECTED_TOPIC)]
    assert {w["offset"]: w["reason"] for w in wire if w["topic"] == LIFEEVENTS_TOPIC} == expected
    (event,) = app.store.events()
    assert (event.event_id, event.offset) == (good_id, life_offsets[-1])

    # Consent: the poison refused by code, the grant behind it applied.
    refused = [r.reason for r in app.store.rejections() if r.topic == CONSENT_TOPIC]
    assert refused == [code for _, code, _ in consent]
    assert [c.evidence.channel for c in app.store.consents()].count("online") == 1

    # Receipts: refused by code (kept and audited), nothing recorded as a delivery.
    refused = [r.reason for r in app.store.rejections() if r.topic == RECEIPTS_TOPIC]
    assert refused == [code for _, code, _ in receipts]
    assert app.store.deliveries() == []

    # The connector dead-letters the poison notice, naming the error class, and delivers the
    # good notice behind it; the hub then records that notice's receipt.
    drop = tmp_path / "drop"
    delivered = harness.run_connectors({RECIPIENT: ("filedrop", {"directory": str(drop)})})
    assert (delivered[RECIPIENT].failed, delivered[RECIPIENT].delivered) == (1, 1)
    (letter,) = harness.read(dlq_topic(RECIPIENT))
    error = {k: v.decode() for k, v in letter.headers if k in (CLASS, MESSAGE)}
    assert error == {CLASS: "DecodeError", MESSAGE: "undecodable: out_of_range"}
    (notice,) = (json.loads(p.read_text(encoding="utf-8")) for p in drop.glob("*.json"))
    assert (notice["event_id"], notice["subject_id"]) == (good_id, "CRA-5")
    harness.run_worker_until(lambda: len(app.store.deliveries()) == 1)
    assert [d.status for d in app.store.deliveries()] == ["delivered"]

    # A restarted hub reads on past two records that used to crash it, and accepts the next.
    again, again_id = good_event(harness)
    crashed_before = [
        signed_record(
            (SUBJECT.encode(), framed(address_changed(days=varint(2**31 - 1))), ce()(harness))
        ),
        signed_record((SUBJECT.encode(), GOOD, ce(ce_time=b"0001-01-01T00:00:00+01:00")(harness))),
    ]
    send_all(harness, LIFEEVENTS_TOPIC, [*crashed_before, again])
    restarted = harness.run_worker(records=3)
    assert (restarted.rejected, restarted.accepted) == (2, 1)
    assert {e.event_id for e in app.store.events()} == {good_id, again_id}

    no_personal_data(harness)
    harness.checkpoint()
    assert app.verify_audit().ok
    result = reconcile(app.store, app.pseudonyms())
    assert result.ok, (result.tallies, result.problems)
    leaves = {t.fact: t.leaves for t in result.tallies}
    assert leaves["refused receipts"] == len(receipts)
    assert leaves["rejected records"] == len(CORPUS) + len(crashed_before) + len(consent)
