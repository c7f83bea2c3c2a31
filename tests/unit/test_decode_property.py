"""Property: decoding and validating an inbound life event
(``hub.wire.inbound.parse_life_event``, which runs the bounded codec, fastavro and the payload
rules) either returns the event or raises the project's RejectedEvent. Nothing else, for any
bytes, headers or key a client can send."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.adapters.avro import AvroCodec
from hub.config.directory import Directory
from hub.errors import RejectedEvent
from hub.model import InboundMessage
from hub.wire.inbound import parse_life_event
from hub.wire.topics import LIFEEVENTS_TOPIC
from tests.avro_bytes import varint
from tests.decode_seeds import INTERESTING, LIFE_EVENTS, NOW, SEEDS, SUBJECT

# Examples per property; three properties, so the tier runs 3 x EXAMPLES decode-and-validates.
EXAMPLES = 1_500


@pytest.fixture(scope="module")
def parse(directory: Directory, codec: AvroCodec) -> Callable[[InboundMessage], Any]:
    return lambda message: parse_life_event(message, directory, codec, NOW)


@pytest.fixture(scope="module")
def seeds(codec: AvroCodec) -> list[tuple[str, str, bytes]]:
    return [
        (schema, source, codec.encode(schema, record)) for schema, (source, record) in SEEDS.items()
    ]


def message(
    value: bytes | None,
    *,
    schema: str = LIFE_EVENTS[0],
    source: str = SEEDS[LIFE_EVENTS[0]][0],
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
    for schema in LIFE_EVENTS:
        source = SEEDS[schema][0]
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
