"""The checks an inbound life event must pass before the hub acts on it, without a store.

``parse_life_event`` runs exactly what the hub worker runs on each record of
``tellonce.lifeevents.v1``: the CloudEvents envelope and key, the bounded Avro decode, the event
type and the publishing program's right to send it, the payload rules. ``tellonce publish`` runs
it on the bytes it is about to send, so the publisher's check and the hub's cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.config.directory import Directory
from hub.errors import RejectedEvent
from hub.model import InboundMessage
from hub.ports import Codec, Record
from hub.wire.cloudevents import read_envelope
from hub.wire.events import BY_SCHEMA, CLOCK_SKEW, EventType, validate_payload
from hub.wire.signatures import SignaturePolicy, check_event_signature


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """A life event whose envelope, schema and payload passed every check."""

    message: InboundMessage
    source: str
    event_id: str
    time: datetime
    subject: str
    event_type: EventType
    record: Record


def parse_life_event(
    message: InboundMessage,
    directory: Directory,
    codec: Codec,
    now: datetime,
    skew: timedelta = CLOCK_SKEW,
    signatures: SignaturePolicy | None = None,
) -> ParsedEvent:
    """Decode and check one inbound life event, or raise RejectedEvent: exactly the checks of a
    batch, without a store (``tellonce publish`` runs them before sending). The signature is
    checked right after the headers, before a byte of the value is decoded; without a
    ``signatures`` policy it is not checked at all."""
    envelope = read_envelope(message, directory, now, skew)
    source, program, subject = envelope.source, envelope.program, envelope.subject
    if signatures is not None:
        check_event_signature(message, program, now, signatures)
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
    return ParsedEvent(
        message=message,
        source=source,
        event_id=envelope.event_id,
        time=envelope.time,
        subject=subject,
        event_type=event_type,
        record=decoded.record,
    )
