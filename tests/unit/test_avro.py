"""AvroCodec and check_body: valid events round-trip, malformed bytes are rejected with a reason."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import pytest

from hub.adapters.avro import AvroCodec, check_body
from hub.catalog import Catalog
from hub.errors import DecodeError, UnknownSchemaError
from hub.limits import DecodeLimits

ADDRESS_CHANGED = "ca.tellonce.lifeevents.AddressChanged"
ADDRESS_CHANGED_ID = 1


# -- hand-made Avro --------------------------------------------------------------------------


def varint(n: int) -> bytes:
    """Unsigned LEB128, as Avro writes a zigzag-encoded int or long."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def long(n: int) -> bytes:
    return varint((n << 1) ^ (n >> 63))


def string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return long(len(raw)) + raw


def framed(body: bytes, schema_id: int = ADDRESS_CHANGED_ID) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + body


BC = 1  # index of "BC" in the Province enum


def address_body(
    *,
    subject: bytes = string("SBC-1001"),
    lines_count: bytes = long(1),
    province: bytes = long(BC),
    mailing_branch: bytes = long(0),
) -> bytes:
    """An AddressChanged body written field by field, with one part replaceable."""
    return (
        subject
        + long(20_000)  # effective_date, days since 1970-01-01
        + lines_count
        + string("1 Main St")
        + long(0)  # end of the lines array
        + string("Vancouver")
        + province
        + string("V5K 0A1")
        + mailing_branch
    )


def valid_record() -> dict[str, Any]:
    return {
        "subject_id": "SBC-1001",
        "effective_date": date(2024, 5, 1),
        "new_address": {
            "lines": ["1 Main St", "Unit 4"],
            "municipality": "Vancouver",
            "province": "BC",
            "postal_code": "V5K 0A1",
        },
        "mailing_address": {
            "lines": ["PO Box 12"],
            "municipality": "Victoria",
            "province": "BC",
            "postal_code": "V8W 1A1",
        },
    }


def rejection(codec: AvroCodec, value: bytes | None) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        codec.decode(value)
    return info.value


# -- valid ----------------------------------------------------------------------------------


def test_address_changed_round_trips(codec: AvroCodec) -> None:
    """An encoded AddressChanged decodes to the same record under its catalog name."""
    value = codec.encode(ADDRESS_CHANGED, valid_record())
    assert value[:5] == b"\x00\x00\x00\x00\x01"
    decoded = codec.decode(value)
    assert decoded.entry.name == ADDRESS_CHANGED
    assert decoded.record == valid_record()


def test_hand_written_body_is_accepted(codec: AvroCodec) -> None:
    """The hand-made body the rejection tests corrupt is itself a valid event."""
    record = codec.decode(framed(address_body())).record
    assert record["subject_id"] == "SBC-1001"
    assert record["new_address"]["province"] == "BC"
    assert record["mailing_address"] is None


# -- malformed bodies ----------------------------------------------------------------------


def test_truncated_body_is_rejected(codec: AvroCodec) -> None:
    """A body cut short is rejected as truncated."""
    value = codec.encode(ADDRESS_CHANGED, valid_record())
    assert rejection(codec, value[:-3]).reason == "truncated"


def test_string_longer_than_body_is_rejected(codec: AvroCodec) -> None:
    """A string claiming 2**40 bytes in a short body is rejected as truncated."""
    value = framed(address_body(subject=long(2**40) + b"abc"))
    assert rejection(codec, value).reason == "truncated"


def test_negative_union_index_is_rejected(codec: AvroCodec) -> None:
    """Union branch -1 (which fastavro would accept) is rejected."""
    error = rejection(codec, framed(address_body(mailing_branch=long(-1))))
    assert error.reason == "malformed_avro"
    assert "union branch -1" in error.detail


def test_union_index_past_the_branches_is_rejected(codec: AvroCodec) -> None:
    """Union branch 2 of a two-branch union is rejected."""
    assert rejection(codec, framed(address_body(mailing_branch=long(2)))).reason == (
        "malformed_avro"
    )


@pytest.mark.parametrize("index", [-1, 13, 2**30])
def test_enum_index_outside_symbols_is_rejected(codec: AvroCodec, index: int) -> None:
    """A negative or out-of-range Province enum index is rejected."""
    error = rejection(codec, framed(address_body(province=long(index))))
    assert error.reason == "malformed_avro"
    assert "enum index" in error.detail


