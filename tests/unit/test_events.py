"""Payload rules Avro cannot express, and rejection details that never echo personal data."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from hub.errors import RejectedEvent
from hub.wire.events import EVENT_TYPES, validate_payload


def address(postal_code: str = "V5K 0A1", province: str = "BC") -> dict[str, Any]:
    return {
        "lines": ["1 Main St"],
        "municipality": "Somewhere",
        "province": province,
        "postal_code": postal_code,
    }


def four_lines() -> dict[str, Any]:
    return address() | {"lines": ["Apt 1", "Floor 2", "Wing B", "42 Secret Rd"]}


def address_changed(**new_address: str) -> dict[str, Any]:
    return {
        "subject_id": "SBC-1001",
        "effective_date": date(2025, 3, 1),
        "new_address": address(**new_address),
        "mailing_address": None,
    }


def death_reported(date_of_death: date) -> dict[str, Any]:
    return {
        "subject_id": "VS-88",
        "date_of_death": date_of_death,
        "province_of_death": "BC",
        "death_registration_number": None,
        "informant_relationship": "SPOUSE",
    }


def name_changed(**overrides: Any) -> dict[str, Any]:
    record = {
        "subject_id": "SBC-1001",
        "effective_date": date(2025, 3, 1),
        "given_names": "Ada",
        "family_name": "Lovelace",
        "reason": "MARRIAGE",
    }
    return record | overrides


def rejected(event_type: str, record: dict[str, Any], now: datetime) -> RejectedEvent:
    with pytest.raises(RejectedEvent) as info:
        validate_payload(EVENT_TYPES[event_type], record, now)
    assert info.value.reason == "invalid_event"
    return info.value


def test_valid_address_change_is_accepted(now: datetime) -> None:
    """A well-formed BC address with a BC postal code passes."""
    payload = validate_payload(EVENT_TYPES["AddressChanged"], address_changed(), now)
    assert payload.subject_id == "SBC-1001"


@pytest.mark.parametrize("postal_code", ["v5k 0a1", "V5K0A1", "V5K  0A1", "D5K 0A1", "V5K 0A"])
def test_malformed_postal_code_is_rejected(now: datetime, postal_code: str) -> None:
    """A postal code not shaped A1A 1A1 (capitals, one space, valid letters) is rejected."""
    error = rejected("AddressChanged", address_changed(postal_code=postal_code), now)
    assert "new_address" in error.detail
    assert "postal_code must look like A1A 1A1" in error.detail


def test_postal_code_of_another_province_is_rejected(now: datetime) -> None:
    """V5K 0A1 (British Columbia) with province ON is rejected."""
    error = rejected("AddressChanged", address_changed(province="ON"), now)
    assert "postal_code does not belong to the province given" in error.detail


@pytest.mark.parametrize(
    ("postal_code", "province"), [("X1A 2B3", "NT"), ("X0A 0H0", "NU"), ("Y1A 1A1", "YT")]
)
def test_northern_postal_codes_are_accepted(now: datetime, postal_code: str, province: str) -> None:
    """X codes are accepted for both the Northwest Territories and Nunavut, Y for Yukon."""
    record = address_changed(postal_code=postal_code, province=province)
    validate_payload(EVENT_TYPES["AddressChanged"], record, now)


def test_x_postal_code_in_yukon_is_rejected(now: datetime) -> None:
    """X is not a Yukon prefix."""
    rejected("AddressChanged", address_changed(postal_code="X1A 2B3", province="YT"), now)


def test_date_of_death_in_the_future_is_rejected(now: datetime) -> None:
    """A death dated tomorrow is rejected; one dated today is accepted."""
    tomorrow = now.date() + timedelta(days=1)
    error = rejected("DeathReported", death_reported(tomorrow), now)
    assert error.detail == "date_of_death: must not be in the future"
    validate_payload(EVENT_TYPES["DeathReported"], death_reported(now.date()), now)


@pytest.mark.parametrize(
    ("event_type", "record", "secret"),
    [
        ("AddressChanged", address_changed(postal_code="K1A 0B1", province="BC"), "K1A 0B1"),
        ("AddressChanged", address_changed(postal_code="Q9Q 9Q9"), "Q9Q 9Q9"),
        ("NameChanged", name_changed(given_names="Zéphyrine" * 30), "Zéphyrine"),
        ("AddressChanged", address_changed() | {"new_address": four_lines()}, "42 Secret Rd"),
        ("NameChanged", name_changed(effective_date="born 1961-07-04"), "1961-07-04"),
        ("NameChanged", name_changed(subject_id="client-" + "7" * 80), "7777777"),
        ("NameChanged", name_changed(sin="046 454 286"), "046 454 286"),
        ("NameChanged", name_changed(given_names=12345678), "12345678"),
    ],
    ids=[
        "wrong-province",
        "bad-format",
        "name-too-long",
        "too-many-lines",
        "bad-date",
        "id-too-long",
        "extra-field",
        "wrong-type",
    ],
)
def test_rejection_detail_never_contains_the_value(
    now: datetime, event_type: str, record: dict[str, Any], secret: str
) -> None:
    """The detail names the field and rule, never the offending (personal) value."""
    error = rejected(event_type, record, now)
    assert error.detail
    assert secret not in error.detail
    assert secret not in str(error)
