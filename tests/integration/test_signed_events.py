"""Signed life events on the real broker: with signatures required, the hub decides only on
events signed by a key the directory lists for their program; forgeries become rejections with
their reason, and the signed events behind them flow on."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from hub.adapters.record_keys import RecordKey
from hub.bootstrap import App, utc_now
from hub.config.signing_keys import ProgramKey
from hub.delivery import dead_letters
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.publishing import event_message
from hub.wire.signatures import NOTICE_CONTEXT, signed
from hub.wire.topics import (
    LIFEEVENTS_TOPIC,
    RECEIPTS_TOPIC,
    REJECTED_TOPIC,
    dlq_topic,
    notify_topic,
)

from .harness import PUBLISHER, Harness, Record, address_payload, send_all

pytestmark = pytest.mark.integration

VITAL_STATS = "bc-vital-statistics"


def death(n: int) -> dict[str, object]:
    return {
        "subject_id": f"VS-2026-{n:06d}",
        "date_of_death": utc_now().date() - timedelta(days=2),
        "province_of_death": "BC",
        "death_registration_number": f"2026-59-{n:06d}",
        "informant_relationship": "SPOUSE",
    }


def record(harness: Harness, n: int, signer: RecordKey | None, *, alter: bool = False) -> Record:
    key, value, headers, _ = event_message(
        harness.app.codec,
        source=VITAL_STATS,
        event_type="DeathReported",
        payload=death(n),
        at=harness.now,
        event_id=f"vs-{n}",
    )
    if signer is not None:
        headers = signed(key, value, headers, signer)
    if alter:  # a broker operator changes the registration number after the signature
        value = value.replace(f"{n:06d}".encode(), f"{n + 1:06d}".encode())
    return key, value, headers


def list_keys(app: App, *keys: ProgramKey) -> None:
    """List ``keys`` for the vital statistics agency; signatures are required (the default)."""
    app.directory = app.directory.with_program(app.directory.program(VITAL_STATS).with_keys(*keys))


def test_forged_and_altered_events_are_refused_and_signed_ones_flow(harness: Harness) -> None:
    """Unsigned, signed by an unlisted key, by a retired key, or altered after signing: each
    refused with its reason on the rejected topic and nothing decided for it; events signed
    by either key of a rotation's overlap are decided."""
    retired, current, successor, stranger = (RecordKey.generate() for _ in range(4))
    now = harness.now
    list_keys(
        harness.app,
        retired.directory_entry(now - timedelta(days=60), now - timedelta(days=1)),
        current.directory_entry(now - timedelta(days=30), now + timedelta(days=1)),
        successor.directory_entry(now - timedelta(hours=1)),
    )
    forged = {
        "unsigned": record(harness, 1, None),
        "unknown_key": record(harness, 2, stranger),
        "key_expired": record(harness, 3, retired),
        "bad_signature": record(harness, 4, current, alter=True),
    }
    good = [record(harness, 5, current), record(harness, 6, successor)]
    offsets = send_all(harness, LIFEEVENTS_TOPIC, [*forged.values(), *good])

    totals = harness.run_worker(records=len(offsets))

    assert (totals.rejected, totals.accepted) == (4, 2)
    refused = [harness.decode(r.value) for r in harness.read(REJECTED_TOPIC)]
    by_offset = {r["offset"]: r for r in refused}
    assert {o: r["reason"] for o, r in by_offset.items()} == dict(
        zip(offsets[:4], forged, strict=True)
    )
    assert all(r["ce_source"] == VITAL_STATS for r in refused)
    assert {e.event_id for e in harness.app.store.events()} == {"vs-5", "vs-6"}
    decided = {d.event_id for d in harness.app.store.decisions()}
    assert decided == {"vs-5", "vs-6"}  # withheld (nobody linked), but decided
    assert harness.app.verify_audit().ok


