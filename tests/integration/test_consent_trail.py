"""The consent trail on a real broker and store: portal consent changes on the consent topic
decide later disclosures, signed consent receipts say whether they still hold, and the
disclosure report answers "who got my data?" with proofs and without personal values."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from consent.model import ConsentState, ConsentTerms, Evidence
from hub.adapters.jws import RECEIPT_TYPE, read_compact
from hub.adapters.signing import FileSigner
from hub.audit import merkle
from hub.audit.oversight import correction_list, disclosure_rows, prove_inclusion, reconcile
from hub.audit.reports import ReportScope, render_disclosures
from hub.consents.notices import load_notices
from hub.consents.receipts import read_claims, receipt_status
from hub.errors import VerificationError
from hub.model import DecisionOutcome, Headers
from hub.processing.consent_events import consent_message
from hub.wire.publishing import publish_event
from hub.wire.topics import CONSENT_TOPIC, LIFEEVENTS_TOPIC, REJECTED_TOPIC, notify_topic
from tests.keyring import signer

from .harness import EVENT_TYPE, PUBLISHER, Harness, address, address_payload

pytestmark = pytest.mark.integration

PORTAL = "canada-ca-portal"
ConsentMessage = tuple[bytes, bytes, Headers, str]  # as consent_message returns it
NOTICE = load_notices().latest()
FRENCH_HEADINGS = [
    "Date de la décision",
    "Type d'événement",
    "Événement",
    "Destinataire",
    "Résultat",
    "Motif",
    "Champs communiqués",
    "Révision du consentement",
    "État de la livraison",
    "Date de livraison",
    "Indice de la feuille",
    "Taille du point de contrôle",
    "Personne effacée",
    "Preuve d'inclusion",
]


def portal_record(
    subject: str, recipient: str, state: str, recorded_at: datetime
) -> dict[str, Any]:
    """A ConsentChanged record as the portal publishes it for a client's change."""
    return {
        "subject_id": subject,
        "recipient": recipient,
        "event_types": [EVENT_TYPE],
        "state": state,
        "purpose": "tell-us-once: update the recipient's records after a life event",
        "legal_basis": "consent of the individual (Privacy Act, s. 8(1))",
        "notice_version": NOTICE.version if state == "GIVEN" else None,
        "notice_hash": NOTICE.sha256 if state == "GIVEN" else None,
        "channel": "online",
        "actor": "client",
        "recorded_at": recorded_at,
        "expires_at": None,
    }


def publish_consent(harness: Harness, messages: list[ConsentMessage]) -> None:
    """Send portal consent changes in order through one kafka-python producer."""
    producer = harness.app.producer(harness.kafka)
    try:
        for key, value, headers, _ in messages:
            producer.send(CONSENT_TOPIC, key, value, headers)
        producer.flush()
    finally:
        producer.close()


