"""A person's consent history with each chain verified, for ``tellonce consent history``.

Every (recipient, event type) has its own hash chain of revisions; a chain that does not verify
names the first revision that was altered, inserted or removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consent.model import ConsentRevision, ConsentState
from consent.rules import verify_history
from hub.consents.service import ConsentService


@dataclass(frozen=True, slots=True)
class ConsentChain:
    """The revisions of one consent, oldest first, and whether their hash chain holds."""

    recipient: str
    event_type: str
    revisions: tuple[ConsentRevision, ...]
    broken_at_seq: int | None  # the first revision that does not verify, or None
    state_now: ConsentState  # the latest state as of the history's time (an expiry counts)

    @property
    def verified(self) -> bool:
        return self.broken_at_seq is None


@dataclass(frozen=True, slots=True)
class ConsentHistory:
    person_id: str
    as_of: datetime
    chains: tuple[ConsentChain, ...]  # sorted by recipient, then event type
    erased: bool = False  # the person was erased; their revisions are kept as evidence

    @property
    def verified(self) -> bool:
        return all(chain.verified for chain in self.chains)


def consent_history(service: ConsentService, ref: str) -> ConsentHistory:
    """Every consent revision of the person ``ref`` names (id or PROGRAM:LOCAL_ID), verified."""
    view = service.show(ref)
    now = service.now()
    chains = []
    for (recipient, event_type), revisions in sorted(view.history.items()):
        broken = verify_history(revisions)
        chains.append(
            ConsentChain(
                recipient=recipient,
                event_type=event_type,
                revisions=tuple(revisions),
                broken_at_seq=revisions[broken].seq if broken is not None else None,
                state_now=revisions[-1].state_at(now),
            )
        )
    return ConsentHistory(view.person_id, now, tuple(chains), view.erased)
