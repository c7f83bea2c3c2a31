"""Life-event types the hub understands, with the rules each payload must meet.

Pydantic models here check what Avro cannot: postal code format and agreement with the
province, dates not in the future, sane string sizes. Validation errors are turned into
reason details that name the field and the rule, never the value (it may be personal data).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.errors import RejectedEvent

Text = Annotated[str, Field(min_length=1, max_length=200)]

# First letter of a postal code -> the provinces and territories it may belong to
# (Canada Post forward sortation areas). X is shared by the Northwest Territories and Nunavut.
POSTAL_PREFIX_PROVINCES: dict[str, frozenset[str]] = {
    "A": frozenset({"NL"}),
    "B": frozenset({"NS"}),
    "C": frozenset({"PE"}),
    "E": frozenset({"NB"}),
    "G": frozenset({"QC"}),
    "H": frozenset({"QC"}),
    "J": frozenset({"QC"}),
    "K": frozenset({"ON"}),
    "L": frozenset({"ON"}),
    "M": frozenset({"ON"}),
    "N": frozenset({"ON"}),
    "P": frozenset({"ON"}),
    "R": frozenset({"MB"}),
    "S": frozenset({"SK"}),
    "T": frozenset({"AB"}),
    "V": frozenset({"BC"}),
    "X": frozenset({"NT", "NU"}),
    "Y": frozenset({"YT"}),
}
POSTAL_CODE = re.compile(r"^[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] \d[ABCEGHJ-NPRSTV-Z]\d$")


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subject_id: Annotated[str, Field(min_length=1, max_length=64)]


class CanadianAddress(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lines: Annotated[list[Text], Field(min_length=1, max_length=3)]
    municipality: Text
    province: str
    postal_code: str

    @model_validator(mode="after")
    def _postal_code_matches_province(self) -> CanadianAddress:
        if not POSTAL_CODE.match(self.postal_code):
            raise ValueError("postal_code must look like A1A 1A1 (capitals, one space)")
        if self.province not in POSTAL_PREFIX_PROVINCES[self.postal_code[0]]:
            raise ValueError("postal_code does not belong to the province given")
        return self


class AddressChanged(_Payload):
    effective_date: date
    new_address: CanadianAddress
    mailing_address: CanadianAddress | None = None


class DeathReported(_Payload):
    date_of_death: date
    province_of_death: str
    death_registration_number: Annotated[str, Field(max_length=32)] | None = None
    informant_relationship: str


class NameChanged(_Payload):
    effective_date: date
    given_names: Text
    family_name: Text
    reason: str


@dataclass(frozen=True, slots=True)
class EventType:
    """One kind of life event: its inbound schema, its notice schema and its rules."""

    name: str
    schema: str  # full Avro name of the inbound record
    notice_schema: str  # full Avro name of the per-recipient notice
    payload: type[_Payload]
    past_dates: tuple[str, ...] = ()  # fields that must not lie in the future

    @property
    def ce_type(self) -> str:
        return self.schema

    @property
    def disclosable_fields(self) -> tuple[str, ...]:
        """Payload fields an agreement may grant; subject_id is always re-keyed, never shared."""
        return tuple(name for name in self.payload.model_fields if name != "subject_id")


EVENT_TYPES: dict[str, EventType] = {
    t.name: t
    for t in (
        EventType(
            "AddressChanged",
            "ca.tellonce.lifeevents.AddressChanged",
            "ca.tellonce.notify.AddressChangeNotice",
            AddressChanged,
        ),
        EventType(
            "DeathReported",
            "ca.tellonce.lifeevents.DeathReported",
            "ca.tellonce.notify.DeathNotice",
            DeathReported,
            past_dates=("date_of_death",),
        ),
        EventType(
            "NameChanged",
            "ca.tellonce.lifeevents.NameChanged",
            "ca.tellonce.notify.NameChangeNotice",
            NameChanged,
        ),
    )
}
BY_SCHEMA: dict[str, EventType] = {t.schema: t for t in EVENT_TYPES.values()}

# Publishers' clocks drift; an event stamped a little ahead of ours is still plausible.
CLOCK_SKEW = timedelta(minutes=5)


def validate_payload(
    event_type: EventType, record: Mapping[str, object], now: datetime
) -> _Payload:
    """Check a decoded record against the rules of its type, or raise RejectedEvent."""
    try:
        payload = event_type.payload.model_validate(record)
    except ValidationError as exc:
        raise RejectedEvent("invalid_event", _describe(exc)) from None
    for name in event_type.past_dates:
        value = getattr(payload, name)
        if value > now.date():
            raise RejectedEvent("invalid_event", f"{name}: must not be in the future")
    return payload


def _describe(exc: ValidationError) -> str:
    # Pydantic's own messages echo the input; keep only where and which rule.
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "event"
        rule = error["msg"] if error["type"] == "value_error" else error["type"]
        parts.append(f"{where}: {rule.removeprefix('Value error, ')}")
    return "; ".join(parts[:5])
