"""One micro-batch of inbound life events, from raw records to decisions and outbox rows.

Everything here happens inside the caller's database transaction: decisions, audit records,
outbox rows and the next offsets are written together or not at all (DESIGN.md section 9). A bad
record becomes a rejection, never an exception that stops the batch: whatever one record makes
the hub raise while it is read, checked or mapped (not only ``RejectedEvent``) rejects that record
(``rejection_for``). Those steps touch no database; only the writes of the batch do, so a failing
store or signer still fails the whole batch, which the worker retries (fail closed). A record
whose writes the database itself refuses is found by the worker and set aside (``set_aside``,
reason ``unstorable``; see ``hub.worker``).

``read_envelope`` (CloudEvents headers and key) and ``reject`` (rejection row, message on the
rejected topic, audit leaf) are shared with the other inbound topics (``hub.consent_events``),
so every topic of the wire contract is checked and refused the same way.

Leaves and rejection rows name an event by its program and the keyed hash of its ``ce_id``
(``hub.pseudonyms``), never by the id as the publisher sent it.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from consent.rules import decide_disclosure
from hub.audit import AuditLog
from hub.directory import Directory, Program
from hub.errors import NotFoundError, RejectedEvent, TellonceError
from hub.events import BY_SCHEMA, CLOCK_SKEW, EventType, validate_payload
from hub.model import (
    HUB_SOURCE,
    REJECTED_TOPIC,
    AcceptedEvent,
    Decision,
    Headers,
    InboundMessage,
    OutboxMessage,
    Outcome,
    RejectionRecord,
    notify_topic,
)
from hub.ports import Clock, Codec, Transaction
from hub.pseudonyms import Pseudonyms

log = structlog.get_logger(__name__)

REJECTION_SCHEMA = "ca.tellonce.lifeevents.Rejection"
REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type")
MAX_HEADER_CHARS = 256
# ce_time: no event of this hub predates the Unix epoch; later than the clock skew is refused.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
# C0 and C1 controls and DEL: no id has a use for them; NUL cannot even be stored (PostgreSQL).
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# CloudEvents attributes that may appear once only: a second copy could say something else.
SINGLE_HEADERS = (*REQUIRED_HEADERS, "ce_subject")
# uuid5 namespace for notification and rejection ids: the same input always gives the same id,
# so reprocessing after a crash cannot mint a second notification for one (event, recipient).
ID_NAMESPACE = uuid.UUID("6f1c3a52-9a43-4d2e-9a51-7f0e2b8c1d10")


@dataclass(slots=True)
class BatchSummary:
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    disclosed: int = 0
    withheld: int = 0
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Parsed:
    message: InboundMessage
    source: str
    event_id: str
    time: datetime
    subject: str
    event_type: EventType
    record: dict[str, Any]


def notification_id(source: str, event_id: str, recipient: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{source}\x1f{event_id}\x1f{recipient}"))


class BatchProcessor:
    def __init__(
        self,
        *,
        directory: Directory,
        codec: Codec,
        clock: Clock,
        group_id: str,
        pseudonyms: Pseudonyms,
        clock_skew: timedelta = CLOCK_SKEW,
    ) -> None:
        self._directory = directory
        self._codec = codec
        self._clock = clock
        self._ids = pseudonyms
        self._reject = Rejecter(codec, pseudonyms, directory)
        self._skew = clock_skew
        self.group_id = group_id

    def process(self, tx: Transaction, messages: Sequence[InboundMessage]) -> BatchSummary:
        now = self._clock()
        summary = BatchSummary()
        chain = AuditLog(tx.last_audit())
        parsed: list[_Parsed | tuple[InboundMessage, RejectedEvent]] = []
        for message in messages:
            try:
                parsed.append(self.parse(message, now))
            except Exception as exc:
                parsed.append((message, rejection_for(exc)))

        good = [p for p in parsed if isinstance(p, _Parsed)]
        known = tx.known_events((p.source, p.event_id) for p in good)
        persons: dict[tuple[str, str], str] = {}
        by_source: dict[str, list[str]] = defaultdict(list)
        for p in good:
            by_source[p.source].append(p.subject)
        for source, subjects in by_source.items():
            for subject, person_id in tx.persons_for(source, subjects).items():
                persons[(source, subject)] = person_id
        person_ids = set(persons.values())
        links = tx.links_of(person_ids)
        histories = tx.consent_history(person_ids)

        for item in parsed:
            message = item.message if isinstance(item, _Parsed) else item[0]
            position = (message.topic, message.partition)
            summary.next_offsets[position] = max(
                summary.next_offsets.get(position, 0), message.offset + 1
            )
            if not isinstance(item, _Parsed):
                self._reject(tx, chain, message, item[1], now)
                summary.rejected += 1
                continue
            key = (item.source, item.event_id)
            event = self._ids.event(item.source, item.event_id)
            if key in known:
                summary.duplicates += 1
                log.info("duplicate event ignored", event_ref=event)
                continue
            person = persons.get((item.source, item.subject))
            try:  # everything that can fail on this record's data, before anything is written
                decisions = self._decide(item, person, links, histories, now)
                notices = [
                    self._notice(item, d, links[person or ""], now)
                    for d in decisions
                    if d.outcome is Outcome.DISCLOSED
                ]
            except Exception as exc:
                self._reject(tx, chain, message, rejection_for(exc), now)
                summary.rejected += 1
                continue
            known.add(key)
            tx.add_event(
                AcceptedEvent(
                    source=item.source,
                    event_id=item.event_id,
                    event_type=item.event_type.name,
                    time=item.time,
                    person_id=person,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    processed_at=now,
                )
            )
            chain.append(
                "accepted",
                {
                    "event": event,
                    "type": item.event_type.name,
                    "position": message.position,
                    "person": person,
                    # how many decisions follow: reconcile checks one per recipient
                    "recipients": len(decisions),
                },
                now,
            )
            summary.accepted += 1
            outgoing = iter(notices)
            for decision in decisions:
                tx.add_decision(decision)
                if decision.outcome is Outcome.DISCLOSED:
                    summary.disclosed += 1
                    tx.add_outbox(next(outgoing))
                    chain.append(
                        "disclosed",
                        {
                            "event": event,
                            "recipient": decision.recipient,
                            "notification": decision.notification_id,
                            "consent": decision.consent_revision,
                            "fields": list(decision.fields),
                        },
                        now,
                    )
                else:
                    summary.withheld += 1
                    chain.append(
                        "withheld",
                        {
                            "event": event,
                            "recipient": decision.recipient,
                            "reason": decision.reason,
                            "consent": decision.consent_revision,
                        },
                        now,
                    )

        for (topic, partition), next_offset in summary.next_offsets.items():
            tx.save_offsets(self.group_id, topic, {partition: next_offset})
        chain.write(tx)
        return summary

    def set_aside(
        self, tx: Transaction, message: InboundMessage, error: RejectedEvent
    ) -> BatchSummary:
        """Reject one record alone in ``tx`` and save its partition's offset past it: for a
        record whose writes the database refused (``unstorable``, see ``hub.worker``)."""
        now = self._clock()
        chain = AuditLog(tx.last_audit())
        self._reject(tx, chain, message, error, now)
        position = (message.topic, message.partition)
        tx.save_offsets(self.group_id, message.topic, {message.partition: message.offset + 1})
        chain.write(tx)
        return BatchSummary(rejected=1, next_offsets={position: message.offset + 1})

    # -- steps -------------------------------------------------------------------------------

    def parse(self, message: InboundMessage, now: datetime) -> _Parsed:
        """Decode and validate one inbound record: headers, key, Avro body and payload rules.

        Touches no store. Raises RejectedEvent for anything wrong with the record; the property
        test and ``bench/fuzz_decode.py`` hold it to never raising anything else.
        """
        return parse_life_event(message, self._directory, self._codec, now, self._skew)

    def _decide(
        self,
        item: _Parsed,
        person: str | None,
        links: dict[str, dict[str, str]],
        histories: dict[tuple[str, str, str], list[Any]],
        now: datetime,
    ) -> list[Decision]:
        decisions = []
        for program in self._directory.recipients_of(item.event_type.name, origin=item.source):
            if person is None:
                send, reason, revision = False, "subject_not_linked", None
            else:
                verdict = decide_disclosure(
                    histories.get((person, program.id, item.event_type.name), []),
                    recipient_linked=program.id in links.get(person, {}),
                    now=now,
                )
                send, reason, revision = verdict.send, verdict.reason, verdict.revision
            fields = program.subscriptions[item.event_type.name].fields if send else ()
            decisions.append(
                Decision(
                    source=item.source,
                    event_id=item.event_id,
                    recipient=program.id,
                    outcome=Outcome.DISCLOSED if send else Outcome.WITHHELD,
                    reason=reason,
                    consent_revision=revision.hash if revision else None,
                    notification_id=(
                        notification_id(item.source, item.event_id, program.id) if send else None
                    ),
                    fields=tuple(fields),
                    decided_at=now,
                )
            )
        return decisions

    def _notice(
        self, item: _Parsed, decision: Decision, links: dict[str, str], now: datetime
    ) -> OutboxMessage:
        assert decision.notification_id is not None
        assert decision.consent_revision is not None
        local_id = links[decision.recipient]
        record: dict[str, Any] = {
            "notification_id": decision.notification_id,
            "recipient": decision.recipient,
            "subject_id": local_id,
            "event_id": item.event_id,
            "event_source": item.source,
            "event_time": item.time,
            "disclosed_fields": list(decision.fields),
            "consent_revision": decision.consent_revision,
        }
        # Only the fields the agreement grants are copied; the notice's other fields stay null.
        for name in decision.fields:
            record[name] = item.record.get(name)
        schema = item.event_type.notice_schema
        return OutboxMessage(
            message_id=decision.notification_id,
            topic=notify_topic(decision.recipient),
            key=local_id.encode(),
            value=self._codec.encode(schema, record),
            headers=cloudevent_headers(decision.notification_id, schema, now, subject=local_id),
            created_at=now,
        )


def parse_life_event(
    message: InboundMessage,
    directory: Directory,
    codec: Codec,
    now: datetime,
    skew: timedelta = CLOCK_SKEW,
) -> _Parsed:
    """Decode and check one inbound life event, or raise RejectedEvent: exactly the checks of a
    batch, without a store (``tellonce publish`` runs them before sending)."""
    envelope = read_envelope(message, directory, now, skew)
    source, program, subject = envelope.source, envelope.program, envelope.subject
    decoded = codec.decode(message.value)
    event_type = BY_SCHEMA.get(decoded.entry.name)
    if event_type is None:
        raise RejectedEvent("unexpected_schema", f"schema {decoded.entry.name} is not a life event")
    if envelope.ce_type != event_type.ce_type:
        raise RejectedEvent(
            "type_mismatch", f"ce_type must be {event_type.ce_type} for this schema id"
        )
    if event_type.name not in program.publishes:
        raise RejectedEvent(
            "not_authorized", f"program {source} may not publish {event_type.name} events"
        )
    payload = validate_payload(event_type, decoded.record, now)
    envelope.check_subject(payload.subject_id)
    return _Parsed(
        message=message,
        source=source,
        event_id=envelope.event_id,
        time=envelope.time,
        subject=subject,
        event_type=event_type,
        record=decoded.record,
    )


# -- shared with other inbound topics (hub.consent_events) -------------------------------------


@dataclass(frozen=True, slots=True)
class Envelope:
    """The CloudEvents headers and key of an inbound record, checked; the value is not."""

    source: str  # ce_source: a program of the directory
    program: Program
    event_id: str  # ce_id
    ce_type: str
    time: datetime  # ce_time
    subject: str  # the key: the subject's id at the publishing program
    message: InboundMessage

    def check_subject(self, subject_id: str) -> None:
        """The payload's subject must be the key (and ce_subject, when given)."""
        ce_subject = header_text(self.message, "ce_subject")
        if subject_id != self.subject or (ce_subject is not None and ce_subject != self.subject):
            raise RejectedEvent(
                "subject_mismatch", "key, ce_subject and subject_id must name the same client"
            )


