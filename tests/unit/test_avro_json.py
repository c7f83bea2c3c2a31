"""Records from their JSON form: what fits is ready to encode; what does not names the field and
the rule, never the value."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from hub.adapters.avro import AvroCodec
from hub.errors import PayloadError

ADDRESS_CHANGED = "ca.tellonce.lifeevents.AddressChanged"
SECRET = "Zyxwvut Street"


def address(**changes: Any) -> dict[str, Any]:
    return {
        "lines": [SECRET],
        "municipality": "Victoria",
        "province": "BC",
        "postal_code": "V8W 1A1",
        **changes,
    }


def event(**changes: Any) -> dict[str, Any]:
    return {
        "subject_id": "SBC-1",
        "effective_date": "2026-11-01",
        "new_address": address(),
        **changes,
    }


def test_json_form_becomes_an_encodable_record(codec: AvroCodec) -> None:
    """Dates given as text become dates, a missing optional field takes its default, and the
    record encodes and decodes to the same values."""
    record = codec.from_json(ADDRESS_CHANGED, event())
    assert record["effective_date"] == date(2026, 11, 1)
    assert record["mailing_address"] is None
    decoded = codec.decode(codec.encode(ADDRESS_CHANGED, record)).record
    assert decoded["new_address"]["lines"] == [SECRET]
    assert decoded["effective_date"] == date(2026, 11, 1)


def test_nested_optional_record_is_checked_inside(codec: AvroCodec) -> None:
    """A wrong value inside an optional record names the path into it."""
    with pytest.raises(PayloadError) as caught:
        codec.from_json(ADDRESS_CHANGED, event(mailing_address=address(lines=[5])))
    assert str(caught.value) == "mailing_address.lines[0]: must be a string"
    assert caught.value.field == "mailing_address.lines[0]"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([SECRET], "the payload must be a JSON object (an Avro record AddressChanged), not a list"),
        (event(subject_id=True), "subject_id: must be a string"),
        (event(new_address=address(lines=SECRET)), "new_address.lines: must be a list of strings"),
        (event(new_address=address(province=SECRET)), "new_address.province: must be one of AB,"),
        (event(effective_date=2**31), "effective_date: must be a date like 2026-11-01"),
        (event(effective_date="2026-13-01"), "effective_date: must be a date like 2026-11-01"),
        (event(nickname=SECRET), "nickname: is not a field of AddressChanged; its fields are"),
        ({"subject_id": "S"}, "effective_date: is required; give a date like 2026-11-01"),
    ],
    ids=[
        "not-an-object", "bool-for-string", "string-for-list", "not-a-symbol",
        "date-beyond-int", "impossible-date", "unknown-field", "missing-field",
    ],
)  # fmt: skip
def test_misfit_names_the_field_and_rule_not_the_value(
    codec: AvroCodec, payload: Any, message: str
) -> None:
    """Each kind of misfit is one PayloadError that says where and what, without the value."""
    with pytest.raises(PayloadError) as caught:
        codec.from_json(ADDRESS_CHANGED, payload)
    assert str(caught.value).startswith(message)
    assert SECRET not in str(caught.value)


def test_timestamps_need_a_zone(codec: AvroCodec) -> None:
    """A timestamp-millis field takes RFC 3339 text with a zone and refuses one without."""
    consent = {
        "subject_id": "P-1",
        "recipient": "bc-msp",
        "event_types": ["AddressChanged"],
        "state": "GIVEN",
        "purpose": "p",
        "legal_basis": "consent",
        "notice_version": "v1",
        "notice_hash": "0" * 64,
        "channel": "online",
        "actor": "client",
        "recorded_at": "2026-11-01T09:30:00Z",
    }
    record = codec.from_json("ca.tellonce.consent.ConsentChanged", consent)
    assert record["recorded_at"] == datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    with pytest.raises(PayloadError, match="recorded_at: must be a time with a zone"):
        codec.from_json(
            "ca.tellonce.consent.ConsentChanged", {**consent, "recorded_at": "2026-11-01T09:30"}
        )
