"""AvroCodec and check_body: valid events round-trip, malformed bytes are rejected with a reason."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from hub.adapters.avro import AvroCodec, check_body
from hub.config.settings import LimitSettings, Settings
from hub.errors import DecodeError, UnknownSchemaError
from hub.wire.catalog import Catalog
from hub.wire.limits import DecodeLimits

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
    # A bound, not a benchmark: reading the items claimed would take minutes and gigabytes.
    started = time.perf_counter()
    error = rejection(codec, framed(address_body(lines_count=count)))
    assert error.reason == "too_many_items"
    assert time.perf_counter() - started < 1.0


def test_huge_array_of_nulls_is_rejected(codec: AvroCodec) -> None:
    """The 5-byte array<null> bomb (780 MB in plain fastavro) is refused at once."""
    # A bound, not a benchmark: reading the items claimed would take minutes and gigabytes.
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


# -- logical types: range checks before fastavro ------------------------------------------------

DAYS_1900 = (date(1900, 1, 1) - date(1970, 1, 1)).days
DAYS_2100 = (date(2100, 12, 31) - date(1970, 1, 1)).days
MS_PER_DAY = 86_400_000
CONSENT = "ca.tellonce.consent.ConsentChanged"
CONSENT_ID = 9


def dated_address(days: int) -> bytes:
    """The hand-made AddressChanged with ``effective_date`` = ``days`` since 1970-01-01."""
    body = address_body()
    head = string("SBC-1001")
    return framed(head + long(days) + body[len(head) + len(long(20_000)) :])


def consent_body(recorded_at_ms: int, expires_at_ms: int | None = None) -> bytes:
    """A ConsentChanged body written by hand, with its two timestamps in milliseconds."""
    expires = long(0) if expires_at_ms is None else long(1) + long(expires_at_ms)
    return framed(
        string("GCKEY-1")
        + string("cra-individual")
        + long(1)
        + string("AddressChanged")
        + long(0)
        + long(0)  # state: GIVEN
        + string("purpose")
        + string("basis")
        + long(0)  # notice_version: null
        + long(0)  # notice_hash: null
        + string("online")
        + string("client")
        + long(recorded_at_ms)
        + expires,
        CONSENT_ID,
    )


@pytest.mark.parametrize(
    ("days", "expected"),
    [(DAYS_1900, date(1900, 1, 1)), (DAYS_2100, date(2100, 12, 31))],
    ids=["first-day", "last-day"],
)
def test_dates_on_the_edges_of_the_window_are_accepted(
    codec: AvroCodec, days: int, expected: date
) -> None:
    """The first and the last day of the business window decode to those days."""
    assert codec.decode(dated_address(days)).record["effective_date"] == expected


@pytest.mark.parametrize(
    "days",
    [DAYS_1900 - 1, DAYS_2100 + 1, 2**31 - 1, -(2**31), 2_932_896, -719_163],
    ids=["day-before-1900", "day-after-2100", "int-max", "int-min", "past-9999", "year-0"],
)
def test_dates_outside_the_window_are_out_of_range(codec: AvroCodec, days: int) -> None:
    """A date outside the window (fastavro would raise OverflowError or ValueError for the far
    ones) is out_of_range, naming the field and the window but never the value."""
    error = rejection(codec, dated_address(days))
    assert error.reason == "out_of_range"
    assert error.detail.startswith("effective_date: a date must lie within 1900-01-01 to 2100-")
    assert str(days) not in error.detail


def test_an_int_wider_than_32_bits_is_malformed(codec: AvroCodec) -> None:
    """An Avro int encoded past 32 bits (fastavro would return it as is) is malformed_avro."""
    assert rejection(codec, dated_address(2**34)).reason == "malformed_avro"


@pytest.mark.parametrize(
    ("recorded_at", "expires_at", "field"),
    [
        (DAYS_1900 * MS_PER_DAY - 1, None, "recorded_at"),
        ((DAYS_2100 + 1) * MS_PER_DAY, None, "recorded_at"),
        (253_402_300_800_000, None, "recorded_at"),  # 10000-01-01: OverflowError in fastavro
        (2**62, None, "recorded_at"),
        (0, 253_402_300_800_000, "expires_at"),
    ],
    ids=["ms-before-1900", "ms-after-2100", "year-10000", "2-to-62", "expiry-in-year-10000"],
)
def test_timestamps_outside_the_window_are_out_of_range(
    codec: AvroCodec, recorded_at: int, expires_at: int | None, field: str
) -> None:
    """A timestamp-millis outside the window, in a consent event, is out_of_range naming it."""
    error = rejection(codec, consent_body(recorded_at, expires_at))
    assert error.reason == "out_of_range"
    assert error.detail.startswith(f"{field}: a timestamp must lie within")


def test_timestamps_on_the_edges_of_the_window_are_accepted(codec: AvroCodec) -> None:
    """The first and the last millisecond of the window decode."""
    first, last = DAYS_1900 * MS_PER_DAY, (DAYS_2100 + 1) * MS_PER_DAY - 1
    record = codec.decode(consent_body(first, last)).record
    assert record["recorded_at"].date() == date(1900, 1, 1)
    assert record["expires_at"].date() == date(2100, 12, 31)


def test_the_window_comes_from_the_limits(catalog: Catalog) -> None:
    """A narrower window from the settings refuses a date the default window accepts."""
    narrow = AvroCodec(catalog, DecodeLimits(min_date=date(2000, 1, 1)))
    assert rejection(narrow, dated_address(DAYS_1900)).reason == "out_of_range"


def test_an_inverted_or_impossible_window_is_refused() -> None:
    """Limits whose window is inverted or beyond Python's dates cannot be built."""
    with pytest.raises(ValueError, match="min_date <= max_date"):
        DecodeLimits(min_date=date(2001, 1, 1), max_date=date(2000, 1, 1))
    with pytest.raises(ValueError, match="max_date <= 9999-12-30"):
        DecodeLimits(max_date=date(9999, 12, 31))