def read_envelope(
    message: InboundMessage, directory: Directory, now: datetime, skew: timedelta = CLOCK_SKEW
) -> Envelope:
    """Check the CloudEvents binary-mode headers and the key, or raise RejectedEvent.

    ``ce_time`` must lie between 1970-01-01T00:00Z and ``now`` plus the allowed clock ``skew``
    (``out_of_range`` otherwise): an instant outside any plausible event breaks the stores and
    reports downstream (year 1 at +01:00 is year 0 in UTC, which Python cannot represent).
    """
    named: set[str] = set()
    for name, _ in message.headers:
        if "\ufffd" in name:  # the Kafka adapter's stand-in for bytes that are not UTF-8
            raise RejectedEvent("bad_header", "a header name is not UTF-8 text")
        if name in named and name in SINGLE_HEADERS:
            raise RejectedEvent(
                "bad_header", f"header {name} appears more than once; send each attribute once"
            )
        named.add(name)
    headers = {name: header_text(message, name) for name in REQUIRED_HEADERS}
    missing = [name for name, value in headers.items() if value is None]
    if missing:
        raise RejectedEvent(
            "missing_header",
            f"CloudEvents headers {', '.join(missing)} are required (Kafka binary mode)",
        )
    if headers["ce_specversion"] != "1.0":
        raise RejectedEvent("bad_header", "ce_specversion must be 1.0")
    if headers["content-type"] != "application/avro":
        raise RejectedEvent("bad_header", "content-type must be application/avro")
    source = str(headers["ce_source"])
    try:
        program = directory.program(source)
    except NotFoundError:
        raise RejectedEvent(
            "unknown_source", "ce_source is not a program in the directory"
        ) from None
    time = _parse_time(str(headers["ce_time"]))
    if time < EARLIEST_TIME:
        raise RejectedEvent("out_of_range", "ce_time: must not be before 1970-01-01T00:00Z")
    if time > now + skew:
        raise RejectedEvent(
            "out_of_range",
            f"ce_time: must not be more than {skew.total_seconds():g} s ahead of the hub's clock "
            "(TELLONCE_LIMITS__CLOCK_SKEW_S); check the publisher's clock",
        )
    if message.key is None:
        raise RejectedEvent("missing_key", "the key must be the subject's id at the publisher")
    try:
        subject = message.key.decode("utf-8")
    except UnicodeDecodeError:
        raise RejectedEvent("bad_key", "the key is not UTF-8 text") from None
    if CONTROL_CHARS.search(subject):
        raise RejectedEvent("bad_key", "the key holds control characters")
    return Envelope(
        source=source,
        program=program,
        event_id=str(headers["ce_id"]),
        ce_type=str(headers["ce_type"]),
        time=time,
        subject=subject,
        message=message,
    )


