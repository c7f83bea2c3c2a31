"""ConsentService on the memory store: terms, notices, expiry, audit leaves and receipts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from consent.model import ConsentState, ConsentTerms, Evidence
from consent.rules import decide_disclosure, verify_history
from hub.adapters.memory import MemoryStore
from hub.config.directory import Directory
from hub.consents.notices import load_notices
from hub.consents.service import ConsentService
from hub.errors import ConfigError, ConflictError, NotFoundError, SignerError

GIVEN, WITHDRAWN = ConsentState.GIVEN, ConsentState.WITHDRAWN
RECIPIENT = "bc-msp"
TYPE = "AddressChanged"


def unsigned(claims: dict[str, Any]) -> str:
    """Stands in for the JWS signer: the claims as JSON, so tests can read them back."""
    return json.dumps(claims)


@pytest.fixture
def service(
    store: MemoryStore, directory: Directory, clock: Callable[[], datetime]
) -> ConsentService:
    return ConsentService(store, directory, clock=clock, issue=unsigned, issuer="test-hub")


@pytest.fixture
def person(service: ConsentService, now: datetime) -> str:
    evidence = Evidence("counter", "staff-042", now - timedelta(days=2))
    person_id = service.link("bc-service-bc", "SBC-1", evidence)
    service.link(RECIPIENT, "MSP-1", evidence, to=person_id)
    return person_id


def noticed(at: datetime, channel: str = "online") -> Evidence:
    notice = load_notices().latest()
    return Evidence(channel, "client", at, notice.version, notice.sha256)


def test_old_two_argument_constructor_still_records(
    store: MemoryStore, directory: Directory, person: str, now: datetime
) -> None:
    """ConsentService(store, directory).record(...) keeps working and returns the revisions."""
    (revision,) = ConsentService(store, directory).record(
        person, RECIPIENT, [TYPE], GIVEN, Evidence("counter", "staff-1", now)
    )
    assert (revision.state, revision.seq, revision.terms) == (GIVEN, 1, ConsentTerms())


def test_grant_with_expiry_reads_expired_after_it(
    service: ConsentService, store: MemoryStore, person: str, now: datetime
) -> None:
    """A grant with an expiry discloses before it and withholds as consent_expired after it."""
    expires = now + timedelta(days=30)
    terms = ConsentTerms("benefit continuity", "Privacy Act, s. 8(1)", expires)
    service.record(person, RECIPIENT, [TYPE], GIVEN, noticed(now), terms)
    history = service.show(person).history[(RECIPIENT, TYPE)]
    before = decide_disclosure(history, recipient_linked=True, now=expires - timedelta(seconds=1))
    after = decide_disclosure(history, recipient_linked=True, now=expires)
    assert (before.send, before.reason) == (True, "consent_given")
    assert (after.send, after.reason, after.revision) == (False, "consent_expired", history[-1])
    assert store.consents()[0].evidence.notice_version == "2025-01"


def test_expiry_in_the_past_is_refused(service: ConsentService, person: str, now: datetime) -> None:
    """A grant that would already be expired is refused and nothing is recorded."""
    terms = ConsentTerms(expires_at=now - timedelta(minutes=1))
    with pytest.raises(ConflictError, match="expiry must be later"):
        service.record(person, RECIPIENT, [TYPE], GIVEN, noticed(now), terms)
    assert service.show(person).history == {}


def test_notice_hash_must_match_its_version(
    service: ConsentService, person: str, now: datetime
) -> None:
    """Evidence naming a notice version with another text's hash is refused."""
    forged = dataclasses.replace(noticed(now), notice_hash="ab" * 32)
    with pytest.raises(ConflictError, match="notice hash does not match"):
        service.record(person, RECIPIENT, [TYPE], GIVEN, forged)


def test_unknown_notice_version_is_refused(
    service: ConsentService, person: str, now: datetime
) -> None:
    """Evidence naming a notice version that was never published is refused with a hint."""
    unknown = dataclasses.replace(noticed(now), notice_version="2025-02")
    with pytest.raises(NotFoundError, match="did you mean"):
        service.record(person, RECIPIENT, [TYPE], GIVEN, unknown)


def test_history_chain_verifies_and_detects_a_rewrite(
    service: ConsentService, person: str, now: datetime
) -> None:
    """Grant, withdraw, grant chain; rewriting the purpose of one revision breaks it there."""
    for minutes, state in enumerate((GIVEN, WITHDRAWN, GIVEN)):
        service.record(person, RECIPIENT, [TYPE], state, noticed(now + timedelta(minutes=minutes)))
    history = service.show(person).history[(RECIPIENT, TYPE)]
    assert [r.state for r in history] == [GIVEN, WITHDRAWN, GIVEN]
    assert verify_history(history) is None
    history[1] = dataclasses.replace(history[1], terms=ConsentTerms(purpose="marketing"))
    assert verify_history(history) == 1