def test_portal_consent_events_decide_later_disclosures(harness: Harness) -> None:
    """Portal grants and withdrawals on the consent topic apply once, in order, and decide."""
    app = harness.app
    harness.client({PORTAL: "GCKEY-A", PUBLISHER: "SBC-A", "cra-individual": "CRA-A"})
    harness.client({PORTAL: "GCKEY-B", PUBLISHER: "SBC-B", "bc-msp": "MSP-B"})

    def change(subject: str, recipient: str, state: str, minutes_ago: int) -> ConsentMessage:
        recorded_at = harness.now - timedelta(minutes=minutes_ago)
        record = portal_record(subject, recipient, state, recorded_at)
        return consent_message(
            app.codec, source=PORTAL, record=record, at=harness.now, signer=signer(PORTAL)
        )

    grant_a = change("GCKEY-A", "cra-individual", "GIVEN", 10)
    withdraw_a = change("GCKEY-A", "cra-individual", "WITHDRAWN", 5)
    grant_b = change("GCKEY-B", "bc-msp", "GIVEN", 10)
    unlinked = change("GCKEY-NOBODY", "cra-individual", "GIVEN", 10)
    # grant_b twice in one go; grant_a again after its withdrawal, in a later batch.
    first = [grant_a, withdraw_a, grant_b, grant_b, unlinked]
    publish_consent(harness, first)

    life_events: list[str] = []

    def done() -> bool:
        """Once the first consent changes are committed, publish the life events (and the
        late repeat of grant_a) into the same worker run; done when all are handled."""
        if harness.consumed(CONSENT_TOPIC) < len(first):
            return False
        if not life_events:
            publish_consent(harness, [grant_a])
            life_events.extend(
                harness.publish(
                    [
                        address_payload("SBC-A", new_address=address("12 Withdrawn Way")),
                        address_payload("SBC-B", new_address=address("34 Granted Cres")),
                    ]
                )
            )
            return False
        return (
            harness.consumed(CONSENT_TOPIC) == len(first) + 1
            and harness.consumed(LIFEEVENTS_TOPIC) == 2
        )

    totals = harness.run_worker_until(done)
    assert (totals.accepted, totals.rejected) == (2, 0)  # life events; consent has its own

    # A's grant then withdrawal, applied in order; the late repeat of the grant was skipped.
    service = app.consent()
    a_history = service.show(f"{PORTAL}:GCKEY-A").history
    assert list(a_history) == [("cra-individual", EVENT_TYPE)]
    grant, withdrawal = a_history[("cra-individual", EVENT_TYPE)]
    assert (grant.state, withdrawal.state) == (ConsentState.GIVEN, ConsentState.WITHDRAWN)
    assert withdrawal.prev_hash == grant.hash
    assert grant.evidence.notice_version == NOTICE.version
    (b_grant,) = service.show(f"{PORTAL}:GCKEY-B").history[("bc-msp", EVENT_TYPE)]
    assert b_grant.state is ConsentState.GIVEN
    assert Counter(r.state for r in app.store.consents()) == {
        ConsentState.GIVEN: 2,
        ConsentState.WITHDRAWN: 1,
    }

    # The later life events: A's withheld on the withdrawal, B's disclosed on the grant.
    sbc_a, sbc_b = life_events
    decisions = {(d.event_id, d.recipient): d for d in app.store.decisions()}
    withheld = decisions[(sbc_a, "cra-individual")]
    assert (withheld.outcome, withheld.reason) == (DecisionOutcome.WITHHELD, "consent_withdrawn")
    assert withheld.consent_revision == withdrawal.hash
    disclosed = decisions[(sbc_b, "bc-msp")]
    assert (disclosed.outcome, disclosed.consent_revision) == (
        DecisionOutcome.DISCLOSED,
        b_grant.hash,
    )
    assert harness.read(notify_topic("cra-individual")) == []
    (notice,) = harness.read(notify_topic("bc-msp"))
    assert notice.key == b"MSP-B"
    assert harness.decode(notice.value)["notification_id"] == disclosed.notification_id

    # The unlinked client's change is the only rejection, and names no one.
    rejections = app.store.rejections()
    assert [(r.topic, r.reason) for r in rejections] == [(CONSENT_TOPIC, "unknown_person")]
    (rejection,) = rejections
    # The stored row keeps the keyed hash of the portal's ce_id; the portal gets its own back.
    assert (rejection.source, rejection.event_id) == (PORTAL, app.pseudonyms().of(unlinked[3]))
    (rejected,) = harness.read(REJECTED_TOPIC)
    wire = harness.decode(rejected.value)
    assert (wire["reason"], wire["topic"], wire["ce_id"]) == (
        "unknown_person",
        CONSENT_TOPIC,
        unlinked[3],
    )
    on_wire = [rejected.key or b"", rejected.value, *(v for _, v in rejected.headers)]
    assert not any(b"GCKEY" in part for part in on_wire)
    assert "GCKEY" not in rejection.detail

    # One consent leaf per applied change, naming the portal event and no local id.
    consent_leaves = {
        r.data["event"]: r.kind for r in app.store.audit_records() if r.kind.startswith("consent_")
    }
    event = app.pseudonyms().event
    assert consent_leaves == {
        event(PORTAL, grant_a[3]): "consent_given",
        event(PORTAL, withdraw_a[3]): "consent_withdrawn",
        event(PORTAL, grant_b[3]): "consent_given",
    }
    assert not any("GCKEY" in json.dumps(r.data) for r in app.store.audit_records())
    verdict = app.verify_audit()
    assert verdict.ok, verdict.problem
    result = reconcile(app.store, app.pseudonyms())
    assert result.ok, (result.tallies, result.problems)