class Rejecter:
    """``reject`` bound to one intake's codec, pseudonym key and directory, so every inbound
    topic refuses a record the same way with one short call."""

    def __init__(self, codec: Codec, pseudonyms: Pseudonyms, directory: Directory) -> None:
        self._codec = codec
        self._pseudonyms = pseudonyms
        self._directory = directory

    def __call__(
        self,
        tx: Transaction,
        chain: AuditLog,
        message: InboundMessage,
        error: RejectedEvent,
        now: datetime,
    ) -> None:
        reject(
            tx,
            chain,
            self._codec,
            message,
            error,
            now,
            pseudonyms=self._pseudonyms,
            directory=self._directory,
        )


def reject(
    tx: Transaction,
    chain: AuditLog,
    codec: Codec,
    message: InboundMessage,
    error: RejectedEvent,
    now: datetime,
    *,
    pseudonyms: Pseudonyms,
    directory: Directory,
) -> None:
    """Record a refused record: rejection row, message on the rejected topic, audit leaf.

    The row and the leaf keep the keyed hash of ``ce_id`` (and of a ``ce_source`` that is no
    program). The message on the rejected topic gives the publisher back its own ``ce_id`` and
    ``ce_source`` as sent, so it can tell which of its events was refused.
    """
    source = _header_or_none(message, "ce_source")
    event_id = _header_or_none(message, "ce_id")
    position = message.position
    rejection_id = str(uuid.uuid5(ID_NAMESPACE, f"rejected\x1f{position}"))
    kept_source = (
        source if source is None or source in directory.program_ids else pseudonyms.of(source)
    )
    kept_id = pseudonyms.of(event_id) if event_id is not None else None
    tx.add_rejection(
        RejectionRecord.of(
            message, error.reason, error.detail, now, source=kept_source, event_id=kept_id
        )
    )
    value = codec.encode(
        REJECTION_SCHEMA,
        {
            "reason": error.reason,
            "detail": error.detail,
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "ce_source": source,
            "ce_id": event_id,
            "rejected_at": now,
        },
    )
    tx.add_outbox(
        OutboxMessage(
            message_id=rejection_id,
            topic=REJECTED_TOPIC,
            key=source.encode() if source else None,
            value=value,
            headers=cloudevent_headers(rejection_id, REJECTION_SCHEMA, now),
            created_at=now,
        )
    )
    chain.append(
        "rejected",
        {"position": position, "reason": error.reason, "source": kept_source, "event_id": kept_id},
        now,
    )
    log.warning("event rejected", position=position, reason=error.reason, detail=error.detail)


