"""Erasure on a real broker and store (SQLite and PostgreSQL), from the command line and from a
portal: notices in flight refused then dead-lettered with --force, later events withheld as
erased, and the audit log still verifying and reconciling."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from hub.audit.oversight import reconcile
from hub.consents.notices import load_notices
from hub.model import DecisionOutcome
from hub.privacy.erasure import ERASURE_SINK
from hub.processing.consent_events import consent_message, erasure_message
from hub.wire.topics import CONSENT_TOPIC, LIFEEVENTS_TOPIC, notify_topic
from tests.e2e.conftest import run
from tests.keyring import signer

from .harness import EVENT_TYPE, PUBLISHER, Harness, address, address_payload

pytestmark = pytest.mark.integration

PORTAL = "canada-ca-portal"
NOTICE = load_notices().latest()


def test_erase_from_the_command_line(harness: Harness) -> None:
    """person erase refuses while two notices await receipts (exit 2, how many, --force),
    then --force dead-letters them and erases; a later event is withheld as erased; audit
    verify, reconcile, report, consent show and grant say what a user must see."""
    app = harness.app
    ids = {PUBLISHER: "SBC-ERASE", "cra-individual": "CRA-ERASE", "bc-msp": "MSP-ERASE"}
    person = harness.client(ids, consents=("cra-individual", "bc-msp"))
    ref = f"{PUBLISHER}:SBC-ERASE"
    (first,) = harness.publish([address_payload("SBC-ERASE")])
    assert harness.run_worker(1).disclosed == 2  # published; no connector runs: no receipt
    env = harness.env()

    refused = run("person", "erase", ref, env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.startswith("tellonce: 2 notices about this person have no delivery")
    assert "--force" in refused.stderr
    assert app.store.erasures() == {}

    forced = run("person", "erase", ref, "--force", "--json", env=env)
    assert forced.returncode == 0, forced.stderr
    erased = json.loads(forced.stdout)
    notices = {d.notification_id for d in app.store.decisions() if d.notification_id}
    assert (erased["person"], erased["links"], set(erased["dead_lettered"])) == (
        person,
        3,
        notices,
    )
    deliveries = app.store.deliveries()
    assert {(d.status, d.sink) for d in deliveries} == {("dead_lettered", ERASURE_SINK)}
    assert set(app.store.erasures()) == {person}

    (later,) = harness.publish([address_payload("SBC-ERASE", new_address=address("9 After St"))])
    assert harness.run_worker(1).accepted == 1
    after = [d for d in app.store.decisions() if d.event_id == later]
    assert after
    assert {(d.outcome, d.reason) for d in after} == {(DecisionOutcome.WITHHELD, "erased")}
    assert len(harness.read(notify_topic("bc-msp"))) == 1  # the first event's notice only

    assert run("audit", "checkpoint", env=env).returncode == 0
    verified = run("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stderr
    reconciled = run("audit", "reconcile", "--json", env=env)
    assert reconciled.returncode == 0, reconciled.stdout
    tallies = {t["fact"]: t for t in json.loads(reconciled.stdout)["tallies"]}
    assert (tallies["erased persons"]["leaves"], tallies["dead letters"]["leaves"]) == (1, 2)

    report = run("audit", "report", "--person", ref, "--format", "json", env=env)
    assert report.returncode == 0, report.stderr
    rows = json.loads(report.stdout)["rows"]
    assert len(rows) == len(app.store.decisions())
    assert all(row["erased"] for row in rows)
    shown = run("consent", "show", ref, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "erased" in shown.stdout
    grant = run("consent", "grant", ref, "cra-individual", EVENT_TYPE, env=env)
    assert grant.returncode == 2
    assert "was erased" in grant.stderr
    for output in (forced.stdout, report.stdout, shown.stdout, grant.stderr, refused.stderr):
        assert not [local_id for local_id in ids.values() if local_id in output]
    assert first not in report.stdout  # events are named by keyed hashes


def test_erase_request_from_a_portal(harness: Harness) -> None:
    """An ErasureRequested on the consent topic erases the client with their notice in
    flight dead-lettered; a later portal grant is rejected as erased; the audit holds."""
    app = harness.app
    person = harness.client(
        {PORTAL: "GCKEY-ERASE", PUBLISHER: "SBC-PORTAL", "cra-individual": "CRA-PORTAL"},
        consents=("cra-individual",),
    )
    harness.publish([address_payload("SBC-PORTAL")])
    assert harness.run_worker(1).disclosed == 1
    asked = harness.now - timedelta(minutes=1)
    erase = erasure_message(
        app.codec,
        source=PORTAL,
        record={
            "subject_id": "GCKEY-ERASE",
            "channel": "online",
            "actor": "client",
            "recorded_at": asked,
        },
        at=harness.now,
        signer=signer(PORTAL),
    )
    grant = consent_message(
        app.codec,
        source=PORTAL,
        record={
            "subject_id": "GCKEY-ERASE",
            "recipient": "bc-msp",
            "event_types": [EVENT_TYPE],
            "state": "GIVEN",
            "purpose": "tell-us-once: update the recipient's records after a life event",
            "legal_basis": "consent of the individual (Privacy Act, s. 8(1))",
            "notice_version": NOTICE.version,
            "notice_hash": NOTICE.sha256,
            "channel": "online",
            "actor": "client",
            "recorded_at": asked + timedelta(seconds=30),
            "expires_at": None,
        },
        at=harness.now,
        signer=signer(PORTAL),
    )
    for key, value, headers, _ in (erase, grant):
        harness.send(CONSENT_TOPIC, key, value, headers)
    harness.run_worker_until(lambda: harness.consumed(CONSENT_TOPIC) == 2)

    assert set(app.store.erasures()) == {person}
    (dead,) = app.store.deliveries()
    assert (dead.status, dead.sink) == ("dead_lettered", ERASURE_SINK)
    assert [(r.topic, r.reason) for r in app.store.rejections()] == [(CONSENT_TOPIC, "erased")]
    (leaf,) = [r.data for r in app.store.audit_records() if r.kind == "erased"]
    assert leaf["event"] == app.pseudonyms().event(PORTAL, erase[3])
    assert harness.consumed(LIFEEVENTS_TOPIC) == 1
    verdict = app.verify_audit()
    assert verdict.ok, verdict.problem
    result = reconcile(app.store, app.pseudonyms())
    assert result.ok, (result.tallies, result.problems)
