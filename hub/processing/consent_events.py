"""Consent changes from client-facing portals, consumed from ``tellonce.consent.v1``.

The wire contract is the life events' one (DESIGN.md section 3): Confluent-framed Avro
(``ca.tellonce.consent.ConsentChanged``), CloudEvents binary-mode headers, key = the client's id
at the portal. The portal must be a directory program marked ``consent_portal``; the client is
found through the identity link of ``(ce_source, subject_id)``.

Everything happens inside the hub worker's batch transaction, with the offsets, and in offset
order, so a grant and a withdrawal in one batch end withdrawn. Each change goes through
``ConsentService.apply``, the rule path the command line uses. A bad record becomes a rejection
exactly like a bad life event (``hub.processing.rejections.reject``) and never stops the batch:
whatever it
makes the hub raise while it is read and checked, before anything of it is written, rejects it.
A change whose writes the database itself refuses is rejected by the worker (``set_aside``,
reason ``unstorable``; see ``hub.processing.worker``).

Idempotency: ``ce_source`` + ``ce_id`` is the key, kept in the ``consent_events`` table under a
unique constraint and written with the revisions. A repeat is skipped; replays of the same
offset never get here, because the offsets commit with the revisions.

A portal also sends ``ca.tellonce.consent.ErasureRequested`` on this topic, in order with the
client's consent changes: the client asked to be erased, so it is applied as ``tellonce person
erase --force`` would (``hub.privacy.erasure``), notices still in flight dead-lettered, inside
this batch's transaction and once per ``(ce_source, ce_id)``. Any later change or erasure
request for an erased client is rejected with reason ``erased``.

A portal signs its records as publishers sign life events (``hub.wire.signatures``), with a key
the directory lists for it; the signature is checked right after the envelope, before decoding.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from consent.model import ConsentRevision, ConsentState, ConsentTerms, Evidence
from hub.audit.log import AuditLog
from hub.audit.pseudonyms import Pseudonyms
from hub.config.directory import Directory
from hub.consents.service import ConsentService, Histories
from hub.errors import ConflictError, NotFoundError, RejectedEvent
from hub.model import AppliedConsentEvent, Headers, InboundMessage, as_utc
from hub.ports import Clock, Codec, Decoded, RecordSigner, Transaction
from hub.privacy.erasure import ErasureService
from hub.processing.rejections import Rejecter, rejection_for
from hub.processing.rows import BatchRows, save_offsets
from hub.wire.cloudevents import CE_TYPE, Envelope, cloudevent_headers, read_envelope
from hub.wire.events import CLOCK_SKEW, EVENT_TYPES
from hub.wire.schemas import CONSENT_SCHEMA, ERASURE_SCHEMA
from hub.wire.signatures import SignaturePolicy, check_event_signature, signed
from hub.wire.topics import CONSENT_TOPIC

log = structlog.get_logger(__name__)

CONSENT_CE_TYPE = CONSENT_SCHEMA
MAX_PORTAL_ACTOR_CHARS = 64  # the actor column
MAX_PORTAL_CHANNEL_CHARS = 32  # the channel column


def consent_message(
    codec: Codec,
    *,
    source: str,
    record: dict[str, Any],
    at: datetime,
    event_id: str | None = None,
    signer: RecordSigner | None = None,
) -> tuple[bytes, bytes, Headers, str]:
    """(key, value, headers, event id) of one consent change, as a portal publishes it, signed
    by ``signer`` (a key of the portal) if given."""
    return _portal_message(codec, CONSENT_SCHEMA, source, record, at, event_id, signer)


def erasure_message(
    codec: Codec,
    *,
    source: str,
    record: dict[str, Any],
    at: datetime,
    event_id: str | None = None,
    signer: RecordSigner | None = None,
) -> tuple[bytes, bytes, Headers, str]:
    """(key, value, headers, event id) of one erasure request, as a portal publishes it, signed
    by ``signer`` if given: ``record`` holds ``subject_id``, ``channel``, ``actor`` and
    ``recorded_at``."""
    return _portal_message(codec, ERASURE_SCHEMA, source, record, at, event_id, signer)


def _portal_message(
    codec: Codec,
    schema: str,
    source: str,
    record: dict[str, Any],
    at: datetime,
    event_id: str | None,
    signer: RecordSigner | None,
) -> tuple[bytes, bytes, Headers, str]:
    subject = str(record["subject_id"])
    ce_id = event_id or str(uuid.uuid4())
    value = codec.encode(schema, record)
    headers = cloudevent_headers(ce_id, schema, at, subject=subject, source=source)
    key = subject.encode()
    if signer is not None:
        headers = signed(key, value, headers, signer)
    return key, value, headers, ce_id


@dataclass(slots=True)
class ConsentSummary:
    applied: int = 0  # consent changes and erasures
    rejected: int = 0
    duplicates: int = 0
    erased: int = 0  # of ``applied``, the erasure requests
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Change:
    envelope: Envelope
    recipient: str
    event_types: tuple[str, ...]
    state: ConsentState
    evidence: Evidence
    terms: ConsentTerms | None


@dataclass(frozen=True, slots=True)
class _ErasureRequest:
    envelope: Envelope
    channel: str


class ConsentIntake:
    """Applies one micro-batch of consent events inside the caller's transaction."""

    topic = CONSENT_TOPIC

    def __init__(
        self,
        *,
        directory: Directory,
        codec: Codec,
        clock: Clock,
        group_id: str,
        service: ConsentService,
        erasure: ErasureService,
        pseudonyms: Pseudonyms,
        clock_skew: timedelta = CLOCK_SKEW,
        signatures: SignaturePolicy | None = None,
    ) -> None:
        self._directory = directory
        self._signatures = signatures
        self._codec = codec
        self._clock = clock
        self._service = service
        self._erasure = erasure
        self._ids = pseudonyms
        self._reject = Rejecter(codec, pseudonyms, directory)
        self._skew = clock_skew
        self.group_id = group_id

    def process(self, tx: Transaction, messages: Sequence[InboundMessage]) -> ConsentSummary:
        now = self._clock()
        summary = ConsentSummary()
        chain, rows = AuditLog(tx.last_audit()), BatchRows()
        parsed: list[_Change | _ErasureRequest | RejectedEvent] = []
        for message in messages:
            try:
                parsed.append(self._parse(message, now))
            except Exception as exc:
                parsed.append(rejection_for(exc))
        # One read per portal for the clients, one for their histories: batch the database work.
        subjects: dict[str, set[str]] = defaultdict(set)
        for item in parsed:
            if not isinstance(item, RejectedEvent):
                subjects[item.envelope.source].add(item.envelope.subject)
        persons = {
            (source, subject): person
            for source, wanted in subjects.items()
            for subject, person in tx.persons_for(source, wanted).items()
        }
        histories = tx.consent_history(set(persons.values()))
        erased = tx.erased_persons(set(persons.values()))  # grows as the batch erases
        seen = tx.known_consent_events(
            (item.envelope.source, item.envelope.event_id)
            for item in parsed
            if not isinstance(item, RejectedEvent)
        )

        for message, item in zip(messages, parsed, strict=True):
            position = (message.topic, message.partition)
            summary.next_offsets[position] = max(
                summary.next_offsets.get(position, 0), message.offset + 1
            )
            try:  # everything that can fail on this record's data, before anything is written
                if isinstance(item, RejectedEvent):  # unreadable: rejected below, in its turn
                    raise item
                person = persons.get((item.envelope.source, item.envelope.subject))
                if person is None:
                    raise RejectedEvent(
                        "unknown_person",
                        f"no client is linked at program {item.envelope.source} under the key; "
                        "link the client's portal account before sending consent changes",
                    )
                key = (item.envelope.source, item.envelope.event_id)
                if key in seen:
                    summary.duplicates += 1
                    log.info("duplicate consent event ignored", event_ref=self._event(item))
                    continue
                if person in erased:
                    raise RejectedEvent(
                        "erased",
                        "the client was erased: the hub no longer records consent changes or "
                        "erasure requests for them",
                    )
                revisions: list[ConsentRevision] = []
                if isinstance(item, _Change):
                    revisions = self._plan(person, item, histories)
            except Exception as exc:
                self._reject(rows, chain, message, rejection_for(exc), now)
                summary.rejected += 1
                continue
            if isinstance(item, _ErasureRequest):
                # The rows gathered so far are written first: whatever the batch recorded
                # for this client before the request lands before their key is destroyed.
                rows.write(tx)
                rows = BatchRows()
                done = self._erasure.apply(
                    tx,
                    chain,
                    person,
                    now,
                    force=True,  # the client asked: notices still in flight are dead-lettered
                    channel=item.channel,
                    audit={"event": self._event(item)},
                )
                erased.add(person)
                rows.consent_events.append(AppliedConsentEvent.of(key, person, message, now))
                seen.add(key)
                summary.applied += 1
                summary.erased += 1
                log.info(
                    "erasure request applied",
                    event_ref=self._event(item),
                    dead_lettered=len(done.dead_lettered),
                )
                continue
            audit = {"event": self._event(item)}
            self._service.note(chain, revisions, histories, audit=audit)
            rows.consents.extend(revisions)
            rows.consent_events.append(AppliedConsentEvent.of(key, person, message, now))
            seen.add(key)
            summary.applied += 1
            log.info(
                "consent event applied",
                event_ref=self._event(item),
                recipient=item.recipient,
                state=item.state.value,
            )
        rows.write(tx)
        save_offsets(tx, self.group_id, summary.next_offsets)
        chain.write(tx)
        return summary

    def set_aside(
        self, tx: Transaction, message: InboundMessage, error: RejectedEvent
    ) -> ConsentSummary:
        """Reject one record alone in ``tx`` and save its partition's offset past it: for a
        record whose writes the database refused (``unstorable``, see ``hub.processing.worker``)."""
        chain, rows = AuditLog(tx.last_audit()), BatchRows()
        self._reject(rows, chain, message, error, self._clock())
        rows.write(tx)
        tx.save_offsets(self.group_id, message.topic, {message.partition: message.offset + 1})
        chain.write(tx)
        return ConsentSummary(
            rejected=1, next_offsets={(message.topic, message.partition): message.offset + 1}
        )

    # -- steps -------------------------------------------------------------------------------

    def _event(self, change: _Change | _ErasureRequest) -> str:
        """The event as leaves and logs name it: the portal, and its ce_id hashed."""
        return self._ids.event(change.envelope.source, change.envelope.event_id)

    def _parse(self, message: InboundMessage, now: datetime) -> _Change | _ErasureRequest:
        envelope = read_envelope(message, self._directory, now, self._skew)
        if self._signatures is not None:  # before a byte of the value is decoded
            check_event_signature(message, envelope.program, now, self._signatures)
        decoded = self._codec.decode(message.value)
        schema = decoded.entry.name
        if schema not in (CONSENT_SCHEMA, ERASURE_SCHEMA):
            raise RejectedEvent(
                "unexpected_schema",
                f"schema {schema} is neither {CONSENT_SCHEMA} nor {ERASURE_SCHEMA}; only "
                f"consent changes and erasure requests belong on {CONSENT_TOPIC}",
            )
        if envelope.ce_type != schema:
            raise RejectedEvent("type_mismatch", f"{CE_TYPE} must be {schema} for this schema id")
        if not envelope.program.consent_portal:
            raise RejectedEvent(
                "not_authorized",
                f"program {envelope.source} is not a consent portal in the directory "
                "(consent_portal = true)",
            )
        envelope.check_subject(decoded.text("subject_id"))
        if schema == ERASURE_SCHEMA:
            return self._erasure_request(envelope, decoded, now)
        event_types = decoded.texts("event_types")
        if not event_types:
            raise RejectedEvent("invalid_event", "event_types: name at least one event type")
        state = ConsentState.GIVEN if decoded.text("state") == "GIVEN" else ConsentState.WITHDRAWN
        actor = decoded.text("actor")
        if not 1 <= len(actor) <= MAX_PORTAL_ACTOR_CHARS:
            raise RejectedEvent(
                "invalid_event", f"actor: must be 1 to {MAX_PORTAL_ACTOR_CHARS} characters"
            )
        recorded_at = as_utc(decoded.moment("recorded_at"))
        if recorded_at > now + self._skew:
            raise RejectedEvent("invalid_event", "recorded_at: must not be in the future")
        notice_version = decoded.optional_text("notice_version")
        if state is ConsentState.GIVEN and notice_version is None:
            raise RejectedEvent(
                "missing_notice", "a grant must name the notice version and hash shown"
            )
        evidence = Evidence(
            channel=decoded.text("channel"),
            actor=actor,
            recorded_at=recorded_at,
            notice_version=notice_version,
            notice_hash=decoded.optional_text("notice_hash"),
        )
        expires = decoded.optional_moment("expires_at")
        # A withdrawal keeps the terms of the grant it ends (consent.rules.next_revision).
        terms = (
            ConsentTerms(
                purpose=decoded.text("purpose"),
                legal_basis=decoded.text("legal_basis"),
                expires_at=as_utc(expires) if expires is not None else None,
            )
            if state is ConsentState.GIVEN
            else None
        )
        return _Change(
            envelope, decoded.text("recipient"), tuple(event_types), state, evidence, terms
        )

    def _erasure_request(
        self, envelope: Envelope, decoded: Decoded, now: datetime
    ) -> _ErasureRequest:
        """An erasure request's evidence, checked as a consent change's is."""
        channel, actor = decoded.text("channel"), decoded.text("actor")
        if not 1 <= len(channel) <= MAX_PORTAL_CHANNEL_CHARS:
            raise RejectedEvent(
                "invalid_event", f"channel: must be 1 to {MAX_PORTAL_CHANNEL_CHARS} characters"
            )
        if not 1 <= len(actor) <= MAX_PORTAL_ACTOR_CHARS:
            raise RejectedEvent(
                "invalid_event", f"actor: must be 1 to {MAX_PORTAL_ACTOR_CHARS} characters"
            )
        if as_utc(decoded.moment("recorded_at")) > now + self._skew:
            raise RejectedEvent("invalid_event", "recorded_at: must not be in the future")
        return _ErasureRequest(envelope, channel)

    def _plan(self, person: str, change: _Change, histories: Histories) -> list[ConsentRevision]:
        """Check each rule in turn so the rejection names it, then plan it through the service."""
        if change.recipient not in self._directory.program_ids:
            raise RejectedEvent("unknown_recipient", "recipient is not a program in the directory")
        # Details name the field, never a value sent: the portal's strings are untrusted.
        if any(event_type not in EVENT_TYPES for event_type in change.event_types):
            raise RejectedEvent(
                "not_subscribed",
                f"event_types: names an event type the hub does not know; known: "
                f"{', '.join(EVENT_TYPES)}",
            )
        try:
            self._service.check_scope(change.recipient, change.event_types)
        except NotFoundError as exc:
            raise RejectedEvent("not_subscribed", str(exc)) from None
        version, digest = change.evidence.notice_version, change.evidence.notice_hash
        if (version is None) != (digest is None):
            raise RejectedEvent(
                "missing_notice", "notice_version and notice_hash go together: give both or neither"
            )
        if version is not None and digest is not None:
            try:
                self._service.notices.check(version, digest)
            except NotFoundError:
                raise RejectedEvent(
                    "unknown_notice",
                    "notice_version: not a version of the hub's notices; "
                    "'tellonce consent notices' lists them",
                ) from None
            except ConflictError:
                raise RejectedEvent(
                    "notice_mismatch",
                    "notice_hash: not the hash of the notice version given; send the version "
                    "and hash 'tellonce consent notices' lists",
                ) from None
        try:
            self._service.check_evidence(change.state, change.evidence, change.terms)
        except (NotFoundError, ConflictError) as exc:
            raise RejectedEvent("invalid_event", str(exc)) from None
        try:
            return self._service.plan(
                person,
                change.recipient,
                change.event_types,
                change.state,
                change.evidence,
                change.terms,
                histories,
            )
        except (NotFoundError, ConflictError) as exc:
            raise RejectedEvent("consent_conflict", str(exc)) from None