def test_consent_receipt_verifies_and_tracks_withdrawal(harness: Harness, tmp_path: Path) -> None:
    """A signed receipt verifies under the hub's key, is in force, and not after a withdrawal."""
    app = harness.app
    harness.client({PORTAL: "GCKEY-R", "cra-individual": "CRA-R"})
    service = app.consent()
    public_key = app.signer().public_key_pem()
    given = Evidence("online", "client", harness.now, NOTICE.version, NOTICE.sha256)
    grant = service.change(
        f"{PORTAL}:GCKEY-R",
        "cra-individual",
        [EVENT_TYPE],
        ConsentState.GIVEN,
        given,
        ConsentTerms(),
        receipt=True,
    )
    assert grant.receipt is not None

    header, claims = read_compact(grant.receipt, public_key, typ=RECEIPT_TYPE)
    assert header["kid"] == app.signer().key_id
    assert claims["iss"] == app.settings.audit.issuer
    assert claims["consent"]["state"] == "given"
    assert [r["hash"] for r in claims["consent"]["revisions"]] == [r.hash for r in grant.revisions]
    # The client keeps the receipt: no hub person id and no local id in it.
    token_text = json.dumps(claims)
    assert grant.person_id not in token_text
    assert "GCKEY-R" not in token_text
    assert "CRA-R" not in token_text
    hashes = read_claims(claims).hashes
    status = receipt_status(claims, service.status_of(hashes), harness.now)
    assert status.in_force, status.detail
    assert status.per_event_type == {EVENT_TYPE: "in_force"}

    other_key = FileSigner(tmp_path / "other-key.pem", create=True).public_key_pem()
    with pytest.raises(VerificationError, match="not by the key you gave"):
        read_compact(grant.receipt, other_key)

    withdrawn = Evidence("phone", "staff-7", harness.now + timedelta(seconds=1))
    withdrawal = service.change(
        f"{PORTAL}:GCKEY-R",
        "cra-individual",
        [EVENT_TYPE],
        ConsentState.WITHDRAWN,
        withdrawn,
        receipt=True,
    )
    assert withdrawal.receipt is not None

    # The grant's receipt still verifies, but no longer holds, and says why.
    _, claims = read_compact(grant.receipt, public_key, typ=RECEIPT_TYPE)
    status = receipt_status(claims, service.status_of(hashes), harness.now)
    assert not status.in_force
    assert status.per_event_type == {EVENT_TYPE: "withdrawn"}
    assert "no longer in force" in status.detail
    assert "withdrawn later on" in status.detail

    _, claims = read_compact(withdrawal.receipt, public_key, typ=RECEIPT_TYPE)
    assert claims["consent"]["state"] == "withdrawn"
    current = service.status_of(read_claims(claims).hashes)
    status = receipt_status(claims, current, harness.now)
    assert not status.in_force
    assert status.per_event_type == {EVENT_TYPE: "withdrawn"}
    assert "records a withdrawal" in status.detail
    assert app.verify_audit().ok


