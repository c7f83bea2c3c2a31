"""Refusing one inbound record: its rejection, the same way on every inbound topic.

A refused record becomes a rejection row, a message on the rejected topic and a ``rejected``
audit leaf, among the rows its batch writes in one transaction (``reject``). ``rejection_for``
turns whatever one record made the hub raise into that record's rejection, or re-raises an
infrastructure failure so the batch fails closed; ``unstorable`` is the rejection of a record
whose writes the database itself refused (the worker finds it by bisection).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog

from hub.audit.log import AuditLog
from hub.audit.pseudonyms import Pseudonyms
from hub.config.directory import Directory
from hub.errors import RecordStoreError, RejectedEvent, TellonceError
from hub.model import ID_NAMESPACE, InboundMessage, OutboxMessage, RejectionRecord
from hub.ports import Codec
from hub.processing.rows import BatchRows
from hub.wire.cloudevents import CE_ID, CE_SOURCE, cloudevent_headers, header_or_none
from hub.wire.schemas import REJECTION_SCHEMA
from hub.wire.topics import REJECTED_TOPIC

log = structlog.get_logger(__name__)


class Rejecter:
    """``reject`` bound to one intake's codec, pseudonym key and directory, so every inbound
    topic refuses a record the same way with one short call."""

    def __init__(self, codec: Codec, pseudonyms: Pseudonyms, directory: Directory) -> None:
        self._codec = codec
        self._pseudonyms = pseudonyms
        self._directory = directory

    def __call__(
        self,
        rows: BatchRows,
        chain: AuditLog,
        message: InboundMessage,
        error: RejectedEvent,
        now: datetime,
    ) -> None:
        reject(
            rows,
            chain,
            self._codec,
            message,
            error,
            now,
            pseudonyms=self._pseudonyms,
            directory=self._directory,
        )


def reject(
    rows: BatchRows,
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
    source = header_or_none(message, CE_SOURCE)
    event_id = header_or_none(message, CE_ID)
    position = message.position
    rejection_id = str(uuid.uuid5(ID_NAMESPACE, f"rejected\x1f{position}"))
    kept_source = (
        source if source is None or source in directory.program_ids else pseudonyms.of(source)
    )
    kept_id = pseudonyms.of(event_id) if event_id is not None else None
    rows.rejections.append(
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
            # Fields of the Rejection schema (schemas/), named after the headers they echo.
            "ce_source": source,
            "ce_id": event_id,
            "rejected_at": now,
        },
    )
    rows.outbox.append(
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


def caused_by_record(exc: Exception) -> bool:
    """True when a failed batch may owe its failure to one of its records rather than to the
    database, broker or signer: the database refused the data (RecordStoreError) or something
    raised that is no TellonceError at all (a library or a bug, on that record's values)."""
    return isinstance(exc, RecordStoreError) or not isinstance(exc, TellonceError)


def error_class(exc: Exception) -> str:
    """The error class to name: the driver's for a refused write, never a message."""
    return exc.cause if isinstance(exc, RecordStoreError) else type(exc).__name__
