"""Use-cases for identity links and consents, as the CLI, the demo and the consent topic call them.

Each runs in one transaction and writes its audit leaves with it. A consent change, whether it
comes from the command line or from a portal on ``tellonce.consent.v1``
(``hub.processing.consent_events``),
goes through ``ConsentService.apply``: one rule path for both.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consent.errors import RuleViolation
from consent.model import ConsentRevision, ConsentState, ConsentTerms, Evidence, IdentityLink
from consent.rules import next_revision
from hub.audit.log import AuditLog
from hub.config.directory import Directory, Program, check_event_type
from hub.consents.notices import Notices, load_notices
from hub.consents.receipts import receipt_claims
from hub.errors import ConfigError, ConflictError, NotFoundError
from hub.ports import Clock, Store, Transaction
from hub.wire.topics import HUB_SOURCE

Issue = Callable[[dict[str, Any]], str]
"""Signs receipt claims into a compact JWS (wired to ``hub.adapters.jws.sign_compact``)."""

Histories = dict[tuple[str, str, str], list[ConsentRevision]]

# Widths of the consent_revisions and identity_links columns: refuse early with a message, not a
# database error.
MAX_TERM_CHARS = 256
MAX_CHANNEL_CHARS = 32
MAX_ACTOR_CHARS = 64


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check_recorder(evidence: Evidence) -> None:
    """The channel and actor of a link or a consent change fit their columns."""
    if not 1 <= len(evidence.channel) <= MAX_CHANNEL_CHARS:
        raise ConflictError(f"the channel must be 1 to {MAX_CHANNEL_CHARS} characters")
    if not 1 <= len(evidence.actor) <= MAX_ACTOR_CHARS:
        raise ConflictError(f"the actor must be 1 to {MAX_ACTOR_CHARS} characters")


@dataclass(frozen=True, slots=True)
class PersonView:
    person_id: str
    links: dict[str, str]  # program -> local id; empty once erased
    history: dict[tuple[str, str], list[ConsentRevision]]  # (recipient, event type) -> revisions
    # Erased (``hub.privacy.erasure``): their local ids no longer open; the consent revisions
    # stay as the record of what their disclosures relied on.
    erased: bool = False


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """What one grant or withdrawal recorded, and its signed receipt when one was asked for."""

    person_id: str
    revisions: list[ConsentRevision]
    receipt: str | None = None


class ConsentService:
    def __init__(
        self,
        store: Store,
        directory: Directory,
        *,
        notices: Notices | None = None,
        clock: Clock = _utc_now,
        issue: Issue | None = None,
        issuer: str = HUB_SOURCE,
    ) -> None:
        self._store = store
        self._directory = directory
        self.notices = notices if notices is not None else load_notices()
        self._clock = clock
        self._issue = issue
        self._issuer = issuer

    # -- identity ----------------------------------------------------------------------------

    def resolve(self, tx: Transaction, ref: str) -> str:
        """A person id from ``PERSON_ID`` or ``PROGRAM:LOCAL_ID``."""
        if ":" in ref:
            program, local_id = ref.split(":", 1)
            self._directory.program(program)
            person = tx.persons_for(program, [local_id]).get(local_id)
            if person is None:
                raise NotFoundError(
                    f"no client is linked at program {program!r} under that id; link one "
                    "first with 'tellonce consent link'"
                )
            return person
        if not tx.person_exists(ref):
            raise NotFoundError(
                f"no person {ref!r}; give a person id printed by 'tellonce consent link' or "
                "PROGRAM:LOCAL_ID"
            )
        return ref

    def living(self, tx: Transaction, person: str) -> str:
        """``person``, unless they were erased: ConflictError then (nothing can be added to an
        erased person: their data key is gone)."""
        if tx.erased_persons([person]):
            raise ConflictError(
                "this person was erased: their identity links and consents can no longer "
                "change; 'tellonce consent show' lists what is kept of them"
            )
        return person

    def link(self, program: str, local_id: str, evidence: Evidence, to: str | None = None) -> str:
        """Link ``(program, local_id)`` to the person ``to`` refers to (a new person if None)."""
        self._directory.program(program)
        if not local_id or len(local_id) > 64:
            raise ConflictError("a local id must be 1 to 64 characters")
        _check_recorder(evidence)
        with self._store.transaction() as tx:
            if tx.persons_for(program, [local_id]):
                raise ConflictError(
                    f"that id is already linked at program {program!r}; links are append-only"
                )
            if to is None:
                person = str(uuid.uuid4())
                tx.add_person(person, evidence.recorded_at)
            else:
                person = self.living(tx, self.resolve(tx, to))
                if program in tx.links_of([person]).get(person, {}):
                    raise ConflictError(f"this person already has an id at program {program!r}")
            tx.add_link(IdentityLink(person, program, local_id, evidence))
            chain = AuditLog(tx.last_audit())
            chain.append(
                "identity_linked", {"person": person, "program": program}, evidence.recorded_at
            )
            chain.write(tx)
        return person

    # -- consent changes -----------------------------------------------------------------------

    def check_scope(self, recipient: str, event_types: Iterable[str]) -> Program:
        """The recipient program, provided it receives every one of ``event_types``."""
        program = self._directory.program(recipient)
        for event_type in event_types:
            check_event_type(event_type)
            if event_type not in program.subscriptions:
                raise NotFoundError(
                    f"program {recipient!r} does not receive {event_type} events under the "
                    f"directory; it receives: {', '.join(program.subscriptions) or 'nothing'}"
                )
        return program

    def check_evidence(
        self, state: ConsentState, evidence: Evidence, terms: ConsentTerms | None
    ) -> None:
        """Refuse evidence and terms the record could not stand on; messages carry no values."""
        _check_recorder(evidence)
        if (evidence.notice_version is None) != (evidence.notice_hash is None):
            raise ConflictError("give both the notice version and its hash, or neither")
        if evidence.notice_version is not None and evidence.notice_hash is not None:
            self.notices.check(evidence.notice_version, evidence.notice_hash)
        if terms is None:
            return
        for name, value in (("purpose", terms.purpose), ("legal basis", terms.legal_basis)):
            if not value.strip() or len(value) > MAX_TERM_CHARS:
                raise ConflictError(f"the {name} must be 1 to {MAX_TERM_CHARS} characters")
        expires = terms.expires_at
        if state is ConsentState.GIVEN and expires is not None:
            if expires.tzinfo is None:
                raise ConflictError("the expiry must carry a time zone (e.g. 2026-01-31T00:00Z)")
            if expires <= evidence.recorded_at:
                raise ConflictError(
                    "the expiry must be later than the time the consent is given; "
                    "give a future date or a duration such as 365d"
                )

    def apply(
        self,
        tx: Transaction,
        chain: AuditLog,
        person: str,
        recipient: str,
        event_types: Sequence[str],
        state: ConsentState,
        evidence: Evidence,
        terms: ConsentTerms | None = None,
        *,
        histories: Histories | None = None,
        audit: dict[str, Any] | None = None,
    ) -> list[ConsentRevision]:
        """Record one change for ``person`` inside ``tx``: revisions and their audit leaves.

        ``plan`` checks it all before ``save`` writes anything, so a refused change leaves no
        partial record. ``histories`` (the person's, as ``tx.consent_history`` gives them) saves
        a read per call in a batch; it is updated with the new revisions. ``audit`` adds ids to
        each leaf (e.g. the consent event it came from). Raises NotFoundError or ConflictError.
        """
        if histories is None:
            histories = tx.consent_history([person])
        revisions = self.plan(person, recipient, event_types, state, evidence, terms, histories)
        self.save(tx, chain, revisions, histories, audit=audit)
        return revisions

    def plan(
        self,
        person: str,
        recipient: str,
        event_types: Sequence[str],
        state: ConsentState,
        evidence: Evidence,
        terms: ConsentTerms | None,
        histories: Histories,
    ) -> list[ConsentRevision]:
        """The revisions one change adds to ``histories``, checked against every rule; writes
        nothing. Raises NotFoundError or ConflictError."""
        wanted = list(dict.fromkeys(event_types))  # a type listed twice is one consent
        if not wanted:
            raise ConflictError("name at least one event type")
        self.check_scope(recipient, wanted)
        self.check_evidence(state, evidence, terms)
        revisions = []
        for event_type in wanted:
            history = histories.get((person, recipient, event_type), [])
            if history and evidence.recorded_at < history[-1].evidence.recorded_at:
                raise ConflictError(
                    f"a later change of the consent for recipient {recipient!r} and event type "
                    f"{event_type} is already recorded; this older one would reverse it"
                )
            try:
                revision = next_revision(
                    history,
                    person_id=person,
                    recipient=recipient,
                    event_type=event_type,
                    state=state,
                    evidence=evidence,
                    terms=terms,
                )
            except RuleViolation as exc:
                raise ConflictError(str(exc)) from exc
            revisions.append(revision)
        return revisions

    def save(
        self,
        tx: Transaction,
        chain: AuditLog,
        revisions: Sequence[ConsentRevision],
        histories: Histories,
        *,
        audit: dict[str, Any] | None = None,
    ) -> None:
        """Write planned revisions and their audit leaves; ``histories`` gains them."""
        tx.add_consents(revisions)
        self.note(chain, revisions, histories, audit=audit)

    def note(
        self,
        chain: AuditLog,
        revisions: Sequence[ConsentRevision],
        histories: Histories,
        *,
        audit: dict[str, Any] | None = None,
    ) -> None:
        """The audit leaves of revisions ``save`` writes (or a batch writes with its other
        rows); ``histories`` gains them."""
        for revision in revisions:
            histories.setdefault(
                (revision.person_id, revision.recipient, revision.event_type), []
            ).append(revision)
            chain.append(
                f"consent_{revision.state.value}",
                {
                    "person": revision.person_id,
                    "recipient": revision.recipient,
                    "type": revision.event_type,
                    "revision": revision.hash,
                    "channel": revision.evidence.channel,
                    **(audit or {}),
                },
                revision.evidence.recorded_at,
            )

    def change(
        self,
        ref: str,
        recipient: str,
        event_types: list[str],
        state: ConsentState,
        evidence: Evidence,
        terms: ConsentTerms | None = None,
        *,
        receipt: bool = False,
    ) -> ConsentChange:
        """Grant or withdraw in one transaction; with ``receipt``, sign one before committing.

        The receipt is signed inside the transaction: if the signer fails, nothing is recorded
        and the change can simply be made again, so no grant exists whose receipt was lost.
        """
        if receipt and self._issue is None:
            raise ConfigError("this hub is not set up to sign consent receipts")
        with self._store.transaction() as tx:
            person = self.living(tx, self.resolve(tx, ref))
            chain = AuditLog(tx.last_audit())
            revisions = self.apply(
                tx, chain, person, recipient, event_types, state, evidence, terms
            )
            chain.write(tx)
            token = self.receipt_for(revisions) if receipt else None
        return ConsentChange(person, revisions, token)

    def record(
        self,
        ref: str,
        recipient: str,
        event_types: list[str],
        state: ConsentState,
        evidence: Evidence,
        terms: ConsentTerms | None = None,
    ) -> list[ConsentRevision]:
        """Grant or withdraw consent for ``recipient`` to be told of ``event_types``."""
        return self.change(ref, recipient, event_types, state, evidence, terms).revisions

    # -- receipts --------------------------------------------------------------------------------

    def receipt_for(self, revisions: Sequence[ConsentRevision]) -> str:
        """A signed receipt (compact JWS) for the revisions of one change."""
        if self._issue is None:
            raise ConfigError("this hub is not set up to sign consent receipts")
        name = self._directory.program(revisions[0].recipient).name if revisions else None
        claims = receipt_claims(
            revisions, issuer=self._issuer, issued_at=self._clock(), recipient_name=name
        )
        return self._issue(claims)

    def status_of(self, hashes: Iterable[str]) -> dict[str, ConsentRevision | None]:
        """For each revision hash, the latest revision of its history (None when unknown).

        The receipt names no person, so the history is found by the hash itself.
        """
        wanted = set(hashes)
        owners = {
            r.hash: (r.person_id, r.recipient, r.event_type)
            for r in self._store.consents()
            if r.hash in wanted
        }
        with self._store.transaction() as tx:
            histories = tx.consent_history({person for person, _, _ in owners.values()})
        return {
            h: (histories[owners[h]][-1] if h in owners and histories.get(owners[h]) else None)
            for h in wanted
        }

    # -- reads -----------------------------------------------------------------------------------

    def person_id(self, ref: str) -> str:
        """The person id ``ref`` names (``PERSON_ID`` or ``PROGRAM:LOCAL_ID``), or NotFoundError."""
        with self._store.transaction() as tx:
            return self.resolve(tx, ref)

    def show(self, ref: str) -> PersonView:
        with self._store.transaction() as tx:
            person = self.resolve(tx, ref)
            links = tx.links_of([person]).get(person, {})
            history = {
                (recipient, event_type): revisions
                for (_, recipient, event_type), revisions in tx.consent_history([person]).items()
            }
            erased = bool(tx.erased_persons([person]))
        return PersonView(person, links, history, erased)

    def now(self) -> datetime:
        return self._clock()
