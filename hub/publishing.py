"""What a publisher does, for the CLI, the demo and tests: one life event on the wire contract.

Another team's publisher in any language does the same: Confluent-framed Avro value, CloudEvents
binary-mode headers, key = the subject's id at the publishing program.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from hub.directory import check_event_type
from hub.events import EVENT_TYPES
from hub.model import LIFEEVENTS_TOPIC, Headers
from hub.ports import Codec, Producer
from hub.processing import cloudevent_headers


def event_message(
    codec: Codec,
    *,
    source: str,
    event_type: str,
    payload: dict[str, Any],
    at: datetime,
    event_id: str | None = None,
) -> tuple[bytes, bytes, Headers, str]:
    """(key, value, headers, event id) of one life event."""
    kind = EVENT_TYPES[check_event_type(event_type)]
    subject = str(payload["subject_id"])
    ce_id = event_id or str(uuid.uuid4())
    value = codec.encode(kind.schema, payload)
    headers = cloudevent_headers(ce_id, kind.ce_type, at, subject=subject, source=source)
    return subject.encode(), value, headers, ce_id


def publish_event(
    producer: Producer,
    codec: Codec,
    *,
    source: str,
    event_type: str,
    payload: dict[str, Any],
    at: datetime,
    event_id: str | None = None,
) -> str:
    key, value, headers, ce_id = event_message(
        codec, source=source, event_type=event_type, payload=payload, at=at, event_id=event_id
    )
    producer.send(LIFEEVENTS_TOPIC, key, value, headers)
    return ce_id
