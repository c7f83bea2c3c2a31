"""Erasing a person: ``tellonce person erase`` and the portal's erasure request.

The policy (README, "Erasure"): a person whose notices are still on their way (published or
queued, but no receipt settled them) is not erased, because erasing deletes the queued copies
and the recipients would never learn what happened to them; the caller is told how many and
waits for the receipts, or forces. Forcing (``--force``, and every erasure request from a
portal, where the client asked) first records each of those notices as dead-lettered, a
``dead_lettered`` delivery and leaf like the ones a connector's receipt brings (sink
``tellonce-erasure``), so ``audit reconcile`` still matches deliveries with leaves.

Then the store destroys the person's data key, blanks their sealed local ids, deletes their
queued messages and marks them erased (``IdentityRecorder.erase_person``), and one ``erased``
leaf records it: the person id (a random id that never left the hub) and counts, nothing
personal. What stays, and why: the blind index of each local id, so a later event about the
person is recognised and withheld as ``erased`` instead of being taken for a stranger's; the
consent revisions and every audit leaf, which name the person only by that random id and
are the proof of what was disclosed before.

Everything of one erasure happens in one store transaction: the caller's (``apply``, as the
consent intake's batch does) or one of its own (``erase``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from hub.audit.log import AuditLog
from hub.audit.pseudonyms import Pseudonyms
from hub.errors import ConflictError
from hub.model import Delivery
from hub.ports import Clock, Store, Transaction
from hub.privacy.vault import Vault

ERASED_LEAF = "erased"
DEAD_LETTER_LEAF = "dead_lettered"  # the kind receipts give a dead letter (hub.processing)
ERASURE_SINK = "tellonce-erasure"  # the "sink" of a notice erasure dead-lettered
DEAD_LETTER_DETAIL = "its person was erased before a receipt settled it"
MAX_CHANNEL_CHARS = 32  # as a consent's channel

Resolve = Callable[[Transaction, str], str]
"""A person id from ``PERSON_ID`` or ``PROGRAM:LOCAL_ID`` (``ConsentService.resolve``)."""


@dataclass(frozen=True, slots=True)
class Erasure:
    """What one erasure did: whom (the hub's random id), when, and how much; never a value."""

    person_id: str
    erased_at: datetime
    links: int  # identity links whose local ids no longer open
    dead_lettered: tuple[str, ...]  # notification ids settled as dead letters first
    leaf: int  # index of the ``erased`` audit leaf


class ErasureService:
    """Erases persons from the store, with the audit leaves that say so."""

    def __init__(
        self,
        store: Store,
        *,
        resolve: Resolve,
        pseudonyms: Pseudonyms,
        clock: Clock,
        vault: Vault | None = None,
    ) -> None:
        self._store = store
        self._resolve = resolve
        self._ids = pseudonyms
        self._clock = clock
        self._vault = vault

    def erase(self, ref: str, *, force: bool = False, channel: str = "counter") -> Erasure:
        """Erase the person ``ref`` names (a person id or PROGRAM:LOCAL_ID), in one
        transaction. NotFoundError for nobody; ConflictError when they were erased already, or
        have undelivered notices and ``force`` is not given (nothing is written then)."""
        if not 1 <= len(channel) <= MAX_CHANNEL_CHARS:
            raise ConflictError(f"the channel must be 1 to {MAX_CHANNEL_CHARS} characters")
        with self._store.transaction() as tx:
            person = self._resolve(tx, ref)
            chain = AuditLog(tx.last_audit())
            erasure = self.apply(tx, chain, person, self._clock(), force=force, channel=channel)
            chain.write(tx)
        return erasure

    def apply(
        self,
        tx: Transaction,
        chain: AuditLog,
        person: str,
        at: datetime,
        *,
        force: bool,
        channel: str,
        audit: dict[str, Any] | None = None,
    ) -> Erasure:
        """Erase ``person`` inside ``tx``, appending the leaves to ``chain`` (the caller writes
        it). ``audit`` adds ids to the ``erased`` leaf (e.g. the request event it came from).
        Raises ConflictError, before writing anything, as ``erase`` does."""
        if tx.erased_persons([person]):
            raise ConflictError(
                "this person was erased already; there is nothing left of them to erase"
            )
        pending = tx.undelivered_notifications(person)
        if pending and not force:
            raise ConflictError(
                f"{_notices(len(pending))} about this person {_have(len(pending))} no delivery "
                "receipt yet, and erasing would drop them unsent; wait until the connectors "
                "report them (see 'tellonce connector status') and erase again, or erase now "
                "with --force, which records them as dead letters first. Nothing was erased"
            )
        links = len(tx.link_records(person))
        self._dead_letter(tx, chain, pending, at)
        tx.erase_person(person, at)
        leaf = chain.append(
            ERASED_LEAF,
            {
                "person": person,
                "links": links,
                "dead_lettered": len(pending),
                "channel": channel,
                **(audit or {}),
            },
            at,
        )
        if self._vault is not None:
            # An unwrapped key cached in this process must not outlive the erasure. Should the
            # transaction roll back, the cache simply unwraps the stored key again.
            self._vault.forget(person)
        return Erasure(person, at, links, tuple(pending), leaf.index)

    def _dead_letter(
        self, tx: Transaction, chain: AuditLog, notifications: list[str], at: datetime
    ) -> None:
        """Settle undelivered notices as dead letters, one delivery and one leaf each, written
        the way ``hub.processing.receipts`` writes a connector's dead letter."""
        if not notifications:
            return
        decisions = tx.decisions_by_notification(notifications)
        known = tx.deliveries_of(notifications)
        new, replaced = [], []
        for notification in notifications:
            decision = decisions[notification]
            previous = known.get(notification)
            delivery = Delivery(
                notification_id=notification,
                recipient=decision.recipient,
                status="dead_lettered",
                sink=ERASURE_SINK,
                detail=DEAD_LETTER_DETAIL,
                recorded_at=at,
                dead_lettered_at=at,
            )
            if previous is None:
                new.append(delivery)
            else:
                replaced.append(replace(delivery, dead_lettered_at=previous.dead_lettered_at or at))
                if previous.dead_lettered_at is not None:
                    # Dead-lettered once already (then replayed and failed): it has its leaf,
                    # and reconcile counts each dead-lettered notification once.
                    continue
            chain.append(
                DEAD_LETTER_LEAF,
                {
                    "notification": notification,
                    "event": self._ids.event(decision.source, decision.event_id),
                    "recipient": decision.recipient,
                    "sink": ERASURE_SINK,
                },
                at,
            )
        tx.save_deliveries(new, new=True)
        tx.save_deliveries(replaced, new=False)


def _notices(count: int) -> str:
    return f"{count} notice{'s' * (count != 1)}"


def _have(count: int) -> str:
    return "has" if count == 1 else "have"
