"""Exactly-once effect: duplicates are absorbed, and a restarted hub resumes where it stopped."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from hub.adapters.sql.tables import outbox
from hub.bootstrap import App
from hub.model import DecisionOutcome
from hub.wire.topics import notify_topic

from .harness import EVENT_TYPE, PUBLISHER, Harness, address_payload, settings_for, signing, tuned

pytestmark = pytest.mark.integration

CONSENTING = ("cra-individual", "bc-msp")


def outbox_rows(app: App) -> int:
    """Every outbox row, published or not. Raw SQL because no port counts published rows
    (``outbox_backlog`` counts the unpublished ones only)."""
    with app.store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(outbox)).scalar_one())


@pytest.mark.parametrize("batch_size", [1, 200], ids=["across_batches", "in_one_batch"])
def test_exact_duplicate_has_one_effect(harness: Harness, batch_size: int) -> None:
    """The same ce_source + ce_id twice gives one event, one decision and one notice each."""
    # One record per batch: the copy meets the stored event; otherwise both meet in one batch.
    harness.app.settings = tuned(harness.app.settings, hub={"batch_size": batch_size})
    harness.client(
        {PUBLISHER: "SBC-3", "cra-individual": "CRA-3", "bc-msp": "MSP-3"}, consents=CONSENTING
    )
    payload = address_payload("SBC-3")
    (event_id,) = harness.publish([payload])
    assert harness.publish([payload], event_id=event_id) == [event_id]

    totals = harness.run_worker(records=2)
    assert (totals.accepted, totals.duplicates, totals.disclosed) == (1, 1, len(CONSENTING))

    assert [(e.source, e.event_id) for e in harness.app.store.events()] == [(PUBLISHER, event_id)]
    recipients = harness.app.directory.recipients_of(EVENT_TYPE, origin=PUBLISHER)
    per_recipient = Counter(d.recipient for d in harness.app.store.decisions())
    assert per_recipient == Counter(p.id for p in recipients)
    for recipient in CONSENTING:
        notices = [harness.decode(r.value) for r in harness.read(notify_topic(recipient))]
        assert [n["event_id"] for n in notices] == [event_id]


def test_new_worker_resumes_from_the_stored_offsets(harness: Harness) -> None:
    """A brand-new App and worker on the same store re-reads nothing it already processed."""
    harness.client({PUBLISHER: "SBC-4", "cra-individual": "CRA-4"}, consents=["cra-individual"])
    harness.publish([address_payload("SBC-4") for _ in range(3)])
    assert harness.run_worker(records=3).accepted == 3
    events_before = len(harness.app.store.events())
    outbox_before = outbox_rows(harness.app)

    fresh = signing(
        App.from_settings(settings_for(harness.app.settings.store.url, harness.bootstrap))
    )
    try:
        rerun = Harness(fresh, harness.kafka)
        (later,) = rerun.publish([address_payload("SBC-4")])
        totals = rerun.run_worker(records=None)
        # Only the new event: a re-read of the old ones would count as duplicates.
        assert (totals.accepted, totals.duplicates, totals.rejected) == (1, 0, 0)
        assert totals.published == 1
        events = fresh.store.events()
        assert len(events) == events_before + 1
        assert events[-1].event_id == later
        assert outbox_rows(fresh) == outbox_before + 1
        assert fresh.store.outbox_backlog() == 0
        decisions = fresh.store.decisions()
        assert sum(d.outcome is DecisionOutcome.DISCLOSED for d in decisions) == 4
        assert fresh.verify_audit().ok
    finally:
        fresh.close()
