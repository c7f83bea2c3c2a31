"""Consent receipts: the claims the hub signs for a client, and whether they still hold.

A receipt describes one grant or withdrawal as the client made it: one recipient, the event
types, the state, the terms and the evidence, and the hashes of the consent revisions recorded
for it. The hub signs the claims as a compact JWS (``hub.adapters.jws``); this module only builds
and judges them, so it is pure.

The receipt carries **no person id and no local id**. The person id is the hub's internal
pseudonym and must never leave the hub (DESIGN.md section 4); local ids are personal data, and a
receipt is a document the client keeps, forwards and shows to others. The revision hashes are the
handle instead: each commits to the person, recipient, event type, state and evidence without
revealing any of them, and lets the hub find the history the receipt belongs to.

Whether a receipt is "still in force" is judged against the history, not inside the receipt:
the consent it records must be a grant, each of its revisions must still be the latest one of
its (person, recipient, event type) history, and none may have expired.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consent.model import ConsentRevision, ConsentState
from hub.errors import VerificationError

RECEIPT_VERSION = 1


def receipt_id(hashes: Sequence[str]) -> str:
    """The ``jti``: SHA-256 over the revision hashes, so one change always has one id."""
    return hashlib.sha256("\n".join(hashes).encode("ascii")).hexdigest()


def receipt_claims(
    revisions: Sequence[ConsentRevision],
    *,
    issuer: str,
    issued_at: datetime,
    recipient_name: str | None = None,
) -> dict[str, Any]:
    """The claims of a receipt for ``revisions``: one change, recorded together.

    Raises ValueError when the revisions are not one change (several recipients, states or
    pieces of evidence): a receipt must describe exactly what the client did.
    """
    if not revisions:
        raise ValueError("a receipt needs at least one consent revision")
    first = revisions[0]
    for revision in revisions[1:]:
        if (revision.recipient, revision.state, revision.evidence, revision.terms) != (
            first.recipient,
            first.state,
            first.evidence,
            first.terms,
        ):
            raise ValueError("a receipt covers the revisions of one change only")
    evidence, terms = first.evidence, first.terms
    notice = (
        {"version": evidence.notice_version, "sha256": evidence.notice_hash}
        if evidence.notice_version is not None
        else None
    )
    hashes = [r.hash for r in revisions]
    return {
        "iss": issuer,
        "iat": int(issued_at.timestamp()),
        "jti": receipt_id(hashes),
        "v": RECEIPT_VERSION,
        "consent": {
            "recipient": first.recipient,
            "recipient_name": recipient_name or first.recipient,
            "event_types": [r.event_type for r in revisions],
            "state": first.state.value,
            "purpose": terms.purpose,
            "legal_basis": terms.legal_basis,
            "notice": notice,
            "channel": evidence.channel,
            "recorded_at": evidence.recorded_at.isoformat(),
            # A withdrawal repeats the terms it ends; its receipt shows no expiry of its own.
            "expires_at": (
                terms.expires_at.isoformat()
                if terms.expires_at and first.state is ConsentState.GIVEN
                else None
            ),
            "revisions": [
                {"event_type": r.event_type, "seq": r.seq, "hash": r.hash} for r in revisions
            ],
        },
    }


@dataclass(frozen=True, slots=True)
class ReceiptRevision:
    event_type: str
    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class ReceiptView:
    """The parts of verified receipt claims the status needs, checked for shape."""

    recipient: str
    state: ConsentState
    revisions: tuple[ReceiptRevision, ...]

    @property
    def hashes(self) -> list[str]:
        return [r.hash for r in self.revisions]


def read_claims(claims: Mapping[str, Any]) -> ReceiptView:
    """Check that verified claims are a tellonce consent receipt; VerificationError if not."""
    consent = claims.get("consent")
    not_ours = "the token is signed, but it is not a tellonce consent receipt"
    if not isinstance(consent, dict):
        raise VerificationError(f"{not_ours} (no consent object)")
    recipient, state = consent.get("recipient"), consent.get("state")
    listed = consent.get("revisions")
    if not isinstance(recipient, str) or state not in ("given", "withdrawn"):
        raise VerificationError(f"{not_ours} (recipient or state missing)")
    if not isinstance(listed, list) or not listed:
        raise VerificationError(f"{not_ours} (no revisions)")
    revisions = []
    for item in listed:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("event_type"), str)
            and isinstance(item.get("seq"), int)
            and isinstance(item.get("hash"), str)
            and len(item["hash"]) == 64
        ):
            raise VerificationError(f"{not_ours} (a revision entry is malformed)")
        revisions.append(ReceiptRevision(item["event_type"], item["seq"], item["hash"]))
    view = ReceiptView(recipient, ConsentState(state), tuple(revisions))
    if claims.get("jti") != receipt_id(view.hashes):
        raise VerificationError(f"{not_ours} (jti does not match its revisions)")
    return view


@dataclass(frozen=True, slots=True)
class ReceiptStatus:
    in_force: bool
    detail: str
    # event type -> what became of its revision: in_force, withdrawn, replaced, expired, unknown
    per_event_type: dict[str, str]


def receipt_status(
    claims: Mapping[str, Any],
    current: Mapping[str, ConsentRevision | None],
    now: datetime,
) -> ReceiptStatus:
    """Whether the consent a receipt records is still in force at ``now``.

    ``current`` maps each revision hash of the receipt to the latest revision the hub has for
    that (person, recipient, event type) history, or None when the hub does not know the hash.
    """
    view = read_claims(claims)
    outcomes: dict[str, str] = {}
    details: list[str] = []
    for listed in view.revisions:
        latest = current.get(listed.hash)
        outcome, detail = _judge(view.state, listed, latest, now)
        outcomes[listed.event_type] = outcome
        details.append(f"{listed.event_type}: {detail}")
    in_force = view.state is ConsentState.GIVEN and all(o == "in_force" for o in outcomes.values())
    if in_force:
        summary = f"consent to tell {view.recipient} is in force"
    elif view.state is ConsentState.WITHDRAWN:
        summary = f"this receipt records a withdrawal of consent to tell {view.recipient}"
    else:
        summary = f"consent to tell {view.recipient} is no longer in force"
    return ReceiptStatus(in_force, f"{summary} ({'; '.join(details)})", outcomes)


@dataclass(frozen=True, slots=True)
class ReceiptCheck:
    """An authentic receipt: who signed it, what it records, and whether that is in force."""

    key_id: str | None
    claims: Mapping[str, Any]
    view: ReceiptView
    status: ReceiptStatus
    as_of: datetime


def check_receipt(
    token: str,
    read: Callable[[str], tuple[Mapping[str, Any], Mapping[str, Any]]],
    current: Callable[[list[str]], Mapping[str, ConsentRevision | None]],
    clock: Callable[[], datetime],
) -> ReceiptCheck:
    """What ``tellonce consent verify-receipt`` answers for ``token``.

    ``read`` verifies the signature and returns (header, claims); ``current`` gives the hub's
    latest revision for each revision hash (see ``receipt_status``). Raises VerificationError
    when the token is not an authentic tellonce consent receipt; the hub's records are read
    only for one that is.
    """
    header, claims = read(token)
    view = read_claims(claims)
    now = clock()
    status = receipt_status(claims, current(view.hashes), now)
    kid = header.get("kid")
    return ReceiptCheck(kid if isinstance(kid, str) else None, claims, view, status, now)


def _judge(
    state: ConsentState, listed: ReceiptRevision, latest: ConsentRevision | None, now: datetime
) -> tuple[str, str]:
    if latest is None:
        return "unknown", "unknown to this hub (the revision is not in its records)"
    when = f"{latest.evidence.recorded_at:%Y-%m-%d}"
    if latest.hash != listed.hash:
        if latest.state is ConsentState.WITHDRAWN:
            return "withdrawn", f"withdrawn later on {when}"
        return "replaced", f"replaced by a newer grant on {when} (revision {latest.seq})"
    if state is ConsentState.WITHDRAWN:
        return "withdrawn", f"withdrawn on {when}; still the latest revision"
    if latest.state_at(now) is ConsentState.EXPIRED:
        assert latest.terms.expires_at is not None
        return "expired", f"expired on {latest.terms.expires_at:%Y-%m-%d}"
    return "in_force", "in force" + (
        f" until {latest.terms.expires_at:%Y-%m-%d}" if latest.terms.expires_at else ""
    )