def cloudevent_headers(
    ce_id: str, ce_type: str, at: datetime, *, subject: str | None = None, source: str = HUB_SOURCE
) -> Headers:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", ce_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_time", at.isoformat().encode()),
        ("content-type", b"application/avro"),
    ]
    if subject is not None:
        headers.append(("ce_subject", subject.encode()))
    return headers


def header_text(message: InboundMessage, name: str) -> str | None:
    """A header as text, None when absent; RejectedEvent when not short UTF-8 text."""
    raw = message.header(name)
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RejectedEvent("bad_header", f"header {name} is not UTF-8 text") from None
    if not text or len(text) > MAX_HEADER_CHARS:
        raise RejectedEvent("bad_header", f"header {name} must be 1 to {MAX_HEADER_CHARS} chars")
    if CONTROL_CHARS.search(text):
        raise RejectedEvent("bad_header", f"header {name} holds control characters")
    return text


def rejection_for(exc: Exception) -> RejectedEvent:
    """The rejection of the one record whose reading, checking or mapping raised ``exc``.

    A retriable TellonceError (database, broker, signing key) is re-raised instead: it is not the
    record's fault, and the batch must fail and be retried. Anything else (the project's own
    errors, or a KeyError, OverflowError or the like from a library or a bug) rejects the record
    as ``unprocessable``, naming only the error class: its text may quote the value.
    """
    if isinstance(exc, RejectedEvent):
        return exc
    if isinstance(exc, TellonceError) and exc.retriable:
        raise exc
    return RejectedEvent(
        "unprocessable",
        f"the hub failed on this record ({type(exc).__name__}) and set it aside; check it "
        "against its schema and the wire contract, and tell the hub's operators",
    )


def unstorable(cause: str) -> RejectedEvent:
    """The rejection of the one record whose writes the database refused, or made the hub raise
    something unforeseen; ``cause`` is the error class, the only thing of the error it names."""
    return RejectedEvent(
        "unstorable",
        f"the hub could not store this record ({cause}) and set it aside so the records behind "
        "it go on; check it against its schema and the wire contract, and tell the hub's "
        "operators",
    )


def _header_or_none(message: InboundMessage, name: str) -> str | None:
    """The header as text for a rejection record, or None when it is itself the problem."""
    try:
        return header_text(message, name)
    except RejectedEvent:
        return None


def _parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RejectedEvent("bad_header", "ce_time must be an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise RejectedEvent("bad_header", "ce_time must carry a time zone (e.g. Z)")
    return parsed
