"""Consent receipts: what the claims hold (and never hold), and when a receipt is in force."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consent.model import ConsentRevision, ConsentState, ConsentTerms, Evidence
from consent.rules import next_revision
from hub.adapters.jws import RECEIPT_TYPE, read_compact, sign_compact
from hub.adapters.signing import FileSigner, create_key
from hub.consents.receipts import read_claims, receipt_claims, receipt_id, receipt_status
from hub.errors import VerificationError

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
PERSON = "3d1c9a2e-5b7f-4e8a-9c0d-1f2e3a4b5c6d"
GIVEN, WITHDRAWN = ConsentState.GIVEN, ConsentState.WITHDRAWN
TYPES = ("AddressChanged", "DeathReported")


def change(
    histories: dict[str, list[ConsentRevision]],
    state: ConsentState,
    at: datetime,
    terms: ConsentTerms | None = None,
) -> list[ConsentRevision]:
    """Record one change for every event type, appending to ``histories``."""
    evidence = Evidence("online", "client", at, "2025-01", "ab" * 32)
    made = []
    for event_type in TYPES:
        revision = next_revision(
            histories.setdefault(event_type, []),
            person_id=PERSON,
            recipient="bc-msp",
            event_type=event_type,
            state=state,
            evidence=evidence,
            terms=terms,
        )
        histories[event_type].append(revision)
        made.append(revision)
    return made


def claims_for(revisions: list[ConsentRevision]) -> dict[str, object]:
    return receipt_claims(
        revisions, issuer="tellonce-hub", issued_at=T0, recipient_name="BC Medical Services Plan"
    )


def latest(histories: dict[str, list[ConsentRevision]], revisions: list[ConsentRevision]) -> dict:
    return {r.hash: histories[r.event_type][-1] for r in revisions}


def test_claims_describe_the_change_and_name_no_person() -> None:
    """Claims carry recipient, terms, notice and revision hashes, but no person or local id."""
    histories: dict[str, list[ConsentRevision]] = {}
    revisions = change(histories, GIVEN, T0, ConsentTerms(expires_at=T0 + timedelta(days=30)))
    claims = claims_for(revisions)
    consent = claims["consent"]
    assert isinstance(consent, dict)
    assert consent["event_types"] == list(TYPES)
    assert consent["notice"] == {"version": "2025-01", "sha256": "ab" * 32}
    assert consent["expires_at"] == "2025-03-31T10:00:00+00:00"
    assert [r["hash"] for r in consent["revisions"]] == [r.hash for r in revisions]
    assert claims["jti"] == receipt_id([r.hash for r in revisions])
    text = json.dumps(claims)
    assert PERSON not in text
    assert "person" not in text
    assert "local_id" not in text


def test_claims_refuse_revisions_of_different_changes() -> None:
    """A receipt covers one change: revisions with other states cannot be mixed in."""
    histories: dict[str, list[ConsentRevision]] = {}
    granted = change(histories, GIVEN, T0)
    withdrawn = change(histories, WITHDRAWN, T0 + timedelta(hours=1))
    with pytest.raises(ValueError, match="one change"):
        claims_for([granted[0], withdrawn[1]])


def test_receipt_of_the_latest_grant_is_in_force() -> None:
    """Every revision still latest and not expired: in force, until the expiry date."""
    histories: dict[str, list[ConsentRevision]] = {}
    revisions = change(histories, GIVEN, T0, ConsentTerms(expires_at=T0 + timedelta(days=30)))
    status = receipt_status(claims_for(revisions), latest(histories, revisions), T0)
    assert status.in_force
    assert status.per_event_type == dict.fromkeys(TYPES, "in_force")
    assert "until 2025-03-31" in status.detail


def test_receipt_withdrawn_later_is_not_in_force() -> None:
    """A withdrawal after the grant makes its receipt not in force, naming the date."""
    histories: dict[str, list[ConsentRevision]] = {}
    revisions = change(histories, GIVEN, T0)
    change(histories, WITHDRAWN, T0 + timedelta(days=3))
    status = receipt_status(claims_for(revisions), latest(histories, revisions), T0)
    assert not status.in_force
    assert "AddressChanged: withdrawn later on 2025-03-04" in status.detail


def test_receipt_replaced_by_a_newer_grant_is_not_in_force() -> None:
    """A newer grant (new terms) supersedes the receipt of the older one."""
    histories: dict[str, list[ConsentRevision]] = {}
    revisions = change(histories, GIVEN, T0)
    change(histories, GIVEN, T0 + timedelta(days=5))
    status = receipt_status(claims_for(revisions), latest(histories, revisions), T0)
    assert not status.in_force
    assert status.per_event_type["DeathReported"] == "replaced"
    assert "replaced by a newer grant on 2025-03-06" in status.detail


def test_receipt_past_its_expiry_is_not_in_force() -> None:
    """A grant whose expiry has passed reads as expired on that date."""
    histories: dict[str, list[ConsentRevision]] = {}
    revisions = change(histories, GIVEN, T0, ConsentTerms(expires_at=T0 + timedelta(days=1)))
    status = receipt_status(
        claims_for(revisions), latest(histories, revisions), T0 + timedelta(days=2)
    )
    assert not status.in_force
    assert "expired on 2025-03-02" in status.detail


def test_receipt_unknown_to_this_hub_is_not_in_force() -> None:
    """Revisions the hub has no record of are reported as unknown."""
    histories: dict[str, list[ConsentRevision]] = {}
    revisions = change(histories, GIVEN, T0)
    status = receipt_status(claims_for(revisions), {}, T0)
    assert not status.in_force
    assert status.per_event_type == dict.fromkeys(TYPES, "unknown")
    assert "unknown to this hub" in status.detail


def test_withdrawal_receipt_is_never_in_force() -> None:
    """A receipt for a withdrawal says so, even while the withdrawal is the latest revision."""
    histories: dict[str, list[ConsentRevision]] = {}
    change(histories, GIVEN, T0)
    withdrawn = change(histories, WITHDRAWN, T0 + timedelta(days=1))
    status = receipt_status(claims_for(withdrawn), latest(histories, withdrawn), T0)
    assert not status.in_force
    assert "records a withdrawal" in status.detail


def test_claims_whose_jti_does_not_match_are_not_a_receipt() -> None:
    """Signed claims whose jti does not cover their revisions are refused as not ours."""
    histories: dict[str, list[ConsentRevision]] = {}
    claims = claims_for(change(histories, GIVEN, T0))
    claims["jti"] = "0" * 64
    with pytest.raises(VerificationError, match="not a tellonce consent receipt"):
        read_claims(claims)


def test_signed_receipt_round_trips(tmp_path: Path) -> None:
    """Claims signed as a compact JWS read back intact and judge the same."""
    key = tmp_path / "key.pem"
    create_key(key)
    signer = FileSigner(key)
    histories: dict[str, list[ConsentRevision]] = {}
    revisions = change(histories, GIVEN, T0)
    token = sign_compact(signer, claims_for(revisions))
    header, claims = read_compact(token, signer.public_key_pem(), typ=RECEIPT_TYPE)
    assert header["typ"] == RECEIPT_TYPE
    assert receipt_status(claims, latest(histories, revisions), T0).in_force
