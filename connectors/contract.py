"""The contract every sink implements: deliver one notification, say what happened.

A sink must be idempotent on ``notification_id``: the runner delivers at least once, so a
redelivery must answer DUPLICATE and change nothing. A sink that buffers (batch files) may also
define ``flush()``: the runner calls it before it commits offsets and sends receipts, and a
sink must have made every DELIVERED notification durable when ``flush`` returns.

Retries and dead letters are not the sink's business: it answers RETRY (a passing failure,
optionally with ``retry_after`` seconds the far side asked for) or FAILED (will never succeed),
and the runner's middleware decides when to try again and when to dead-letter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol


class Outcome(StrEnum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"  # delivered before; nothing was done this time
    RETRY = "retry"  # a passing failure; try again later
    FAILED = "failed"  # will never succeed; reason says why


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: Outcome
    # What went wrong, for logs, the receipt's detail and the dead letter's headers: fixed words,
    # never personal data nor the far side's own message (a database error quotes the row).
    reason: str = ""
    error: str = ""  # a short error class, e.g. "HTTP503", "Timeout", "IntegrityError"
    retry_after: float | None = None  # seconds the far side asked us to wait (RETRY only)


@dataclass(frozen=True, slots=True)
class Notification:
    """One decoded notice, as a connector hands it to a sink."""

    notification_id: str
    recipient: str
    subject_id: str  # the client's id at the recipient
    event_type: str  # e.g. AddressChanged
    event_id: str
    event_source: str
    event_time: datetime
    consent_revision: str
    fields: dict[str, Any] = field(default_factory=dict)  # only the disclosed fields

    def to_json(self) -> str:
        body = {
            "notification_id": self.notification_id,
            "recipient": self.recipient,
            "subject_id": self.subject_id,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "event_source": self.event_source,
            "event_time": self.event_time.isoformat(),
            "consent_revision": self.consent_revision,
            "fields": self.fields,
        }
        return json.dumps(body, default=_json_default, sort_keys=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


class Sink(Protocol):
    name: str

    def deliver(self, notification: Notification) -> DeliveryResult: ...

    def close(self) -> None:
        """Release resources; flush first if the sink buffers. Safe to call twice."""


class SinkFactory(Protocol):
    def __call__(self, recipient: str, options: dict[str, str]) -> Sink: ...


__all__ = [
    "DeliveryResult",
    "Notification",
    "Outcome",
    "Sink",
    "SinkFactory",
]
