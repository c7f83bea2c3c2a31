"""What a privacy officer runs against the store: verify, reconcile, prove, report.

Each reads committed data only. Verification and proofs need nothing but the leaves,
the checkpoints and a public key; reconciliation and reports also read the facts the leaves
record (events, rejections, decisions, deliveries, consents, links).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub.audit import merkle
from hub.audit.log import covering_checkpoint, record_bytes
from hub.audit.merkle import Tree
from hub.audit.pseudonyms import Pseudonyms
from hub.audit.reports import (
    DisclosureRow,
    Format,
    Lang,
    RecipientRow,
    ReportScope,
    checkpoint_line,
    render_correction_list,
    render_disclosures,
)
from hub.audit.verification import LeafInput, Verdict, verify_log
from hub.config.directory import Directory
from hub.errors import NotFoundError
from hub.model import AuditRecord, Checkpoint, DecisionOutcome
from hub.ports import SignatureCheck, Store
from hub.wire.topics import RECEIPTS_TOPIC


def verify_store(store: Store, check: SignatureCheck, key_id: str | None) -> Verdict:
    """The live log: every leaf against its stored hash and its neighbours, every checkpoint."""

    def leaves() -> Iterator[LeafInput]:
        for record in store.audit_records():
            yield LeafInput(record_bytes(record), record.hash)

    return verify_log(leaves(), store.checkpoints(), check, key_id=key_id)


@dataclass(frozen=True, slots=True)
class InclusionProof:
    index: int
    leaf_hash: str
    checkpoint: Checkpoint
    path: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "leaf_index": self.index,
            "leaf_hash": self.leaf_hash,
            "tree_size": self.checkpoint.size,
            "root": self.checkpoint.root,
            "checkpoint": self.checkpoint.seq,
            "key_id": self.checkpoint.key_id,
            "signature": self.checkpoint.signature,
            "path": self.path,
        }


def prove_inclusion(
    store: Store, index: int, checkpoint_seq: int | None = None, *, size: int | None = None
) -> InclusionProof:
    """An RFC 9162 inclusion proof of leaf ``index`` in a signed checkpoint: number
    ``checkpoint_seq``, or the one of tree ``size`` (as reports name it), or the newest;
    checked before it is handed out."""
    checkpoints = store.checkpoints()
    if size is not None:
        chosen = next((c for c in checkpoints if c.size == size), None)
        if chosen is None:
            newest = (
                f"the newest is checkpoint {checkpoints[-1].seq} of tree size "
                f"{checkpoints[-1].size}"
                if checkpoints
                else "none is signed yet; run 'tellonce audit checkpoint'"
            )
            raise NotFoundError(f"no signed checkpoint has tree size {size} ({newest})")
    elif checkpoint_seq is None:
        chosen = checkpoints[-1] if checkpoints else None
    else:
        chosen = next((c for c in checkpoints if c.seq == checkpoint_seq), None)
    if chosen is None:
        raise NotFoundError(
            "no such signed checkpoint; run 'tellonce audit checkpoint' to sign the log first"
        )
    if not 0 <= index < chosen.size:
        raise NotFoundError(
            f"leaf {index} is not covered by checkpoint {chosen.seq} (leaves 0 to "
            f"{chosen.size - 1}); pick a later checkpoint or sign a new one"
        )
    hashes = store.leaf_hashes(chosen.size)
    path = Tree(hashes).inclusion_proof(index, chosen.size)
    merkle.verify_inclusion(index, chosen.size, hashes[index], path, bytes.fromhex(chosen.root))
    return InclusionProof(index, hashes[index].hex(), chosen, [h.hex() for h in path])


# -- reconciliation -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tally:
    fact: str  # what is counted, e.g. "accepted events"
    leaves: int
    facts: int

    @property
    def ok(self) -> bool:
        return self.leaves == self.facts


@dataclass(frozen=True, slots=True)
class Reconciliation:
    tallies: list[Tally]
    problems: list[str]  # specific mismatches beyond the counts (ids only)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tallies) and not self.problems


def reconcile(store: Store, pseudonyms: Pseudonyms) -> Reconciliation:
    """Leaf counts against the facts in the store, and one decision per recipient per event.

    Leaves name events by their keyed hash (``hub.audit.pseudonyms``); the store's decisions are
    hashed the same way to be matched with them.
    """
    kinds: Counter[str] = Counter()
    announced: dict[str, int] = {}  # event -> recipients its accepted leaf announced
    decided_leaves: set[tuple[str, str, str]] = set()
    erased_leaves: set[str] = set()  # persons an ``erased`` leaf names
    for record in store.audit_records():
        kinds[record.kind] += 1
        if record.kind == "erased":
            erased_leaves.add(str(record.data.get("person")))
        elif record.kind == "accepted":
            announced[record.data["event"]] = int(record.data.get("recipients", 0))
        elif record.kind in ("disclosed", "withheld"):
            decided_leaves.add((record.data["event"], record.data["recipient"], record.kind))

    decisions = store.decisions()
    outcomes = Counter(d.outcome for d in decisions)
    all_deliveries = store.deliveries()
    deliveries = Counter(d.status for d in all_deliveries)
    dead_letters = sum(1 for d in all_deliveries if d.dead_lettered_at is not None)
    consents = Counter(r.state.value for r in store.consents())
    rejections = store.rejections()
    erasures = store.erasures()
    # Receipts the hub refused are kept with the rejections, under their own leaf kind.
    refused = sum(1 for r in rejections if r.topic == RECEIPTS_TOPIC)
    tallies = [
        Tally("accepted events", kinds["accepted"], len(store.events())),
        Tally("rejected records", kinds["rejected"], len(rejections) - refused),
        Tally("refused receipts", kinds["receipt_refused"], refused),
        Tally("disclosures", kinds["disclosed"], outcomes[DecisionOutcome.DISCLOSED]),
        Tally("withholdings", kinds["withheld"], outcomes[DecisionOutcome.WITHHELD]),
        Tally("confirmed deliveries", kinds["delivered"], deliveries["delivered"]),
        Tally("dead letters", kinds["dead_lettered"], dead_letters),
        Tally("consents given", kinds["consent_given"], consents["given"]),
        Tally("consents withdrawn", kinds["consent_withdrawn"], consents["withdrawn"]),
        Tally("identity links", kinds["identity_linked"], store.link_count()),
        Tally("erased persons", kinds["erased"], len(erasures)),
    ]
    problems: list[str] = []
    refs = {(d.source, d.event_id): pseudonyms.event(d.source, d.event_id) for d in decisions}
    per_event = Counter(refs[(d.source, d.event_id)] for d in decisions)
    for event, expected in announced.items():
        if per_event[event] != expected:
            problems.append(
                f"event {event}: {per_event[event]} decisions recorded, {expected} recipients "
                "announced in its accepted leaf"
            )
    stored = {(refs[(d.source, d.event_id)], d.recipient, d.outcome.value) for d in decisions}
    for event, recipient, outcome in sorted(stored ^ decided_leaves)[:20]:
        where = "the store" if (event, recipient, outcome) in stored else "the audit log"
        problems.append(f"event {event}, {recipient}: {outcome} only in {where}")
    # Person ids are the hub's random ids, never a local id: they may be named.
    for person in sorted(erased_leaves ^ erasures.keys())[:20]:
        where = "the store" if person in erasures else "the audit log"
        problems.append(f"person {person}: erased only in {where}")
    return Reconciliation(tallies, problems)


# -- disclosure reports ---------------------------------------------------------------------


def disclosure_rows(
    store: Store,
    pseudonyms: Pseudonyms,
    *,
    person_id: str | None = None,
    recipient: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[DisclosureRow]:
    """Every disclosure and withholding in scope, oldest first, with its proof reference."""
    events = {(e.source, e.event_id): e for e in store.events()}
    deliveries = {d.notification_id: d for d in store.deliveries()}
    erased = store.erasures()
    checkpoints = store.checkpoints()
    leaf_of: dict[tuple[str, str], int] = {}
    for record in _decision_leaves(store):
        leaf_of[(record.data["event"], record.data["recipient"])] = record.index
    rows = []
    for d in store.decisions():
        event = events.get((d.source, d.event_id))
        if event is None or (person_id is not None and event.person_id != person_id):
            continue
        if recipient is not None and d.recipient != recipient:
            continue
        if (since is not None and d.decided_at < since) or (
            until is not None and d.decided_at >= until
        ):
            continue
        delivery = deliveries.get(d.notification_id or "")
        ref = pseudonyms.event(d.source, d.event_id)
        leaf = leaf_of.get((ref, d.recipient), -1)
        covering = covering_checkpoint(checkpoints, leaf) if leaf >= 0 else None
        rows.append(
            DisclosureRow(
                decided_at=d.decided_at,
                event_type=event.event_type,
                event=ref,
                recipient=d.recipient,
                outcome=d.outcome.value,
                reason=d.reason,
                fields=d.fields,
                consent_revision=d.consent_revision,
                delivery=(
                    "not_sent"
                    if d.outcome is DecisionOutcome.WITHHELD
                    else (delivery.status if delivery else "pending")
                ),
                delivered_at=delivery.recorded_at if delivery else None,
                leaf_index=leaf,
                checkpoint_size=covering.size if covering else None,
                erased=event.person_id is not None and event.person_id in erased,
            )
        )
    # Leaves are in the order the hub decided (event refs are hashes: no order of their own).
    rows.sort(key=lambda r: (r.decided_at, r.leaf_index, r.recipient))
    return rows


def correction_list(rows: list[DisclosureRow], directory: Directory) -> list[RecipientRow]:
    """Programs that received the person's data (disclosures in ``rows``), one line each."""
    by_recipient: dict[str, list[DisclosureRow]] = {}
    for row in rows:
        if row.outcome == DecisionOutcome.DISCLOSED.value:
            by_recipient.setdefault(row.recipient, []).append(row)
    jurisdictions = {j.id: j.name for j in directory.jurisdictions}
    result = []
    for recipient, received in sorted(by_recipient.items()):
        program = directory.program(recipient)
        result.append(
            RecipientRow(
                recipient=recipient,
                recipient_name=program.name,
                jurisdiction=jurisdictions.get(program.jurisdiction, program.jurisdiction),
                disclosures=len(received),
                first_disclosed_at=min(r.decided_at for r in received),
                last_disclosed_at=max(r.decided_at for r in received),
                event_types=tuple(sorted({r.event_type for r in received})),
            )
        )
    return result


