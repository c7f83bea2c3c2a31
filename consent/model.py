"""Records of the consent domain: identity links and consent revisions.

A consent revision is shaped after ISO/IEC TS 27560 (consent record information structure) and
FHIR Consent: who (person), to whom (recipient program), what (event type, the data category the
recipient's agreement covers), why (purpose), on which legal basis, evidence (channel, actor,
time, and the version and hash of the notice the client was shown), an optional expiry, and a
state. Revisions are append-only and hash-linked per (person, recipient, event type).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ConsentState(StrEnum):
    GIVEN = "given"
    WITHDRAWN = "withdrawn"
    # Never recorded: a given consent whose expiry has passed reads as expired.
    EXPIRED = "expired"


DEFAULT_PURPOSE = "tell-us-once: update the recipient's records after a life event"
DEFAULT_LEGAL_BASIS = "consent of the individual (Privacy Act, s. 8(1))"


@dataclass(frozen=True, slots=True)
class Evidence:
    """How the hub learned of a link or a consent change."""

    channel: str  # e.g. "counter", "online", "phone", "mail", "portal"
    actor: str  # who recorded it: a staff id or "client"
    recorded_at: datetime
    notice_version: str | None = None  # the privacy notice the client was shown
    notice_hash: str | None = None  # SHA-256 of that notice's text, so the wording is pinned


@dataclass(frozen=True, slots=True)
class IdentityLink:
    """``(program, local_id)`` is the same client as ``person_id`` inside the hub."""

    person_id: str
    program: str
    local_id: str
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class ConsentTerms:
    """What a grant is for; a withdrawal repeats the terms it ends."""

    purpose: str = DEFAULT_PURPOSE
    legal_basis: str = DEFAULT_LEGAL_BASIS
    expires_at: datetime | None = None


GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class ConsentRevision:
    """One append-only step in the consent history of (person, recipient, event type).

    ``hash`` covers every field and ``prev_hash``, so a rewritten or dropped revision breaks the
    chain of every later one.
    """

    person_id: str
    recipient: str
    event_type: str
    seq: int
    state: ConsentState
    evidence: Evidence
    terms: ConsentTerms
    prev_hash: str
    hash: str

    def body(self) -> dict[str, object]:
        """The hashed content: every field except ``hash`` itself."""
        return revision_body(
            person_id=self.person_id,
            recipient=self.recipient,
            event_type=self.event_type,
            seq=self.seq,
            state=self.state,
            evidence=self.evidence,
            terms=self.terms,
            prev_hash=self.prev_hash,
        )

    def state_at(self, now: datetime) -> ConsentState:
        """The state in force at ``now``: a grant past its expiry reads as expired."""
        expires = self.terms.expires_at
        if self.state is ConsentState.GIVEN and expires is not None and expires <= now:
            return ConsentState.EXPIRED
        return self.state

    def verifies(self, previous: ConsentRevision | None) -> bool:
        """True when this revision's hash is intact and it follows ``previous``."""
        expected_prev = previous.hash if previous else GENESIS
        expected_seq = previous.seq + 1 if previous else 1
        return (
            self.prev_hash == expected_prev
            and self.seq == expected_seq
            and self.hash == digest(self.body())
        )


def revision_body(
    *,
    person_id: str,
    recipient: str,
    event_type: str,
    seq: int,
    state: ConsentState,
    evidence: Evidence,
    terms: ConsentTerms,
    prev_hash: str,
) -> dict[str, object]:
    return {
        "person_id": person_id,
        "recipient": recipient,
        "event_type": event_type,
        "seq": seq,
        "state": state.value,
        "purpose": terms.purpose,
        "legal_basis": terms.legal_basis,
        "expires_at": terms.expires_at.isoformat() if terms.expires_at else None,
        "channel": evidence.channel,
        "actor": evidence.actor,
        "recorded_at": evidence.recorded_at.isoformat(),
        "notice_version": evidence.notice_version,
        "notice_hash": evidence.notice_hash,
        "prev_hash": prev_hash,
    }


def digest(body: dict[str, object]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()
