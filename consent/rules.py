"""The rules: how a consent history changes and what it allows at processing time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consent.errors import RuleViolation
from consent.model import (
    GENESIS,
    ConsentRevision,
    ConsentState,
    ConsentTerms,
    Evidence,
    digest,
    revision_body,
)


def next_revision(
    history: Sequence[ConsentRevision],
    *,
    person_id: str,
    recipient: str,
    event_type: str,
    state: ConsentState,
    evidence: Evidence,
    terms: ConsentTerms | None = None,
) -> ConsentRevision:
    """The revision that records ``state``, chained after ``history`` (oldest first).

    Withdrawing a consent that is not in force is refused: the record would claim a change that
    did not happen. Granting twice is allowed; it renews the evidence (and the expiry).
    A withdrawal keeps the terms of the grant it ends unless others are given.
    """
    previous = history[-1] if history else None
    if state is ConsentState.EXPIRED:
        raise RuleViolation("expiry is not recorded; give an expiry time when granting")
    if state is ConsentState.WITHDRAWN and (
        previous is None or previous.state_at(evidence.recorded_at) is not ConsentState.GIVEN
    ):
        raise RuleViolation(
            f"there is no consent in force for recipient {recipient!r} and event type "
            f"{event_type!r} to withdraw; run 'tellonce consent history' to see what is recorded"
        )
    if terms is None:
        terms = previous.terms if previous and state is ConsentState.WITHDRAWN else ConsentTerms()
    body = revision_body(
        person_id=person_id,
        recipient=recipient,
        event_type=event_type,
        seq=previous.seq + 1 if previous else 1,
        state=state,
        evidence=evidence,
        terms=terms,
        prev_hash=previous.hash if previous else GENESIS,
    )
    return ConsentRevision(**body_fields(body), evidence=evidence, terms=terms, hash=digest(body))


def body_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments a hashed body holds directly."""
    return {
        "person_id": body["person_id"],
        "recipient": body["recipient"],
        "event_type": body["event_type"],
        "seq": body["seq"],
        "state": ConsentState(body["state"]),
        "prev_hash": body["prev_hash"],
    }


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    """Send, or withhold with a reason code; ``revision`` is what the decision relied on."""

    send: bool
    reason: str
    revision: ConsentRevision | None


def decide_disclosure(
    history: Sequence[ConsentRevision], *, recipient_linked: bool, now: datetime
) -> ConsentDecision:
    """Decide from the consent history (oldest first) of one (person, recipient, event type).

    Only the latest revision counts: consent is evaluated when the event is processed, so a
    withdrawal recorded before processing stops the disclosure.
    """
    latest = history[-1] if history else None
    if not recipient_linked:
        # The client has no account the recipient could match: nothing to send it to.
        return ConsentDecision(send=False, reason="no_identity_link", revision=latest)
    if latest is None:
        return ConsentDecision(send=False, reason="no_consent", revision=None)
    state = latest.state_at(now)
    if state is ConsentState.WITHDRAWN:
        return ConsentDecision(send=False, reason="consent_withdrawn", revision=latest)
    if state is ConsentState.EXPIRED:
        return ConsentDecision(send=False, reason="consent_expired", revision=latest)
    return ConsentDecision(send=True, reason="consent_given", revision=latest)


def verify_history(history: Sequence[ConsentRevision]) -> int | None:
    """Index of the first revision whose hash or link is broken, or None when all verify."""
    previous: ConsentRevision | None = None
    for index, revision in enumerate(history):
        if not revision.verifies(previous):
            return index
        previous = revision
    return None