def logical(kind: str, logical_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "record",
        "name": "Probe",
        "fields": [{"name": "value", "type": {"type": kind, "logicalType": logical_type, **extra}}],
    }


def check(schema: dict[str, Any], body: bytes) -> DecodeError | None:
    try:
        check_body(schema, body, DecodeLimits())
    except DecodeError as exc:
        return exc
    return None


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        (logical("int", "time-millis"), [0, MS_PER_DAY - 1], [-1, MS_PER_DAY]),
        (logical("long", "time-micros"), [0, MS_PER_DAY * 1000 - 1], [-1, MS_PER_DAY * 1000]),
        (
            logical("long", "timestamp-micros"),
            [DAYS_1900 * MS_PER_DAY * 1000],
            [DAYS_1900 * MS_PER_DAY * 1000 - 1, 2**62],
        ),
        (
            logical("long", "local-timestamp-millis"),
            [(DAYS_2100 + 1) * MS_PER_DAY - 1],
            [(DAYS_2100 + 1) * MS_PER_DAY],
        ),
        (
            logical("long", "local-timestamp-micros"),
            [0],
            [(DAYS_2100 + 1) * MS_PER_DAY * 1000],
        ),
    ],
    ids=["time-millis", "time-micros", "timestamp-micros", "local-ts-millis", "local-ts-micros"],
)
def test_every_time_logical_type_is_range_checked(
    schema: dict[str, Any], good: list[int], bad: list[int]
) -> None:
    """Times of day lie within 0 to 24 h and timestamps within the window, or out_of_range."""
    for value in good:
        assert check(schema, long(value)) is None
    for value in bad:
        error = check(schema, long(value))
        assert error is not None
        assert (error.reason, error.detail.split(":")[0]) == ("out_of_range", "value")


