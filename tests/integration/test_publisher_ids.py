"""Publisher-supplied ids on the real broker: audit leaves and rejection rows keep their keyed
hashes, never the ids as sent, and the log still reconciles and verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.audit.oversight import disclosure_rows, reconcile
from hub.bootstrap import App
from hub.config.settings import AuditSettings
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.publishing import event_message
from hub.wire.topics import LIFEEVENTS_TOPIC, RECEIPTS_TOPIC, REJECTED_TOPIC

from .harness import EVENT_TYPE, PUBLISHER, Harness, address_payload, settings_for

pytestmark = pytest.mark.integration

SUBJECT = "SBC-CANARY-5150"  # key and ce_subject
GOOD_ID = "ce-CANARY-good-7"
REFUSED_ID = "ce-CANARY-refused-8"  # its ce_subject names someone else
STRANGER = "CANARY-source-9"  # a ce_source that is no program
CANARIES = ("CANARY", SUBJECT, GOOD_ID, REFUSED_ID, STRANGER, "SBC-CANARY-OTHER")


def test_leaves_and_rejections_keep_keyed_hashes_and_still_reconcile(
    harness: Harness, store_url: str, tmp_path: Path
) -> None:
    """No ce_id, ce_subject or unknown ce_source as sent in any leaf or rejection row; the log
    reconciles and verifies; the hash is stable under the key and bound to it."""
    app = harness.app
    harness.client({PUBLISHER: SUBJECT, "bc-msp": "MSP-5150"}, consents=["bc-msp"])
    harness.publish([address_payload(SUBJECT)], event_id=GOOD_ID)
    key, value, _, _ = event_message(
        app.codec,
        source=PUBLISHER,
        event_type=EVENT_TYPE,
        payload=address_payload(SUBJECT),
        at=harness.now,
    )
    ce_type = "ca.tellonce.lifeevents.AddressChanged"
    for ce_id, source, subject in (
        (REFUSED_ID, PUBLISHER, "SBC-CANARY-OTHER"),
        ("ce-3", STRANGER, SUBJECT),
    ):
        headers = cloudevent_headers(ce_id, ce_type, harness.now, subject=subject, source=source)
        harness.send_signed(LIFEEVENTS_TOPIC, key, value, headers)
    totals = harness.run_worker(records=3)
    assert (totals.accepted, totals.rejected, totals.disclosed) == (1, 2, 1)
    delivered = harness.run_connectors({"bc-msp": ("filedrop", {"directory": str(tmp_path)})})
    assert delivered["bc-msp"].delivered == 1
    receipts = len(harness.read(RECEIPTS_TOPIC))
    harness.run_worker_until(lambda: harness.consumed(RECEIPTS_TOPIC) >= receipts)
    assert harness.checkpoint() is not None

    kept = [json.dumps(r.data) for r in app.store.audit_records()]
    kept += [repr(r) for r in app.store.rejections()]
    assert [c for c in CANARIES for text in kept if c in text] == []
    assert {r.kind for r in app.store.audit_records()} >= {"accepted", "rejected", "delivered"}

    # The publisher gets its own ids back on the rejected topic, to know which event it was.
    wire = sorted(harness.decode(r.value)["ce_id"] for r in harness.read(REJECTED_TOPIC))
    assert wire == sorted([REFUSED_ID, "ce-3"])

    verdict = app.verify_audit()
    assert verdict.ok, verdict.problem
    result = reconcile(app.store, app.pseudonyms())
    assert result.ok, (result.tallies, result.problems)

    # Another process with the same settings computes the same hashes: leaves are found.
    again = App.from_settings(settings_for(store_url, harness.bootstrap))
    try:
        ids = again.pseudonyms(create=False)
        accepted = [r.data["event"] for r in app.store.audit_records() if r.kind == "accepted"]
        assert accepted == [ids.event(PUBLISHER, GOOD_ID)]
        rejected = {r.data["event_id"] for r in app.store.audit_records() if r.kind == "rejected"}
        assert rejected == {ids.of(REFUSED_ID), ids.of("ce-3")}
        assert {r.source for r in app.store.rejections()} == {PUBLISHER, ids.of(STRANGER)}
        rows = disclosure_rows(again.store, ids)
        assert all(row.leaf_index >= 0 for row in rows)
    finally:
        again.close()

    # Under another key nothing matches: the hashes are bound to the hub's key.
    audit = AuditSettings(
        signing_key=app.settings.audit.signing_key, pseudonym_key=tmp_path / "other.key"
    )
    settings = settings_for(store_url, harness.bootstrap).model_copy(update={"audit": audit})
    stranger = App.from_settings(settings)
    try:
        assert reconcile(stranger.store, stranger.pseudonyms()).problems
    finally:
        stranger.close()
