"""Use-cases for identity links and consents, as the CLI and the demo call them.

Each runs in one transaction and writes its audit record with it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from consent.model import ConsentRevision, ConsentState, Evidence, IdentityLink
from consent.rules import next_revision
from hub.audit import AuditChain
from hub.directory import Directory, check_event_type
from hub.errors import ConflictError, NotFoundError
from hub.ports import Store, Transaction


@dataclass(frozen=True, slots=True)
class PersonView:
    person_id: str
    links: dict[str, str]  # program -> local id
    history: dict[tuple[str, str], list[ConsentRevision]]  # (recipient, event type) -> revisions


class ConsentService:
    def __init__(self, store: Store, directory: Directory) -> None:
        self._store = store
        self._directory = directory

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

    def link(self, program: str, local_id: str, evidence: Evidence, to: str | None = None) -> str:
        """Link ``(program, local_id)`` to the person ``to`` refers to (a new person if None)."""
        self._directory.program(program)
        if not local_id or len(local_id) > 64:
            raise ConflictError("a local id must be 1 to 64 characters")
        with self._store.transaction() as tx:
            if tx.persons_for(program, [local_id]):
                raise ConflictError(
                    f"that id is already linked at program {program!r}; links are append-only"
                )
            if to is None:
                person = str(uuid.uuid4())
                tx.add_person(person, evidence.recorded_at)
            else:
                person = self.resolve(tx, to)
                if program in tx.links_of([person]).get(person, {}):
                    raise ConflictError(f"this person already has an id at program {program!r}")
            tx.add_link(IdentityLink(person, program, local_id, evidence))
            chain = AuditChain(tx.last_audit())
            chain.append(
                "identity_linked", {"person": person, "program": program}, evidence.recorded_at
            )
            for record in chain.pending:
                tx.add_audit(record)
        return person

    def record(
        self,
        ref: str,
        recipient: str,
        event_types: list[str],
        state: ConsentState,
        evidence: Evidence,
    ) -> list[ConsentRevision]:
        """Grant or withdraw consent for ``recipient`` to be told of ``event_types``."""
        program = self._directory.program(recipient)
        for event_type in event_types:
            check_event_type(event_type)
            if event_type not in program.subscriptions:
                raise NotFoundError(
                    f"program {recipient!r} does not receive {event_type} events under the "
                    f"directory; it receives: {', '.join(program.subscriptions) or 'nothing'}"
                )
        revisions = []
        with self._store.transaction() as tx:
            person = self.resolve(tx, ref)
            histories = tx.consent_history([person])
            chain = AuditChain(tx.last_audit())
            for event_type in event_types:
                revision = next_revision(
                    histories.get((person, recipient, event_type), []),
                    person_id=person,
                    recipient=recipient,
                    event_type=event_type,
                    state=state,
                    evidence=evidence,
                )
                tx.add_consent(revision)
                chain.append(
                    f"consent_{state.value}",
                    {
                        "person": person,
                        "recipient": recipient,
                        "type": event_type,
                        "revision": revision.hash,
                        "channel": evidence.channel,
                    },
                    evidence.recorded_at,
                )
                revisions.append(revision)
            for record in chain.pending:
                tx.add_audit(record)
        return revisions

    def show(self, ref: str) -> PersonView:
        with self._store.transaction() as tx:
            person = self.resolve(tx, ref)
            links = tx.links_of([person]).get(person, {})
            history = {
                (recipient, event_type): revisions
                for (_, recipient, event_type), revisions in tx.consent_history([person]).items()
            }
        return PersonView(person, links, history)
