"""What a publisher does, for the CLI, the demo and tests: one life event on the wire contract.

Another team's publisher in any language does the same: Confluent-framed Avro value, CloudEvents
binary-mode headers, key = the subject's id at the publishing program.

``checked_event`` is what ``tellonce publish`` sends: the payload's JSON form fitted to the
catalog schema, encoded, then put through the hub's own decode-and-validate
(``hub.wire.inbound.parse_life_event``) on the encoded bytes, so the publisher's check and the
hub's cannot drift apart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.config.directory import Directory, check_event_type
from hub.errors import PayloadError, RejectedEvent
from hub.model import Headers, InboundMessage
from hub.ports import Codec, Producer, RecordSigner
from hub.wire.catalog import Catalog
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.events import EVENT_TYPES
from hub.wire.inbound import parse_life_event
from hub.wire.signatures import SignaturePolicy, signed
from hub.wire.topics import LIFEEVENTS_TOPIC

# What to do about a rejection the publisher can fix from the command line.
_HINTS = {
    "not_authorized": "; 'tellonce directory show' lists what each program publishes",
    "invalid_event": "; fix that field and publish again",
    "unsigned": "; make the program's key with 'tellonce keys new PROGRAM --out FILE', add the "
    "entry it prints to the directory file (TELLONCE_DIRECTORY_PATH), and give the key file "
    "with --key",
    "unknown_key": "; add the entry 'tellonce keys new' printed to the directory file "
    "(TELLONCE_DIRECTORY_PATH), or give another key with --key",
    "key_expired": "; make a new key with 'tellonce keys new' and list it in the directory file "
    "(TELLONCE_DIRECTORY_PATH)",
}


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    """One life event exactly as it goes on the wire."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers
    event_id: str

    @property
    def schema_id(self) -> int:
        return int.from_bytes(self.value[1:5], "big")

    def preview(self, catalog: Catalog) -> dict[str, object]:
        """What ``tellonce publish --dry-run`` prints: where it would go and in what form,
        never the payload itself."""
        entry = catalog.by_id(self.schema_id)
        return {
            "dry_run": True,
            "sent": False,
            "checks": "passed: schema fit, field rules, the program may publish this type",
            "topic": self.topic,
            "key": self.key.decode(),
            "headers": {name: value.decode() for name, value in self.headers},
            "value_bytes": len(self.value),
            "schema_id": self.schema_id,
            "schema": f"{entry.name} v{entry.version}",
        }

    def send(self, producer: Producer) -> str:
        """Send the event and wait until the broker has it; returns its event id."""
        producer.send(self.topic, self.key, self.value, self.headers)
        producer.flush()
        return self.event_id


def event_message(
    codec: Codec,
    *,
    source: str,
    event_type: str,
    payload: dict[str, Any],
    at: datetime,
    event_id: str | None = None,
    signer: RecordSigner | None = None,
) -> tuple[bytes, bytes, Headers, str]:
    """(key, value, headers, event id) of one life event, signed by ``signer`` if given."""
    kind = EVENT_TYPES[check_event_type(event_type)]
    subject = str(payload["subject_id"])
    ce_id = event_id or str(uuid.uuid4())
    value = codec.encode(kind.schema, payload)
    headers = cloudevent_headers(ce_id, kind.ce_type, at, subject=subject, source=source)
    key = subject.encode()
    if signer is not None:
        headers = signed(key, value, headers, signer)
    return key, value, headers, ce_id


def checked_event(
    codec: Codec,
    directory: Directory,
    *,
    source: str,
    event_type: str,
    data: Any,
    at: datetime,
    event_id: str | None = None,
    signer: RecordSigner | None = None,
    signatures: SignaturePolicy | None = None,
) -> OutboundEvent:
    """The life event ``source`` would publish, signed by ``signer`` if given, and checked as
    the hub will check it (its signature too, under the ``signatures`` policy).

    ``data`` is the payload's JSON form (dates as ``2026-11-01``). Raises NotFoundError for an
    unknown program or event type, PayloadError naming the field and the rule (never the value)
    when the payload does not fit the schema or the hub would reject the event (its reason code
    in ``reason``: e.g. ``not_authorized`` when the program may not publish that type).
    """
    directory.program(source)
    kind = EVENT_TYPES[check_event_type(event_type)]
    try:
        record = codec.from_json(kind.schema, data)
    except PayloadError as exc:
        raise PayloadError(
            f"the payload does not fit the {kind.name} schema ({kind.schema}): {exc}",
            field=exc.field,
        ) from None
    key, value, headers, ce_id = event_message(
        codec,
        source=source,
        event_type=kind.name,
        payload=record,
        at=at,
        event_id=event_id,
        signer=signer,
    )
    try:
        parse_life_event(
            InboundMessage(LIFEEVENTS_TOPIC, 0, 0, key, value, headers),
            directory,
            codec,
            at,
            signatures=signatures,
        )
    except RejectedEvent as exc:
        raise PayloadError(
            f"the hub would reject this {kind.name} event ({exc.reason}): {exc.detail}"
            + _HINTS.get(exc.reason, ""),
            reason=exc.reason,
        ) from None
    return OutboundEvent(LIFEEVENTS_TOPIC, key, value, headers, ce_id)


def publish_event(
    producer: Producer,
    codec: Codec,
    *,
    source: str,
    event_type: str,
    payload: dict[str, Any],
    at: datetime,
    event_id: str | None = None,
    signer: RecordSigner | None = None,
) -> str:
    """Send one life event of ``source``, signed by ``signer`` if given; returns its id."""
    key, value, headers, ce_id = event_message(
        codec,
        source=source,
        event_type=event_type,
        payload=payload,
        at=at,
        event_id=event_id,
        signer=signer,
    )
    producer.send(LIFEEVENTS_TOPIC, key, value, headers)
    return ce_id


__all__ = [
    "OutboundEvent",
    "checked_event",
    "event_message",
    "publish_event",
]