def test_decimals_beyond_their_precision_are_out_of_range() -> None:
    """A bytes or fixed decimal with more digits than its precision is out_of_range."""
    as_bytes = logical("bytes", "decimal", precision=4, scale=2)
    assert check(as_bytes, long(2) + (9999).to_bytes(2, "big", signed=True)) is None
    assert check(as_bytes, long(2) + (-9999).to_bytes(2, "big", signed=True)) is None
    error = check(as_bytes, long(2) + (10_000).to_bytes(2, "big", signed=True))
    assert error is not None
    assert error.reason == "out_of_range"
    as_fixed = {
        "type": "record",
        "name": "Probe",
        "fields": [
            {
                "name": "amount",
                "type": {
                    "type": "fixed",
                    "name": "Money",
                    "size": 8,
                    "logicalType": "decimal",
                    "precision": 3,
                },
            }
        ],
    }
    assert check(as_fixed, (999).to_bytes(8, "big", signed=True)) is None
    error = check(as_fixed, (2**62).to_bytes(8, "big", signed=True))
    assert error is not None
    assert (error.reason, error.detail.split(":")[0]) == ("out_of_range", "amount")


def test_a_uuid_that_is_not_one_is_malformed() -> None:
    """A string with logical type uuid must be a UUID (fastavro would raise ValueError)."""
    schema = logical("string", "uuid")
    assert check(schema, string("6f1c3a52-9a43-4d2e-9a51-7f0e2b8c1d10")) is None
    error = check(schema, string("not-a-uuid"))
    assert error is not None
    assert error.reason == "malformed_avro"


def test_a_logical_type_on_another_base_type_is_read_as_the_base_type() -> None:
    """fastavro ignores a date on a long; so does the checker (no range applies)."""
    assert check(logical("long", "date"), long(2**40)) is None


def test_a_string_holding_nul_is_invalid_text(codec: AvroCodec) -> None:
    """U+0000 in a string (valid Avro, but unstorable in PostgreSQL) is invalid_text, naming the
    field; the nested path is given for nested fields."""
    error = rejection(codec, framed(address_body(subject=string("SBC\x001001"))))
    assert (error.reason, error.detail.split(":")[0]) == ("invalid_text", "subject_id")
    nested = address_body().replace(string("Vancouver"), string("Van\x00couver"))
    error = rejection(codec, framed(nested))
    assert error.detail.split(":")[0] == "new_address.municipality"


def test_whatever_fastavro_still_raises_is_undecodable(
    codec: AvroCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If fastavro raises on a body the checker passed, the codec rejects it as undecodable,
    naming the error class only."""

    def overflow(*_args: Any) -> Any:
        raise OverflowError("date value out of range: 12345")

    monkeypatch.setattr("hub.adapters.avro.fastavro.schemaless_reader", overflow)
    error = rejection(codec, framed(address_body()))
    assert error.reason == "undecodable"
    assert "OverflowError" in error.detail
    assert "12345" not in error.detail


def test_the_window_and_skew_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """TELLONCE_LIMITS__MIN_DATE/__MAX_DATE reach the codec's limits; CLOCK_SKEW_S the skew."""
    monkeypatch.setenv("TELLONCE_LIMITS__MIN_DATE", "1950-01-01")
    monkeypatch.setenv("TELLONCE_LIMITS__MAX_DATE", "2050-12-31")
    monkeypatch.setenv("TELLONCE_LIMITS__CLOCK_SKEW_S", "30")
    limits = Settings().limits
    assert (limits.decode_limits().min_date, limits.decode_limits().max_date) == (
        date(1950, 1, 1),
        date(2050, 12, 31),
    )
    assert limits.clock_skew.total_seconds() == 30


@pytest.mark.parametrize(
    "window",
    [
        {"min_date": date(2050, 1, 1), "max_date": date(2000, 1, 1)},
        {"max_date": date(9999, 12, 31)},
        {"min_date": date(1, 1, 1)},
    ],
    ids=["inverted", "past-python", "before-python"],
)
def test_a_window_python_cannot_hold_is_refused_by_the_settings(window: dict[str, date]) -> None:
    """An inverted window, or one reaching Python's first or last day, is a settings error."""
    with pytest.raises(ValidationError):
        LimitSettings(**window)