@pytest.mark.parametrize(
    "count",
    [long(2**40), long(-(2**40)) + long(0)],
    ids=["plain-count", "block-count-with-size"],
)
def test_huge_array_count_is_rejected_without_allocating(codec: AvroCodec, count: bytes) -> None:
    """An array claiming 2**40 items in a few bytes is refused at once."""
    started = time.perf_counter()
    error = rejection(codec, framed(address_body(lines_count=count)))
    assert error.reason == "too_many_items"
    assert time.perf_counter() - started < 1.0


def test_huge_array_of_nulls_is_rejected(codec: AvroCodec) -> None:
    """The 5-byte array<null> bomb (780 MB in plain fastavro) is refused at once."""
    started = time.perf_counter()
    with pytest.raises(DecodeError) as info:
        check_body({"type": "array", "items": "null"}, long(2**40), DecodeLimits())
    assert info.value.reason == "too_many_items"
    assert time.perf_counter() - started < 1.0


def test_trailing_bytes_are_rejected(codec: AvroCodec) -> None:
    """Bytes after the end of the record are rejected (fastavro would ignore them)."""
    value = codec.encode(ADDRESS_CHANGED, valid_record()) + b"\x00\x00"
    error = rejection(codec, value)
    assert error.reason == "trailing_bytes"
    assert "2 bytes" in error.detail


def test_invalid_utf8_string_is_rejected(codec: AvroCodec) -> None:
    """A string field that is not UTF-8 is rejected."""
    error = rejection(codec, framed(address_body(subject=string(b"\xff\xfe\xfd"))))
    assert error.reason == "malformed_avro"
    assert "UTF-8" in error.detail


def test_overlong_varint_is_rejected(codec: AvroCodec) -> None:
    """A long spread over more than 10 bytes is rejected."""
    value = framed(address_body(subject=b"\xff" * 11 + b"\x01"))
    assert rejection(codec, value).reason == "malformed_avro"


# -- framing and limits ----------------------------------------------------------------------


def test_unknown_schema_id_is_rejected(codec: AvroCodec) -> None:
    """A schema id the catalog does not list is rejected as unknown_schema."""
    with pytest.raises(UnknownSchemaError) as info:
        codec.decode(framed(address_body(), schema_id=9999))
    assert info.value.reason == "unknown_schema"
    assert "9999" in info.value.detail


@pytest.mark.parametrize(
    "value",
    [b"\x01\x00\x00\x00\x01" + address_body(), b"\x00\x00\x00\x01", b"", b'{"json": 1}'],
    ids=["wrong-magic", "four-bytes", "empty", "json"],
)
def test_bad_framing_is_rejected(codec: AvroCodec, value: bytes) -> None:
    """A value that is not 0x00 + 4-byte schema id + body is rejected as bad_framing."""
    assert rejection(codec, value).reason == "bad_framing"


def test_tombstone_is_rejected(codec: AvroCodec) -> None:
    """A record without a value is rejected as empty_value."""
    assert rejection(codec, None).reason == "empty_value"


def test_value_above_size_limit_is_rejected(codec: AvroCodec) -> None:
    """A value larger than DecodeLimits.max_bytes is rejected before it is read."""
    value = framed(address_body(subject=string("x" * (64 * 1024))))
    error = rejection(codec, value)
    assert error.reason == "too_large"
    assert "65536-byte limit" in error.detail


def test_size_limit_is_configurable(catalog: Catalog) -> None:
    """A codec built with a smaller max_bytes rejects an otherwise valid event."""
    small = AvroCodec(catalog, DecodeLimits(max_bytes=16))
    assert rejection(small, framed(address_body())).reason == "too_large"


NODE = {
    "type": "record",
    "name": "Node",
    "fields": [{"name": "next", "type": ["null", "Node"]}],
}


def nested(levels: int) -> bytes:
    """A linked list of ``levels`` Nodes after the first: union branch 1 each time, then null."""
    return long(1) * levels + long(0)


def test_nesting_within_depth_limit_is_accepted() -> None:
    """A recursive record nested a few levels deep passes the checker."""
    check_body(NODE, nested(3), DecodeLimits())


@pytest.mark.parametrize("levels", [10, 5_000])
def test_nesting_beyond_depth_limit_is_rejected(levels: int) -> None:
    """Recursion deeper than max_depth is rejected as too_deep (fastavro would crash)."""
    with pytest.raises(DecodeError) as info:
        check_body(NODE, nested(levels), DecodeLimits(max_depth=16))
    assert info.value.reason == "too_deep"
