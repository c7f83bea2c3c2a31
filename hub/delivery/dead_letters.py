"""Dead letters: notifications a connector gave up on, kept on ``tellonce.notify.<id>.dlq``.

A dead letter is the original record (key, value and headers unchanged, so a replay is the
exact notification) plus headers in the spirit of Kafka Connect's ``__connect.errors.*``: the
error class, the sink's message, the attempt count and where the record came from. Sinks never
put personal data in their messages, so none reaches these headers.

``tellonce dlq list`` shows a dead letter by those headers and its notification id only, never
its key or value (the notice itself: personal data). A ce_id that is not a UUID the hub minted
is not shown either: whoever wrote such a record chose it, and it may hold anything.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from hub.audit.log import AuditLog
from hub.audit.pseudonyms import Pseudonyms
from hub.model import Headers, InboundMessage
from hub.ports import Store
from hub.wire.cloudevents import CE_ID
from hub.wire.cloudevents import ERROR_ATTEMPTS as ATTEMPTS
from hub.wire.cloudevents import ERROR_CLASS as CLASS
from hub.wire.cloudevents import ERROR_MESSAGE as MESSAGE
from hub.wire.cloudevents import ERROR_OFFSET as OFFSET
from hub.wire.cloudevents import ERROR_PARTITION as PARTITION
from hub.wire.cloudevents import ERROR_TIME as TIME
from hub.wire.cloudevents import ERROR_TOPIC as TOPIC
from hub.wire.cloudevents import ERRORS_PREFIX as PREFIX
from hub.wire.topics import dlq_topic

# The header names and the topic are the wire contract's (``hub.wire``); they are named here
# as well because callers of this module (``dlq list``, ``dlq replay``, tests) read them here.
__all__ = [
    "ATTEMPTS",
    "CLASS",
    "MAX_MESSAGE",
    "MESSAGE",
    "OFFSET",
    "PARTITION",
    "PREFIX",
    "TIME",
    "TOPIC",
    "DeadLetter",
    "dead_letter_headers",
    "dlq_topic",
    "minted_id",
    "record_replays",
    "replayed",
]

MAX_MESSAGE = 500


def minted_id(raw: bytes | None) -> str | None:
    """The notification id in a ``ce_id`` header when it is a UUID, as the hub mints them;
    None for anything else (the header's text came from whoever wrote the record)."""
    if raw is not None:
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            return str(uuid.UUID(raw.decode("ascii")))
    return None


def dead_letter_headers(
    message: InboundMessage, *, error: str, reason: str, attempts: int, at: datetime
) -> Headers:
    """The original headers (minus any earlier error headers) and the error headers."""
    kept = [(k, v) for k, v in message.headers if not k.startswith(PREFIX)]
    return [
        *kept,
        (CLASS, (error or "Error").encode()),
        (MESSAGE, reason[:MAX_MESSAGE].encode()),
        (ATTEMPTS, str(attempts).encode()),
        (TOPIC, message.topic.encode()),
        (PARTITION, str(message.partition).encode()),
        (OFFSET, str(message.offset).encode()),
        (TIME, at.isoformat().encode()),
    ]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead-letter topic, as ``tellonce dlq list`` shows it."""

    offset: int
    partition: int
    notification_id: str
    error: str
    reason: str
    attempts: int
    original: str  # topic/partition/offset it came from
    at: str
    record: InboundMessage  # the record itself, for a replay

    @classmethod
    def from_record(cls, record: InboundMessage) -> DeadLetter:
        def text(name: str) -> str:
            raw = record.header(name)
            return raw.decode("utf-8", "replace") if raw is not None else ""

        attempts = text(ATTEMPTS)
        return cls(
            offset=record.offset,
            partition=record.partition,
            notification_id=text(CE_ID),
            error=text(CLASS),
            reason=text(MESSAGE),
            attempts=int(attempts) if attempts.isdigit() else 0,
            original=f"{text(TOPIC)}/{text(PARTITION)}/{text(OFFSET)}",
            at=text(TIME),
            record=record,
        )

    @property
    def shown_id(self) -> str:
        """The notification id as ``dlq list`` prints it: the hub's UUID, or "-"."""
        return minted_id(self.record.header(CE_ID)) or "-"

    def replay_headers(self) -> Headers:
        """The original headers, without the error ones: a replay is the notification again."""
        return [(k, v) for k, v in self.record.headers if not k.startswith(PREFIX)]


def replayed(store: Store, recipient: str) -> set[tuple[int, int]]:
    """(partition, offset) of the dead letters of ``recipient`` already replayed."""
    return {
        (int(r.data["partition"]), int(r.data["offset"]))
        for r in store.audit_records()
        if r.kind == "dlq_replayed" and r.data.get("recipient") == recipient
    }


def record_replays(
    store: Store,
    recipient: str,
    letters: list[DeadLetter],
    at: datetime,
    pseudonyms: Pseudonyms,
) -> None:
    """One audit leaf per replayed dead letter, so the trail shows who was told again.

    A leaf names the notification by its id when the hub issued it; any other ce_id came from
    whoever wrote the record (it may hold anything) and is kept as its keyed hash.
    """
    with store.transaction() as tx:
        issued = tx.decisions_by_notification([letter.notification_id for letter in letters])
        chain = AuditLog(tx.last_audit())
        for letter in letters:
            nid = letter.notification_id
            chain.append(
                "dlq_replayed",
                {
                    "recipient": recipient,
                    "notification": nid if nid in issued else pseudonyms.of(nid),
                    "partition": letter.partition,
                    "offset": letter.offset,
                    "error": letter.error,
                },
                at,
            )
        chain.write(tx)