def test_connectors_deliver_only_the_hubs_signed_notices(harness: Harness, tmp_path: Path) -> None:
    """The hub signs each notice with its key; a connector that requires signed notices (the
    default) and finds the hub's key in its directory delivers the hub's notice, and dead-letters a
    DeathNotice written straight onto its topic (unsigned, or signed by another key) with the
    reason, never delivering it."""
    app = harness.app
    hub_entry = app.hub_key_entry(harness.now - timedelta(minutes=1))
    app.directory = app.directory.with_hub_keys(hub_entry)
    harness.client({PUBLISHER: "SBC-1", "cra-individual": "CRA-1"}, consents=["cra-individual"])
    (event_id,) = harness.publish([address_payload("SBC-1")])
    harness.run_worker(records=1)
    notice = harness.read(notify_topic("cra-individual"))[0]
    assert dict(notice.headers)["ce_signaturekey"].decode() == hub_entry.id

    forged_value = app.codec.encode(
        "ca.tellonce.notify.DeathNotice",
        {
            "notification_id": "00000000-0000-5000-8000-000000000001",
            "recipient": "cra-individual",
            "subject_id": "CRA-1",
            "event_id": "forged",
            "event_source": VITAL_STATS,
            "event_time": harness.now,
            "disclosed_fields": ["date_of_death"],
            "consent_revision": "0" * 64,
            "date_of_death": utc_now().date(),
        },
    )
    forged_headers = cloudevent_headers(
        "00000000-0000-5000-8000-000000000001",
        "ca.tellonce.notify.DeathNotice",
        harness.now,
        subject="CRA-1",
    )
    stranger = RecordKey.generate()
    send_all(
        harness,
        notify_topic("cra-individual"),
        [
            (b"CRA-1", forged_value, forged_headers),
            (
                b"CRA-1",
                forged_value,
                signed(b"CRA-1", forged_value, forged_headers, stranger, NOTICE_CONTEXT),
            ),
        ],
        partition=notice.partition,
    )
    drop = tmp_path / "drop"
    totals = harness.run_connectors({"cra-individual": ("filedrop", {"directory": str(drop)})})

    assert (totals["cra-individual"].delivered, totals["cra-individual"].failed) == (1, 2)
    (delivered,) = (json.loads(p.read_text(encoding="utf-8")) for p in drop.glob("*.json"))
    assert delivered["event_id"] == event_id
    letters = harness.read(dlq_topic("cra-individual"))
    reasons = sorted(dict(r.headers)[dead_letters.MESSAGE].decode().split(":")[0] for r in letters)
    assert reasons == ["unknown_key", "unsigned"]


def test_the_hubs_notice_copied_onto_another_recipients_topic_is_not_delivered(
    harness: Harness, tmp_path: Path
) -> None:
    """The hub's genuine, signed notice for cra-individual copied byte for byte onto bc-msp's
    topic (as a broker operator could): bc-msp's connector dead-letters it as misdirected,
    delivers nothing and sends no receipt, while cra-individual's connector delivers it."""
    harness.client({PUBLISHER: "SBC-2", "cra-individual": "CRA-2"}, consents=["cra-individual"])
    harness.publish([address_payload("SBC-2")])
    harness.run_worker(records=1)
    (notice,) = harness.read(notify_topic("cra-individual"))
    send_all(harness, notify_topic("bc-msp"), [(notice.key, notice.value, list(notice.headers))])

    cra, msp = tmp_path / "cra", tmp_path / "msp"
    totals = harness.run_connectors(
        {
            "cra-individual": ("filedrop", {"directory": str(cra)}),
            "bc-msp": ("filedrop", {"directory": str(msp)}),
        }
    )

    assert (totals["bc-msp"].delivered, totals["bc-msp"].failed) == (0, 1)
    assert not list(msp.glob("*.json"))
    (letter,) = harness.read(dlq_topic("bc-msp"))
    assert dict(letter.headers)[dead_letters.CLASS] == b"MisdirectedNotice"
    assert dict(letter.headers)[dead_letters.MESSAGE].startswith(b"misdirected:")
    assert (totals["cra-individual"].delivered, len(list(cra.glob("*.json")))) == (1, 1)
    receipts = [harness.decode(r.value)["recipient"] for r in harness.read(RECEIPTS_TOPIC)]
    assert receipts == ["cra-individual"]
