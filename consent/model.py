"""Records of the consent domain: identity links and consent revisions."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ConsentState(StrEnum):
    GIVEN = "given"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class Evidence:
    """How the hub learned of a link or a consent change."""

    channel: str  # e.g. "counter", "online", "phone", "mail", "portal"
    actor: str  # who recorded it: a staff id or "client"
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class IdentityLink:
    """``(program, local_id)`` is the same client as ``person_id`` inside the hub."""

    person_id: str
    program: str
    local_id: str
    evidence: Evidence


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
    prev_hash: str
    hash: str

    @staticmethod
    def digest(
        *,
        person_id: str,
        recipient: str,
        event_type: str,
        seq: int,
        state: ConsentState,
        evidence: Evidence,
        prev_hash: str,
    ) -> str:
        body = {
            "person_id": person_id,
            "recipient": recipient,
            "event_type": event_type,
            "seq": seq,
            "state": state.value,
            "channel": evidence.channel,
            "actor": evidence.actor,
            "recorded_at": evidence.recorded_at.isoformat(),
            "prev_hash": prev_hash,
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(canonical).hexdigest()

    def verifies(self, previous: ConsentRevision | None) -> bool:
        """True when this revision's hash is intact and it follows ``previous``."""
        expected_prev = previous.hash if previous else GENESIS
        expected_seq = previous.seq + 1 if previous else 1
        return (
            self.prev_hash == expected_prev
            and self.seq == expected_seq
            and self.hash
            == self.digest(
                person_id=self.person_id,
                recipient=self.recipient,
                event_type=self.event_type,
                seq=self.seq,
                state=self.state,
                evidence=self.evidence,
                prev_hash=self.prev_hash,
            )
        )
