"""Hostile and broken inbound records: rejected with a reason code, never a crash, and they do
not hold up the good events behind them on the same partition."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from kafka import KafkaProducer

from hub.wire.cloudevents import cloudevent_headers
from hub.wire.publishing import event_message
from hub.wire.topics import LIFEEVENTS_TOPIC, REJECTED_TOPIC, notify_topic
from tests import avro_bytes, samples
from tests.avro_bytes import text, varint
from tests.keyring import signer

from .harness import PUBLISHER, Harness, address_payload, signed_record

pytestmark = pytest.mark.integration

ADDRESS_CHANGED_ID = 1  # schemas/catalog.json
PROVINCE_BC = 1  # index of BC in ca.tellonce.common.Province
# Personal data carried by the bad records; none of it may reach a rejection.
SUBJECT = "SBC-PRIV-4242"
STREET = "77 Confidential Crescent"
MUNICIPALITY = "Secretville"
POSTAL_CODE = "V5K 0A1"
PERSONAL = (SUBJECT, STREET, MUNICIPALITY, POSTAL_CODE)


def framed(body: bytes, schema_id: int = ADDRESS_CHANGED_ID) -> bytes:
    return avro_bytes.framed(body, schema_id)


def address_body(*, province: int = PROVINCE_BC, lines: int | None = None) -> bytes:
    """An AddressChanged body written by hand, so each fault sits exactly where we want it."""
    head = text(SUBJECT) + varint((date(2025, 1, 1) - date(1970, 1, 1)).days)
    if lines is not None:  # a bare block count, with no items after it
        return head + varint(lines)
    new_address = varint(1) + text(STREET) + varint(0) + text(MUNICIPALITY)
    new_address += varint(province) + text(POSTAL_CODE)
    return head + new_address + varint(0)  # mailing_address: union branch 0, null


def test_malformed_records_are_rejected_and_do_not_block(harness: Harness, tmp_path: Path) -> None:
    """Bad records are rejected by reason, without personal data; the good one behind them flows."""
    harness.client({PUBLISHER: SUBJECT, "cra-individual": "CRA-5"}, consents=["cra-individual"])
    good = address_body()
    payload = address_payload(
        SUBJECT,
        new_address=samples.address(STREET, municipality=MUNICIPALITY, postal_code=POSTAL_CODE),
        mailing_address=None,
    )
    # The hand-written body is the real encoding, so every fault below is the only fault.
    assert framed(good) == harness.app.codec.encode(
        "ca.tellonce.lifeevents.AddressChanged", payload
    )

    def headers(n: int) -> list[tuple[str, bytes]]:
        ce_type = "ca.tellonce.lifeevents.AddressChanged"
        return cloudevent_headers(
            f"bad-{n}", ce_type, harness.now, subject=SUBJECT, source=PUBLISHER
        )

    bad = [
        ("truncated", framed(good[:-4]), headers(1)),
        ("malformed_avro", framed(good[:-1] + varint(-1)), headers(2)),  # union index -1
        ("malformed_avro", framed(address_body(province=-1)), headers(3)),  # enum index -1
        ("too_many_items", framed(address_body(lines=2**40)), headers(4)),
        ("trailing_bytes", framed(good + b"\x02\x00\x00"), headers(5)),
        ("unknown_schema", framed(good, schema_id=999), headers(6)),
        ("missing_header", framed(good), [("content-type", b"application/avro")]),
        ("bad_framing", b"\x01" + framed(good)[1:], headers(8)),
        ("too_large", framed(good + b"\x00" * 70_000), headers(9)),
    ]
    _, good_value, good_headers, good_id = event_message(
        harness.app.codec,
        source=PUBLISHER,
        event_type="AddressChanged",
        payload=payload,
        at=harness.now,
        signer=signer(PUBLISHER),
    )

    producer = KafkaProducer(bootstrap_servers=harness.bootstrap, max_request_size=1_048_576)
    try:
        sent = [
            producer.send(LIFEEVENTS_TOPIC, key=key, value=value, headers=hdrs, partition=0)
            for key, value, hdrs in (signed_record((SUBJECT.encode(), v, h)) for _, v, h in bad)
        ]
        sent.append(
            producer.send(
                LIFEEVENTS_TOPIC,
                key=SUBJECT.encode(),
                value=good_value,
                headers=good_headers,
                partition=0,
            )
        )
        producer.flush()
        offsets = [future.get(timeout=10).offset for future in sent]
    finally:
        producer.close()
    assert offsets == sorted(offsets)  # the good event is behind all the bad ones

    totals = harness.run_worker(records=len(sent))
    assert (totals.rejected, totals.accepted, totals.disclosed) == (len(bad), 1, 1)

    expected = {offset: reason for offset, (reason, _, _) in zip(offsets[:-1], bad, strict=True)}
    rejected = harness.read(REJECTED_TOPIC)
    decoded = {harness.decode(r.value)["offset"]: harness.decode(r.value) for r in rejected}
    assert {offset: r["reason"] for offset, r in decoded.items()} == expected
    assert all(r["topic"] == LIFEEVENTS_TOPIC and r["partition"] == 0 for r in decoded.values())
    stored = {r.offset: r.reason for r in harness.app.store.rejections()}
    assert stored == expected

    for record in rejected:
        wire = (record.key or b"") + record.value + b"".join(v for _, v in record.headers)
        for secret in PERSONAL:
            assert secret.encode() not in wire
    for rejection in harness.app.store.rejections():
        for secret in PERSONAL:
            assert secret not in rejection.detail
    audit = list(harness.app.store.audit_records())
    assert harness.app.verify_audit().ok
    assert not [s for s in PERSONAL for a in audit if s in json.dumps(a.data)]

    (event,) = harness.app.store.events()
    assert (event.event_id, event.offset) == (good_id, offsets[-1])
    drop = tmp_path / "drop"
    delivered = harness.run_connectors({"cra-individual": ("filedrop", {"directory": str(drop)})})
    assert delivered["cra-individual"].delivered == 1
    (notice,) = (json.loads(p.read_text(encoding="utf-8")) for p in drop.glob("*.json"))
    assert (notice["event_id"], notice["subject_id"]) == (good_id, "CRA-5")
    assert len(harness.read(notify_topic("cra-individual"))) == 1
