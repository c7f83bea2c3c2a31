"""Signed consent events on the real broker (SQLite and PostgreSQL): with signatures required,
the hub applies a portal's consent change or erasure request only when a key the directory
lists for that portal signed it; forgeries become rejections with their reason and change
nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from hub.adapters.record_keys import RecordKey
from hub.consents.notices import load_notices
from hub.processing.consent_events import consent_message, erasure_message
from hub.wire.topics import CONSENT_TOPIC, REJECTED_TOPIC

from .harness import EVENT_TYPE, Harness, Record, send_all

pytestmark = pytest.mark.integration

PORTAL = "canada-ca-portal"
SUBJECT = "GCKEY-SIGNED"
NOTICE = load_notices().latest()


def grant(harness: Harness, ce_id: str, signer: RecordKey | None) -> Record:
    record = {
        "subject_id": SUBJECT,
        "recipient": "cra-individual",
        "event_types": [EVENT_TYPE],
        "state": "GIVEN",
        "purpose": "tell-us-once: update the recipient's records after a life event",
        "legal_basis": "consent of the individual (Privacy Act, s. 8(1))",
        "notice_version": NOTICE.version,
        "notice_hash": NOTICE.sha256,
        "channel": "online",
        "actor": "client",
        "recorded_at": harness.now - timedelta(minutes=5),
        "expires_at": None,
    }
    key, value, headers, _ = consent_message(
        harness.app.codec,
        source=PORTAL,
        record=record,
        at=harness.now,
        event_id=ce_id,
        signer=signer,
    )
    return key, value, headers


def erase(harness: Harness, ce_id: str, signer: RecordKey | None) -> Record:
    record: dict[str, Any] = {
        "subject_id": SUBJECT,
        "channel": "online",
        "actor": "client",
        "recorded_at": harness.now - timedelta(minutes=5),
    }
    key, value, headers, _ = erasure_message(
        harness.app.codec,
        source=PORTAL,
        record=record,
        at=harness.now,
        event_id=ce_id,
        signer=signer,
    )
    return key, value, headers


def test_forged_consent_events_are_refused_and_the_signed_one_applies(harness: Harness) -> None:
    """A grant unsigned or signed by an unlisted key, and an unsigned erasure request, each
    "from" the portal: refused with their reason on the rejected topic, no consent recorded and
    nobody erased; the grant signed by the portal's listed key is applied."""
    app = harness.app
    listed, stranger = RecordKey.generate(), RecordKey.generate()
    portal = app.directory.program(PORTAL)
    app.directory = app.directory.with_program(
        portal.with_keys(listed.directory_entry(harness.now - timedelta(days=1)))
    )
    person = harness.client({PORTAL: SUBJECT, "cra-individual": "CRA-SIGNED"})
    forged = {
        "unsigned": grant(harness, "c-1", None),
        "unknown_key": grant(harness, "c-2", stranger),
        "unsigned erasure": erase(harness, "e-1", None),
    }
    offsets = send_all(harness, CONSENT_TOPIC, [*forged.values(), grant(harness, "c-3", listed)])

    harness.run_worker_until(lambda: harness.consumed(CONSENT_TOPIC) == len(offsets))

    reasons = ["unsigned", "unknown_key", "unsigned"]
    assert [(r.offset, r.reason) for r in app.store.rejections()] == list(
        zip(offsets[:3], reasons, strict=True)
    )
    refused = [harness.decode(r.value) for r in harness.read(REJECTED_TOPIC)]
    assert [(r["offset"], r["reason"]) for r in refused] == list(
        zip(offsets[:3], reasons, strict=True)
    )
    assert app.store.erasures() == {}
    history = app.consent().show(person).history[("cra-individual", EVENT_TYPE)]
    assert len(history) == 1  # the signed grant alone
    assert app.verify_audit().ok
