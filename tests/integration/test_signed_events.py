"""Signed life events on the real broker: with signatures required, the hub decides only on
events signed by a key the directory lists for their program; forgeries become rejections with
their reason, and the signed events behind them flow on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.adapters.record_keys import RecordKey
from hub.bootstrap import App, utc_now
from hub.config.signing_keys import ProgramKey
from hub.wire.publishing import event_message
from hub.wire.signatures import event_digest, signature_headers
from hub.wire.topics import LIFEEVENTS_TOPIC, REJECTED_TOPIC

from .harness import Harness, Record, send_all, tuned

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
        headers += signature_headers(signer.key_id, signer.sign(event_digest(key, value, headers)))
    if alter:  # a broker operator changes the registration number after the signature
        value = value.replace(f"{n:06d}".encode(), f"{n + 1:06d}".encode())
    return key, value, headers


def require_signatures(app: App, *keys: ProgramKey) -> None:
    app.settings = tuned(app.settings, hub={"require_signatures": True})
    app.directory = app.directory.with_program(app.directory.program(VITAL_STATS).with_keys(*keys))


def test_forged_and_altered_events_are_refused_and_signed_ones_flow(harness: Harness) -> None:
    """Unsigned, signed by an unlisted key, by a retired key, or altered after signing: each
    refused with its reason on the rejected topic and nothing decided for it; events signed
    by either key of a rotation's overlap are decided."""
    retired, current, successor, stranger = (RecordKey.generate() for _ in range(4))
    now = harness.now
    require_signatures(
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