def test_disclosure_report_lists_decisions_with_proofs(harness: Harness) -> None:
    """The report lists a person's decisions with verifiable proofs and no personal values."""
    app = harness.app
    directory = app.directory
    person = harness.client(
        {PUBLISHER: "SBC-P", "cra-individual": "CRA-P", "bc-msp": "MSP-P", "esdc-cpp": "CPP-P"},
        consents=["cra-individual", "bc-msp"],
    )
    service = app.consent()
    service.record(person, "esdc-cpp", ["NameChanged"], ConsentState.GIVEN, harness.evidence())
    harness.client({PUBLISHER: "SBC-Q", "cra-individual": "CRA-Q"}, consents=["cra-individual"])

    home = address("742 Evergreen Terrace", "Saanich") | {"postal_code": "V8X 3X4"}
    mailing = address("PO Box 5150", "Sidney")
    moved, other = harness.publish(
        [
            address_payload("SBC-P", new_address=home, mailing_address=mailing),
            address_payload("SBC-Q", new_address=address("99 Elsewhere Rd")),
        ]
    )
    producer = app.producer(harness.kafka)
    try:
        renamed = publish_event(
            producer,
            app.codec,
            source=PUBLISHER,
            event_type="NameChanged",
            payload={
                "subject_id": "SBC-P",
                "effective_date": date(2025, 2, 14),
                "given_names": "Marie-Ève",
                "family_name": "Okafor-Tremblay",
                "reason": "MARRIAGE",
            },
            at=harness.now,
            signer=signer(PUBLISHER),
        )
        producer.flush()
    finally:
        producer.close()
    assert harness.run_worker(records=3).accepted == 3
    checkpoint = harness.checkpoint()
    assert checkpoint is not None

    # The personal values did flow, to the recipients entitled to them.
    (cra_notice,) = [r for r in harness.read(notify_topic("cra-individual")) if r.key == b"CRA-P"]
    assert harness.decode(cra_notice.value)["new_address"]["lines"] == ["742 Evergreen Terrace"]
    (cpp_notice,) = harness.read(notify_topic("esdc-cpp"))
    assert harness.decode(cpp_notice.value)["given_names"] == "Marie-Ève"

    pseudonyms = app.pseudonyms()
    rows = disclosure_rows(app.store, pseudonyms, person_id=person)
    expected = {
        (pseudonyms.event(PUBLISHER, event), p.id)
        for event, event_type in ((moved, EVENT_TYPE), (renamed, "NameChanged"))
        for p in directory.recipients_of(event_type, origin=PUBLISHER)
    }
    assert {(r.event, r.recipient) for r in rows} == expected  # nothing of the other person
    assert pseudonyms.event(PUBLISHER, other) not in {r.event for r in rows}
    assert {(r.event_type, r.recipient) for r in rows if r.outcome == "disclosed"} == {
        (EVENT_TYPE, "cra-individual"),
        (EVENT_TYPE, "bc-msp"),
        ("NameChanged", "esdc-cpp"),
    }
    records = {r.index: r for r in app.store.audit_records()}
    for row in rows:
        leaf = records[row.leaf_index]
        assert (leaf.kind, leaf.data["event"], leaf.data["recipient"]) == (
            row.outcome,
            row.event,
            row.recipient,
        )
        assert row.checkpoint_size is not None
        assert row.leaf_index < row.checkpoint_size <= checkpoint.size
        proof = prove_inclusion(app.store, row.leaf_index)
        assert proof.leaf_hash == leaf.hash
        merkle.verify_inclusion(
            proof.index,
            proof.checkpoint.size,
            bytes.fromhex(proof.leaf_hash),
            [bytes.fromhex(h) for h in proof.path],
            bytes.fromhex(proof.checkpoint.root),
        )
        if row.outcome == "withheld":
            assert (row.fields, row.delivery) == ((), "not_sent")
        else:
            wanted = directory.program(row.recipient).subscriptions[row.event_type].fields
            assert set(row.fields) == set(wanted)
            assert row.delivery == "pending"  # no connector ran: not yet confirmed
    verdict = app.verify_audit()
    assert verdict.ok, verdict.problem

    scope = ReportScope(person, None, None, None, harness.now, f"{checkpoint.seq}")
    report = render_disclosures(rows, scope, fmt="csv", lang="fr")
    header, *lines = list(csv.reader(io.StringIO(report)))
    assert header == FRENCH_HEADINGS
    assert len(lines) == len(rows)
    proofs = {line[-1] for line in lines}
    assert proofs == {
        f"feuille {r.leaf_index} @ point de contrôle {r.checkpoint_size}" for r in rows
    }
    personal = [
        "Evergreen",
        "Saanich",
        "V8X 3X4",
        "PO Box 5150",
        "Sidney",
        "Marie",
        "Okafor",
        "Tremblay",
        "SBC-P",
        "CRA-P",
        "MSP-P",
        "CPP-P",
    ]
    assert [value for value in personal if value in report] == []

    corrections = correction_list(rows, directory)
    assert [(c.recipient, c.disclosures, c.event_types) for c in corrections] == [
        ("bc-msp", 1, (EVENT_TYPE,)),
        ("cra-individual", 1, (EVENT_TYPE,)),
        ("esdc-cpp", 1, ("NameChanged",)),
    ]
    assert [c.recipient_name for c in corrections] == [
        directory.program(c.recipient).name for c in corrections
    ]
    assert {c.jurisdiction for c in corrections} == {
        "Government of Canada",
        "Province of British Columbia",
    }