def test_withdrawal_keeps_the_terms_it_ends(
    service: ConsentService, person: str, now: datetime
) -> None:
    """A withdrawal without terms repeats the grant's purpose, basis and expiry."""
    terms = ConsentTerms("benefit continuity", "Privacy Act, s. 8(1)", now + timedelta(days=9))
    service.record(person, RECIPIENT, [TYPE], GIVEN, noticed(now), terms)
    (withdrawal,) = service.record(
        person, RECIPIENT, [TYPE], WITHDRAWN, Evidence("phone", "staff-7", now)
    )
    assert withdrawal.terms == terms


def test_an_older_change_cannot_reverse_a_newer_one(
    service: ConsentService, person: str, now: datetime
) -> None:
    """A change recorded before the latest revision's time is refused as stale."""
    service.record(person, RECIPIENT, [TYPE], GIVEN, noticed(now))
    with pytest.raises(ConflictError, match="later change"):
        service.record(
            person, RECIPIENT, [TYPE], WITHDRAWN, Evidence("mail", "staff-1", now - timedelta(1))
        )


def test_each_revision_is_an_audit_leaf_without_personal_data(
    service: ConsentService, store: MemoryStore, person: str, now: datetime
) -> None:
    """Grant and withdrawal write one consent leaf per event type, with ids and hashes only."""
    granted = service.record(person, RECIPIENT, [TYPE, "DeathReported"], GIVEN, noticed(now))
    service.record(person, RECIPIENT, [TYPE], WITHDRAWN, Evidence("online", "client", now))
    leaves = [r for r in store.audit_records() if r.kind.startswith("consent_")]
    assert [leaf.kind for leaf in leaves] == ["consent_given"] * 2 + ["consent_withdrawn"]
    assert [leaf.data["revision"] for leaf in leaves[:2]] == [r.hash for r in granted]
    assert "MSP-1" not in json.dumps([leaf.data for leaf in leaves])


def test_refused_event_type_records_nothing(
    service: ConsentService, person: str, now: datetime
) -> None:
    """One event type the recipient does not receive refuses the whole change."""
    with pytest.raises(NotFoundError, match="does not receive NameChanged"):
        service.record(person, RECIPIENT, [TYPE, "NameChanged"], GIVEN, noticed(now))
    assert service.show(person).history == {}


def test_change_with_receipt_returns_claims_for_the_revisions(
    service: ConsentService, person: str, now: datetime
) -> None:
    """change(receipt=True) issues one receipt naming the recipient and every revision."""
    change = service.change(person, RECIPIENT, [TYPE], GIVEN, noticed(now), receipt=True)
    assert change.receipt is not None
    claims = json.loads(change.receipt)
    assert claims["iss"] == "test-hub"
    assert claims["consent"]["recipient_name"].startswith("BC Ministry of Health")
    assert [r["hash"] for r in claims["consent"]["revisions"]] == [r.hash for r in change.revisions]


def test_signer_failure_records_nothing(
    store: MemoryStore, directory: Directory, person: str, now: datetime
) -> None:
    """When the receipt cannot be signed the change is rolled back: no grant without receipt."""

    def broken(_claims: dict[str, Any]) -> str:
        raise SignerError("signing key file is missing")

    service = ConsentService(store, directory, issue=broken)
    with pytest.raises(SignerError):
        service.change(person, RECIPIENT, [TYPE], GIVEN, noticed(now), receipt=True)
    assert store.consents() == []


def test_receipt_without_a_signer_is_a_config_error(
    store: MemoryStore, directory: Directory, person: str, now: datetime
) -> None:
    """Asking for a receipt from a service with no signer says so before recording anything."""
    with pytest.raises(ConfigError, match="not set up to sign"):
        ConsentService(store, directory).change(
            person, RECIPIENT, [TYPE], GIVEN, noticed(now), receipt=True
        )
    assert store.consents() == []


def test_status_of_finds_the_latest_revision_by_hash(
    service: ConsentService, person: str, now: datetime
) -> None:
    """status_of maps a revision hash to the newest revision of its history, None if unknown."""
    (first,) = service.record(person, RECIPIENT, [TYPE], GIVEN, noticed(now))
    (second,) = service.record(person, RECIPIENT, [TYPE], WITHDRAWN, noticed(now))
    assert service.status_of([first.hash, "f" * 64]) == {first.hash: second, "f" * 64: None}


@pytest.mark.parametrize(
    ("channel", "actor", "rule"),
    [
        ("c" * 33, "staff-1", "channel must be 1 to 32"),
        ("counter", "a" * 65, "actor must be 1 to 64"),
    ],
    ids=["channel", "actor"],
)
def test_a_link_whose_evidence_does_not_fit_is_refused_with_a_message(
    service: ConsentService, store: MemoryStore, now: datetime, channel: str, actor: str, rule: str
) -> None:
    """A channel over 32 or an actor over 64 characters is a ConflictError naming the rule, not
    a database error, and nothing is linked; at the limits the link is made."""
    with pytest.raises(ConflictError, match=rule):
        service.link("bc-service-bc", "SBC-9", Evidence(channel, actor, now))
    assert store.link_count() == 0
    service.link("bc-service-bc", "SBC-9", Evidence(channel[:32], actor[:64], now))
    assert store.link_count() == 1