@dataclass(frozen=True, slots=True)
class Report:
    """A rendered report, and how many disclosures and withholdings it was made from."""

    text: str
    rows: int


def disclosure_report(
    store: Store,
    pseudonyms: Pseudonyms,
    directory: Directory,
    *,
    now: datetime,
    fmt: Format,
    lang: Lang,
    person: str | None = None,
    resolve: Callable[[str], str] = str,
    recipient: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    correction_years: float | None = None,
) -> Report:
    """Disclosures and withholdings in scope, rendered with proof references and the newest
    checkpoint; with ``correction_years``, the person's correction list instead, over that many
    years back unless ``since`` is given. ``resolve`` turns ``person`` (an id or
    PROGRAM:LOCAL_ID) into a person id, raising NotFoundError for nobody (default: ``person``
    is a person id already)."""
    person_id = resolve(person) if person else None
    if correction_years is not None:
        if person_id is None:
            raise ValueError("a correction list is for one person")
        since = since or now - timedelta(days=round(365.25 * correction_years))
    rows = disclosure_rows(
        store, pseudonyms, person_id=person_id, recipient=recipient, since=since, until=until
    )
    checkpoints = store.checkpoints()
    handle = f"person {person_id[:8]}" if person_id else None
    if person_id and person_id in store.erasures():
        handle = f"{handle} (erased)"
    scope = ReportScope(
        person=handle,
        recipient=recipient,
        since=since,
        until=until,
        generated_at=now,
        checkpoint=checkpoint_line(checkpoints[-1]) if checkpoints else None,
    )
    if correction_years is not None:
        text = render_correction_list(correction_list(rows, directory), scope, fmt, lang)
    else:
        text = render_disclosures(rows, scope, fmt, lang)
    return Report(text, len(rows))


def _decision_leaves(store: Store) -> Iterator[AuditRecord]:
    for record in store.audit_records():
        if record.kind in ("disclosed", "withheld"):
            yield record
