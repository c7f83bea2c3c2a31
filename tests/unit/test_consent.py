"""Consent rules: hash-chained revisions, refused withdrawals, and disclosure decisions."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from consent.errors import RuleViolation
from consent.model import GENESIS, ConsentRevision, ConsentState, Evidence, digest
from consent.rules import decide_disclosure, next_revision, verify_history

T0 = datetime(2025, 1, 2, 9, 30, tzinfo=UTC)
LATER = T0 + timedelta(days=1)
GIVEN, WITHDRAWN = ConsentState.GIVEN, ConsentState.WITHDRAWN


def evidence(minutes: int = 0) -> Evidence:
    return Evidence("counter", "staff-042", T0 + timedelta(minutes=minutes))


def history(*states: ConsentState) -> list[ConsentRevision]:
    revisions: list[ConsentRevision] = []
    for minutes, state in enumerate(states):
        revisions.append(
            next_revision(
                revisions,
                person_id="p-1",
                recipient="cra-individual",
                event_type="AddressChanged",
                state=state,
                evidence=evidence(minutes),
            )
        )
    return revisions


def test_revisions_chain_hashes() -> None:
    """Each revision points at the hash of the one before it, starting from genesis."""
    first, second, third = history(GIVEN, WITHDRAWN, GIVEN)
    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert (third.seq, third.prev_hash) == (3, second.hash)
    assert len({first.hash, second.hash, third.hash}) == 3
    assert verify_history([first, second, third]) is None


def test_hash_covers_the_evidence() -> None:
    """The same state recorded at another time has another hash."""
    assert (
        history(GIVEN)[0].hash
        != next_revision(
            [],
            person_id="p-1",
            recipient="cra-individual",
            event_type="AddressChanged",
            state=GIVEN,
            evidence=evidence(minutes=1),
        ).hash
    )


@pytest.mark.parametrize(
    "before", [(), (GIVEN, WITHDRAWN)], ids=["never-given", "already-withdrawn"]
)
def test_withdrawing_consent_not_in_force_is_refused(before: tuple[ConsentState, ...]) -> None:
    """Withdrawing a consent that is not in force raises RuleViolation saying what to do."""
    with pytest.raises(RuleViolation, match="no consent in force") as info:
        next_revision(
            history(*before),
            person_id="p-1",
            recipient="cra-individual",
            event_type="AddressChanged",
            state=WITHDRAWN,
            evidence=evidence(9),
        )
    assert "tellonce consent history" in str(info.value)


def test_granting_twice_renews_the_consent() -> None:
    """A second grant is recorded as a new revision, and disclosure stays allowed."""
    revisions = history(GIVEN, GIVEN)
    assert revisions[1].seq == 2
    assert decide_disclosure(revisions, recipient_linked=True, now=LATER).revision == revisions[1]


def test_no_history_withholds_for_no_consent() -> None:
    """Without any consent recorded, nothing is sent (reason no_consent)."""
    decision = decide_disclosure([], recipient_linked=True, now=LATER)
    assert (decision.send, decision.reason, decision.revision) == (False, "no_consent", None)


def test_withdrawn_consent_withholds() -> None:
    """A withdrawal recorded after the grant stops disclosure and cites the withdrawal."""
    revisions = history(GIVEN, WITHDRAWN)
    decision = decide_disclosure(revisions, recipient_linked=True, now=LATER)
    assert (decision.send, decision.reason) == (False, "consent_withdrawn")
    assert decision.revision == revisions[-1]


def test_consent_without_identity_link_withholds() -> None:
    """Consent given to a recipient the client has no id at cannot be acted on."""
    decision = decide_disclosure(history(GIVEN), recipient_linked=False, now=LATER)
    assert (decision.send, decision.reason) == (False, "no_identity_link")


def test_given_consent_with_link_discloses() -> None:
    """Consent in force and a linked recipient: send, relying on the latest revision."""
    revisions = history(GIVEN, WITHDRAWN, GIVEN)
    decision = decide_disclosure(revisions, recipient_linked=True, now=LATER)
    assert (decision.send, decision.reason) == (True, "consent_given")
    assert decision.revision is not None
    assert decision.revision.hash == revisions[-1].hash


def test_tampered_revision_is_detected() -> None:
    """Rewriting a revision's state (keeping its hash) breaks verification at that revision."""
    revisions = history(GIVEN, WITHDRAWN, GIVEN)
    revisions[1] = dataclasses.replace(revisions[1], state=GIVEN)
    assert verify_history(revisions) == 1


def test_rehashed_tampered_revision_breaks_the_next_link() -> None:
    """A rewritten revision with a recomputed hash is caught at the revision after it."""
    revisions = history(GIVEN, WITHDRAWN, GIVEN)
    forged = dataclasses.replace(revisions[1], evidence=Evidence("online", "client", T0))
    revisions[1] = dataclasses.replace(
        forged,
        hash=digest(forged.body()),
    )
    assert verify_history(revisions) == 2


def test_dropped_revision_is_detected() -> None:
    """Removing a withdrawal from the history is caught where the chain breaks."""
    revisions = history(GIVEN, WITHDRAWN, GIVEN)
    assert verify_history([revisions[0], revisions[2]]) == 1
