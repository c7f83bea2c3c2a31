"""Property: decoding and validating an inbound life event
(``hub.processing.parse_life_event``, which runs the bounded codec, fastavro and the payload
rules) either returns the event or raises the project's RejectedEvent. Nothing else, for any
bytes, headers or key a client can send."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.adapters.avro import AvroCodec
from hub.directory import Directory
from hub.errors import RejectedEvent
from hub.model import LIFEEVENTS_TOPIC, InboundMessage
from hub.processing import parse_life_event
from tests.avro_bytes import varint

# Examples per property; three properties, so the tier runs 3 x EXAMPLES decode-and-validates.
EXAMPLES = 1_500
NOW = datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)
SUBJECT = "SBC-1001"
ADDRESS = {"lines": ["1 Main St"], "municipality": "Victoria", "province": "BC"}

# (schema, source allowed to publish it, record): valid encodings to mutate. The last ones are
# schemas of another kind, which must be refused on the life-events topic.
SEEDS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "ca.tellonce.lifeevents.AddressChanged",
        "bc-service-bc",
        {
            "subject_id": SUBJECT,
            "effective_date": date(2025, 3, 1),
            "new_address": ADDRESS | {"postal_code": "V8W 1A1"},
            "mailing_address": ADDRESS | {"lines": ["PO Box 1", "Stn A"], "postal_code": "V8W 2B2"},
        },
    ),
    (
        "ca.tellonce.lifeevents.DeathReported",
        "bc-vital-statistics",
        {
            "subject_id": SUBJECT,
            "date_of_death": date(2025, 3, 10),
            "province_of_death": "BC",
            "death_registration_number": "2025-59-000123",
            "informant_relationship": "SPOUSE",
        },
    ),
    (
        "ca.tellonce.lifeevents.NameChanged",
        "bc-service-bc",
        {
            "subject_id": SUBJECT,
            "effective_date": date(2025, 2, 1),
            "given_names": "Alex",
            "family_name": "Tremblay",
            "reason": "MARRIAGE",
        },
    ),
    (
        "ca.tellonce.receipts.Receipt",
        "bc-service-bc",
        {
            "notification_id": "n-1",
            "recipient": "bc-msp",
            "event_id": "e-1",
            "status": "DELIVERED",
            "sink": "webhook",
            "recorded_at": NOW,
        },
    ),
    (
        "ca.tellonce.consent.ConsentChanged",
        "bc-service-bc",
        {
            "subject_id": SUBJECT,
            "recipient": "cra-individual",
            "event_types": ["AddressChanged"],
            "state": "GIVEN",
            "purpose": "p",
            "legal_basis": "b",
            "channel": "online",
            "actor": "client",
            "recorded_at": NOW,
        },
    ),
]
LIFE_EVENTS = {schema for schema, _, _ in SEEDS[:3]}
# Values a mutation splices in: the edges of Avro ints and longs, of the date window and of
# Python's dates, and counts that would allocate without the checker.
INTERESTING = [
    0,
    -1,
    1,
    2**31 - 1,
    -(2**31),
    2**31,
    2**63 - 1,
    -(2**63),
    2**40,
    -(2**40),
    (date(1900, 1, 1) - date(1970, 1, 1)).days - 1,
    (date(2101, 1, 1) - date(1970, 1, 1)).days,
    2_932_897,  # days to 10000-01-01
    253_402_300_800_000,  # ms to 10000-01-01
    -62_135_596_800_001,  # ms before 0001-01-01
    86_400_000,
]


@pytest.fixture(scope="module")
def parse(directory: Directory, codec: AvroCodec) -> Callable[[InboundMessage], Any]:
    return lambda message: parse_life_event(message, directory, codec, NOW)


@pytest.fixture(scope="module")
def seeds(codec: AvroCodec) -> list[tuple[str, str, bytes]]:
    return [(schema, source, codec.encode(schema, record)) for schema, source, record in SEEDS]


def message(
    value: bytes | None,
    *,
    schema: str = SEEDS[0][0],
    source: str = SEEDS[0][1],
    key: bytes | None = SUBJECT.encode(),
    ce_time: bytes | None = None,
    extra: list[tuple[str, bytes]] | None = None,
) -> InboundMessage:
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"evt-1"),
        ("ce_source", source.encode()),
        ("ce_type", schema.encode()),
        ("ce_time", ce_time or (NOW - timedelta(minutes=1)).isoformat().encode()),
        ("content-type", b"application/avro"),
        ("ce_subject", SUBJECT.encode()),
    ]
    return InboundMessage(LIFEEVENTS_TOPIC, 0, 0, key, value, headers + (extra or []))


def holds(parse: Callable[[InboundMessage], Any], record: InboundMessage) -> None:
    """The property: a life event, or RejectedEvent; any other exception fails the test."""
    try:
        event = parse(record)
    except RejectedEvent:
        return
    assert event.event_type.schema in LIFE_EVENTS


def test_the_seeds_are_accepted_events(
    parse: Callable[[InboundMessage], Any], seeds: list[tuple[str, str, bytes]]
) -> None:
    """The life-event seeds parse as they are, so the mutations start from accepted events."""
    for schema, source, value in seeds[:3]:
        assert parse(message(value, schema=schema, source=source)).event_type.schema == schema


@st.composite
def mutated(draw: st.DrawFn, seeds: list[tuple[str, str, bytes]]) -> tuple[str, str, bytes]:
    """A valid encoding with one to four mutations: flip, overwrite, insert, delete, truncate,
    or splice an interesting varint in at some position."""
    schema, source, value = draw(st.sampled_from(seeds))
    data = bytearray(value)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]))
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[at:]
        elif op == "splice":
            width = draw(st.integers(0, 10))
            data[at : at + width] = varint(draw(st.sampled_from(INTERESTING)))
    return schema, source, bytes(data)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_valid_events_only_ever_parse_or_are_rejected(
    parse: Callable[[InboundMessage], Any], seeds: list[tuple[str, str, bytes]], data: st.DataObject
) -> None:
    """Mutations of valid encodings (of every life event and of other kinds) parse or are
    rejected, never raise anything else."""
    schema, source, value = data.draw(mutated(seeds))
    holds(parse, message(value, schema=schema, source=source))


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    schema_id=st.integers(0, 12),
    body=st.binary(max_size=256),
    framed=st.booleans(),
)
def test_arbitrary_bytes_only_ever_parse_or_are_rejected(
    parse: Callable[[InboundMessage], Any], schema_id: int, body: bytes, framed: bool
) -> None:
    """Random bodies behind a real (or random) wire-format header parse or are rejected."""
    value = (b"\x00" + schema_id.to_bytes(4, "big") + body) if framed else body
    for schema, source, _ in SEEDS[:3]:
        holds(parse, message(value, schema=schema, source=source))


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    ce_time=st.one_of(
        st.binary(max_size=40),
        st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat().encode()),
        st.sampled_from([b"0001-01-01T00:00:00+01:00", b"9999-12-31T23:59:59-23:59"]),
    ),
    key=st.one_of(st.none(), st.binary(max_size=80)),
    extra=st.lists(
        st.tuples(
            st.sampled_from(["ce_id", "ce_source", "ce_subject", "ce_\ufffd", "x"]),
            st.binary(max_size=300),
        ),
        max_size=3,
    ),
)
def test_arbitrary_headers_and_keys_only_ever_parse_or_are_rejected(
    parse: Callable[[InboundMessage], Any],
    seeds: list[tuple[str, str, bytes]],
    ce_time: bytes,
    key: bytes | None,
    extra: list[tuple[str, bytes]],
) -> None:
    """Any ce_time, key and extra headers on a valid body parse or are rejected."""
    holds(parse, message(seeds[0][2], ce_time=ce_time, key=key, extra=extra))
