"""One micro-batch of inbound life events, from raw records to decisions and outbox rows.

Everything here happens inside the caller's database transaction: decisions, audit records,
outbox rows and the next offsets are written together or not at all (DESIGN.md section 9), each
table's rows in one write at the end of the batch (``hub.processing.rows``). A bad record
becomes a rejection, never an exception that stops the batch: whatever one record makes the hub
raise while it is read, checked or mapped (not only ``RejectedEvent``) rejects that record
(``rejection_for``). Those steps touch no database; only the writes of the batch do, so a failing
store or signer still fails the whole batch, which the worker retries (fail closed). A record
whose writes the database itself refuses is found by the worker and set aside (``set_aside``,
reason ``unstorable``; see ``hub.processing.worker``).

The checks of one record are ``hub.wire.inbound.parse_life_event``; a refused record goes through
``hub.processing.rejections``, as on every inbound topic.

A person who was erased (``hub.privacy.erasure``) is still recognised through the blind index
of the publisher's id: every recipient of their later events is withheld with reason
``erased``, and no notice is queued.

Leaves and rejection rows name an event by its program and the keyed hash of its ``ce_id``
(``hub.audit.pseudonyms``), never by the id as the publisher sent it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from consent.rules import decide_disclosure
from hub.audit.log import AuditLog
from hub.audit.pseudonyms import Pseudonyms
from hub.config.directory import Directory
from hub.errors import RejectedEvent
from hub.model import (
    AcceptedEvent,
    Decision,
    DecisionOutcome,
    InboundMessage,
    OutboxMessage,
    notification_id,
)
from hub.ports import Clock, Codec, RecordSigner, Transaction
from hub.processing.rejections import Rejecter, rejection_for
from hub.processing.rows import BatchRows, save_offsets
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.events import CLOCK_SKEW
from hub.wire.inbound import ParsedEvent, parse_life_event
from hub.wire.signatures import NOTICE_CONTEXT, SignaturePolicy, event_digest, signed
from hub.wire.topics import notify_topic

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Counts:
    """What became of life events: the counts a batch reports and the worker adds up."""

    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    disclosed: int = 0
    withheld: int = 0

    def add(self, other: Counts) -> None:
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.duplicates += other.duplicates
        self.disclosed += other.disclosed
        self.withheld += other.withheld


@dataclass(slots=True)
class BatchSummary(Counts):
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def merge(self, part: BatchSummary) -> None:
        """Add the summary of a part of a batch, committed after the parts before it."""
        self.add(part)
        self.next_offsets.update(part.next_offsets)


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
        signatures: SignaturePolicy | None = None,
        notice_signer: RecordSigner | None = None,
    ) -> None:
        self._directory = directory
        self._signatures = signatures
        self._notice_signer = notice_signer
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
        rows = BatchRows()
        parsed: list[ParsedEvent | tuple[InboundMessage, RejectedEvent]] = []
        for message in messages:
            try:
                parsed.append(self.parse(message, now))
            except Exception as exc:
                parsed.append((message, rejection_for(exc)))

        good = [p for p in parsed if isinstance(p, ParsedEvent)]
        known = tx.known_events((p.source, p.event_id) for p in good)
        persons: dict[tuple[str, str], str] = {}
        by_source: dict[str, list[str]] = defaultdict(list)
        for p in good:
            by_source[p.source].append(p.subject)
        for source, subjects in by_source.items():
            for subject, person_id in tx.persons_for(source, subjects).items():
                persons[(source, subject)] = person_id
        person_ids = set(persons.values())
        erased = tx.erased_persons(person_ids)
        links = tx.links_of(person_ids)
        histories = tx.consent_history(person_ids)

        for item in parsed:
            message = item.message if isinstance(item, ParsedEvent) else item[0]
            position = (message.topic, message.partition)
            summary.next_offsets[position] = max(
                summary.next_offsets.get(position, 0), message.offset + 1
            )
            if not isinstance(item, ParsedEvent):
                self._reject(rows, chain, message, item[1], now)
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
                decisions = self._decide(item, person, person in erased, links, histories, now)
                notices = []
                for i, d in enumerate(decisions):
                    if d.outcome is DecisionOutcome.DISCLOSED:
                        notice = self._notice(item, d, person, links[person or ""], now)
                        # What the connector's receipt must name (README, "Signed receipts").
                        decisions[i] = replace(d, notice_digest=self._digest_ref(notice))
                        notices.append(notice)
            except Exception as exc:
                self._reject(rows, chain, message, rejection_for(exc), now)
                summary.rejected += 1
                continue
            known.add(key)
            rows.events.append(
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
                rows.decisions.append(decision)
                if decision.outcome is DecisionOutcome.DISCLOSED:
                    summary.disclosed += 1
                    rows.outbox.append(next(outgoing))
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

        rows.write(tx)
        save_offsets(tx, self.group_id, summary.next_offsets)
        chain.write(tx)
        return summary

    def set_aside(
        self, tx: Transaction, message: InboundMessage, error: RejectedEvent
    ) -> BatchSummary:
        """Reject one record alone in ``tx`` and save its partition's offset past it: for a
        record whose writes the database refused (``unstorable``, see ``hub.processing.worker``)."""
        now = self._clock()
        chain, rows = AuditLog(tx.last_audit()), BatchRows()
        self._reject(rows, chain, message, error, now)
        rows.write(tx)
        position = (message.topic, message.partition)
        tx.save_offsets(self.group_id, message.topic, {message.partition: message.offset + 1})
        chain.write(tx)
        return BatchSummary(rejected=1, next_offsets={position: message.offset + 1})

    # -- steps -------------------------------------------------------------------------------

    def parse(self, message: InboundMessage, now: datetime) -> ParsedEvent:
        """Decode and validate one inbound record: headers, key, Avro body and payload rules.

        Touches no store. Raises RejectedEvent for anything wrong with the record; the property
        test and ``bench/fuzz_decode.py`` hold it to never raising anything else.
        """
        return parse_life_event(
            message, self._directory, self._codec, now, self._skew, self._signatures
        )

    def _decide(
        self,
        item: ParsedEvent,
        person: str | None,
        erased: bool,
        links: dict[str, dict[str, str]],
        histories: dict[tuple[str, str, str], list[Any]],
        now: datetime,
    ) -> list[Decision]:
        decisions = []
        for program in self._directory.recipients_of(item.event_type.name, origin=item.source):
            if person is None:
                send, reason, revision = False, "subject_not_linked", None
            elif erased:
                # The blind index still knows the publisher's id, so the event is the erased
                # person's: nobody is told, whatever consent they once gave.
                send, reason, revision = False, "erased", None
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
                    outcome=DecisionOutcome.DISCLOSED if send else DecisionOutcome.WITHHELD,
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
        self,
        item: ParsedEvent,
        decision: Decision,
        person: str | None,
        links: dict[str, str],
        now: datetime,
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
        key, value = local_id.encode(), self._codec.encode(schema, record)
        headers = cloudevent_headers(decision.notification_id, schema, now, subject=local_id)
        if self._notice_signer is not None:  # the connector checks it before delivering
            headers = signed(key, value, headers, self._notice_signer, NOTICE_CONTEXT)
        return OutboxMessage(
            message_id=decision.notification_id,
            topic=notify_topic(decision.recipient),
            key=key,
            value=value,
            headers=headers,
            created_at=now,
            person_id=person,  # sealed under their data key; erasing them deletes it
        )

    def _digest_ref(self, notice: OutboxMessage) -> str:
        """What the decision keeps of the notice's digest: its keyed hash (``Decision``)."""
        digest = event_digest(notice.key or b"", notice.value, notice.headers, NOTICE_CONTEXT)
        return self._ids.of(digest.hex())
