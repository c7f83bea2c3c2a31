"""CloudEvents in Kafka binary mode: the header names of the wire contract and their checks.

Every record on a tellonce topic carries its CloudEvents attributes as headers
(``ce_specversion``, ``ce_id``, ``ce_source``, ``ce_type``, ``ce_time``, ``content-type`` and,
where a subject is named, ``ce_subject``) and its subject's id as the key (DESIGN.md section 3).
This module is the one place those names are spelled: what the hub writes
(``cloudevent_headers``) and what it checks on every inbound record (``read_envelope``), for
every inbound topic alike. The ``tellonce.errors.*`` headers a connector adds to a dead letter
(in the spirit of Kafka Connect's ``__connect.errors.*``) are named here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hub.config.directory import Directory, Program
from hub.errors import NotFoundError, RejectedEvent
from hub.model import Headers, InboundMessage
from hub.wire.events import CLOCK_SKEW
from hub.wire.topics import HUB_SOURCE

CE_SPECVERSION = "ce_specversion"
CE_ID = "ce_id"
CE_SOURCE = "ce_source"
CE_TYPE = "ce_type"
CE_TIME = "ce_time"
CE_SUBJECT = "ce_subject"
CONTENT_TYPE = "content-type"
SPECVERSION = "1.0"
AVRO_CONTENT_TYPE = "application/avro"
REQUIRED_HEADERS = (CE_SPECVERSION, CE_ID, CE_SOURCE, CE_TYPE, CE_TIME, CONTENT_TYPE)
SUBJECT_HEADER = CE_SUBJECT

# Headers of a dead letter: why the connector gave up on it and where it came from.
ERRORS_PREFIX = "tellonce.errors."
ERROR_CLASS = ERRORS_PREFIX + "class"
ERROR_MESSAGE = ERRORS_PREFIX + "message"
ERROR_ATTEMPTS = ERRORS_PREFIX + "attempts"
ERROR_TOPIC = ERRORS_PREFIX + "topic"
ERROR_PARTITION = ERRORS_PREFIX + "partition"
ERROR_OFFSET = ERRORS_PREFIX + "offset"
ERROR_TIME = ERRORS_PREFIX + "time"
MAX_HEADER_CHARS = 256
# ce_time: no event of this hub predates the Unix epoch; later than the clock skew is refused.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
# C0 and C1 controls and DEL: no id has a use for them; NUL cannot even be stored (PostgreSQL).
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# CloudEvents attributes that may appear once only: a second copy could say something else.
SINGLE_HEADERS = (*REQUIRED_HEADERS, SUBJECT_HEADER)


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
        ce_subject = header_text(self.message, CE_SUBJECT)
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
    if headers[CE_SPECVERSION] != SPECVERSION:
        raise RejectedEvent("bad_header", f"{CE_SPECVERSION} must be {SPECVERSION}")
    if headers[CONTENT_TYPE] != AVRO_CONTENT_TYPE:
        raise RejectedEvent("bad_header", f"{CONTENT_TYPE} must be {AVRO_CONTENT_TYPE}")
    source = str(headers[CE_SOURCE])
    try:
        program = directory.program(source)
    except NotFoundError:
        raise RejectedEvent(
            "unknown_source", "ce_source is not a program in the directory"
        ) from None
    time = parse_time(str(headers[CE_TIME]))
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
        event_id=str(headers[CE_ID]),
        ce_type=str(headers[CE_TYPE]),
        time=time,
        subject=subject,
        message=message,
    )


def cloudevent_headers(
    ce_id: str, ce_type: str, at: datetime, *, subject: str | None = None, source: str = HUB_SOURCE
) -> Headers:
    """The CloudEvents headers of a record the hub (or a connector, by ``source``) writes."""
    headers = [
        (CE_SPECVERSION, SPECVERSION.encode()),
        (CE_ID, ce_id.encode()),
        (CE_SOURCE, source.encode()),
        (CE_TYPE, ce_type.encode()),
        (CE_TIME, at.isoformat().encode()),
        (CONTENT_TYPE, AVRO_CONTENT_TYPE.encode()),
    ]
    if subject is not None:
        headers.append((CE_SUBJECT, subject.encode()))
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


def header_or_none(message: InboundMessage, name: str) -> str | None:
    """The header as text for a rejection record, or None when it is itself the problem."""
    try:
        return header_text(message, name)
    except RejectedEvent:
        return None


def parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RejectedEvent("bad_header", "ce_time must be an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise RejectedEvent("bad_header", "ce_time must carry a time zone (e.g. Z)")
    return parsed
