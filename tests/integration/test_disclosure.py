"""Consent-checked disclosure end to end: publisher -> hub -> notify topics -> connectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from connectors.sqltable import staging_table
from hub.model import DecisionOutcome
from hub.wire.topics import RECEIPTS_TOPIC, notify_topic

from .harness import EVENT_TYPE, PUBLISHER, Harness, address, address_payload

pytestmark = pytest.mark.integration


def test_consenting_recipients_get_exactly_their_fields(
    harness: Harness, staging_url: str, tmp_path: Path
) -> None:
    """Each consenting recipient receives only its directory fields, under its own local id."""
    directory = harness.app.directory
    harness.client(
        {PUBLISHER: "SBC-1", "cra-individual": "CRA-1", "bc-msp": "MSP-1", "esdc-cpp": "CPP-1"},
        consents=["cra-individual", "bc-msp"],
    )
    payload = address_payload(
        "SBC-1",
        new_address=address("42 Harbour Rd", "Victoria"),
        mailing_address=address("PO Box 7", "Victoria"),
    )
    (event_id,) = harness.publish([payload])

    totals = harness.run_worker(records=1)
    recipients = directory.recipients_of(EVENT_TYPE, origin=PUBLISHER)
    assert (totals.accepted, totals.disclosed, totals.withheld) == (1, 2, len(recipients) - 2)

    decisions = {d.recipient: d for d in harness.app.store.decisions()}
    assert set(decisions) == {p.id for p in recipients}
    assert decisions["esdc-cpp"].outcome is DecisionOutcome.WITHHELD
    assert decisions["esdc-cpp"].reason == "no_consent"
    assert harness.read(notify_topic("esdc-cpp")) == []

    # On the wire: keyed by the recipient's id, withheld fields null, not just absent.
    (msp_wire,) = harness.read(notify_topic("bc-msp"))
    assert msp_wire.key == b"MSP-1"
    assert harness.decode(msp_wire.value)["mailing_address"] is None

    drop = tmp_path / "cra-drop"
    delivered = harness.run_connectors(
        {
            "cra-individual": ("filedrop", {"directory": str(drop)}),
            "bc-msp": ("sqltable", {"url": staging_url}),
        }
    )
    assert {r: t.delivered for r, t in delivered.items()} == {"cra-individual": 1, "bc-msp": 1}

    (cra_file,) = drop.glob("*.json")
    cra = json.loads(cra_file.read_text(encoding="utf-8"))
    cra_fields = directory.program("cra-individual").subscriptions[EVENT_TYPE].fields
    assert cra["subject_id"] == "CRA-1"
    assert cra["event_id"] == event_id
    assert cra["notification_id"] == decisions["cra-individual"].notification_id
    assert set(cra["fields"]) == set(cra_fields)
    assert cra["fields"]["new_address"] == payload["new_address"]
    assert cra["fields"]["mailing_address"] == payload["mailing_address"]

    engine = create_engine(staging_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            rows = list(connection.execute(select(staging_table())))
    finally:
        engine.dispose()
    (row,) = rows
    msp = json.loads(row.body)
    msp_fields = directory.program("bc-msp").subscriptions[EVENT_TYPE].fields
    assert row.subject_id == "MSP-1"
    assert row.notification_id == decisions["bc-msp"].notification_id
    assert set(msp["fields"]) == set(msp_fields)
    assert "mailing_address" not in msp["fields"]

    receipts = [harness.decode(r.value) for r in harness.read(RECEIPTS_TOPIC)]
    assert sorted((r["recipient"], r["notification_id"], r["status"]) for r in receipts) == sorted(
        (recipient, decisions[recipient].notification_id, "DELIVERED")
        for recipient in ("cra-individual", "bc-msp")
    )


def test_withdrawn_consent_stops_later_disclosures(harness: Harness) -> None:
    """A withdrawal recorded before an event is processed withholds it; earlier ones stand."""
    person = harness.client(
        {PUBLISHER: "SBC-2", "cra-individual": "CRA-2"}, consents=["cra-individual"]
    )
    (first,) = harness.publish([address_payload("SBC-2")])
    assert harness.run_worker(records=1).disclosed == 1

    withdrawal = harness.withdraw(person, "cra-individual")
    (second,) = harness.publish([address_payload("SBC-2", new_address=address("9 Elm St"))])
    totals = harness.run_worker(records=1)
    assert (totals.accepted, totals.disclosed) == (1, 0)

    cra = {d.event_id: d for d in harness.app.store.decisions() if d.recipient == "cra-individual"}
    assert cra[first].outcome is DecisionOutcome.DISCLOSED
    assert cra[second].outcome is DecisionOutcome.WITHHELD
    assert cra[second].reason == "consent_withdrawn"
    assert cra[second].consent_revision == withdrawal
    assert cra[second].notification_id is None
    (notice,) = harness.read(notify_topic("cra-individual"))
    assert harness.decode(notice.value)["event_id"] == first
