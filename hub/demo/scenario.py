"""The demo's scenario: synthetic people, their links and consents, the events three publishers
report, and what the hub must do with each.

Among the events are one the hub must reject, a corrupt message, a death report a client without
the publisher's key sends unsigned, an exact duplicate, one for a program without consent, and a
consent withdrawal between two events for the same person. Every person, id and address here is
invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any


@dataclass(frozen=True)
class Person:
    name: str
    links: dict[str, str]  # program -> local id
    consents: dict[str, tuple[str, ...]]  # recipient -> event types


PEOPLE = {
    "alex": Person(
        "Alex",
        {
            "bc-service-bc": "SBC-100234",
            "cra-individual": "CRA-A7F3K2",
            "esdc-cpp": "CPP-88120",
            "bc-msp": "MSP-9876543218",
            "bc-icbc-licensing": "DL-7731904",
            "vancouver-property-tax": "VAN-FOLIO-0231",
        },
        {
            "cra-individual": ("AddressChanged",),
            "esdc-cpp": ("AddressChanged", "NameChanged"),
            "bc-msp": ("AddressChanged",),
            "bc-icbc-licensing": ("AddressChanged",),
            # linked to the city, but never agreed to tell it: the demo's "no consent" case
        },
    ),
    "sam": Person(
        "Sam",
        {
            "bc-vital-statistics": "VS-2026-004417",
            "cra-individual": "CRA-Q2W8E1",
            "esdc-cpp": "CPP-30571",
            "bc-msp": "MSP-9123456784",
        },
        {
            "cra-individual": ("DeathReported",),
            "esdc-cpp": ("DeathReported",),
            "bc-msp": ("DeathReported",),
        },
    ),
    "jordan": Person(
        "Jordan",
        {
            "bc-service-bc": "SBC-100877",
            "cra-individual": "CRA-Z9X4C7",
            "bc-msp": "MSP-9345678129",
            "bc-icbc-licensing": "DL-5510277",
        },
        {
            "cra-individual": ("AddressChanged",),
            "bc-msp": ("AddressChanged",),
            "bc-icbc-licensing": ("AddressChanged",),
        },
    ),
    "priya": Person(
        "Priya",
        {
            "cra-individual": "CRA-P5L2M8",
            "esdc-cpp": "CPP-61904",
            "on-ohip": "OHIP-4402-118-207",
            "toronto-property-tax": "TOR-ROLL-1904-0031",
        },
        {
            "esdc-cpp": ("AddressChanged",),
            "on-ohip": ("AddressChanged",),
            "toronto-property-tax": ("AddressChanged",),
        },
    ),
}

# Provincial and territorial back offices take rows in a staging table; the others a file drop.
TABLE_JURISDICTIONS = {"bc", "on", "yt"}


def _address(lines: list[str], city: str, province: str, postal: str) -> dict[str, Any]:
    return {"lines": lines, "municipality": city, "province": province, "postal_code": postal}


@dataclass
class Step:
    """One event the demo publishes and the outcome it expects for it."""

    label: str
    person: str
    source: str
    event_type: str
    payload: dict[str, Any] | None  # None: raw bytes (see `raw`)
    disclosed: set[str] = field(default_factory=set)
    withheld: dict[str, str] = field(default_factory=dict)  # others: no_identity_link
    rejected: str | None = None
    duplicate_of: int | None = None
    raw: bytes | None = None
    event_id: str | None = None
    unsigned: bool = False  # sent without the program's signature, as a forger would


def scenario(today: date) -> tuple[list[Step], list[Step]]:
    alex_move = {
        "subject_id": "SBC-100234",
        "effective_date": today - timedelta(days=3),
        "new_address": _address(["1200 Main Street", "Unit 4"], "Vancouver", "BC", "V6A 2T2"),
        "mailing_address": None,
    }
    first = [
        Step(
            "address change",
            "alex",
            "bc-service-bc",
            "AddressChanged",
            alex_move,
            disclosed={"cra-individual", "esdc-cpp", "bc-msp", "bc-icbc-licensing"},
            withheld={"vancouver-property-tax": "no_consent"},
            event_id="sbc-2026-000101",
        ),
        Step(
            "same message again",
            "alex",
            "bc-service-bc",
            "AddressChanged",
            alex_move,
            duplicate_of=1,
            event_id="sbc-2026-000101",
        ),
        Step(
            "death reported",
            "sam",
            "bc-vital-statistics",
            "DeathReported",
            {
                "subject_id": "VS-2026-004417",
                "date_of_death": today - timedelta(days=6),
                "province_of_death": "BC",
                "death_registration_number": "2026-59-004417",
                "informant_relationship": "SPOUSE",
            },
            disclosed={"cra-individual", "esdc-cpp", "bc-msp"},
        ),
        Step(
            "death claimed by an unsigned client",
            "alex",
            "bc-vital-statistics",
            "DeathReported",
            {
                "subject_id": "VS-2026-004418",
                "date_of_death": today - timedelta(days=1),
                "province_of_death": "BC",
                "death_registration_number": "2026-59-004418",
                "informant_relationship": "OTHER",
            },
            rejected="unsigned",
            unsigned=True,
        ),
        Step(
            "postal code of another province",
            "jordan",
            "bc-service-bc",
            "AddressChanged",
            {
                "subject_id": "SBC-100877",
                "effective_date": today,
                "new_address": _address(["88 Bay Street"], "Toronto", "ON", "V5K 0A1"),
                "mailing_address": None,
            },
            rejected="invalid_event",
        ),
        Step(
            "corrupt bytes", "jordan", "bc-service-bc", "AddressChanged", None, rejected="truncated"
        ),
        Step(
            "address change",
            "jordan",
            "bc-service-bc",
            "AddressChanged",
            {
                "subject_id": "SBC-100877",
                "effective_date": today - timedelta(days=1),
                "new_address": _address(["455 Granville Street"], "Vancouver", "BC", "V6C 1T2"),
                "mailing_address": _address(["PO Box 2210 Stn Main"], "Vancouver", "BC", "V6B 3W5"),
            },
            disclosed={"cra-individual", "bc-msp", "bc-icbc-licensing"},
        ),
    ]
    second = [
        Step(
            "moved again after withdrawing",
            "jordan",
            "bc-service-bc",
            "AddressChanged",
            {
                "subject_id": "SBC-100877",
                "effective_date": today,
                "new_address": _address(["3100 Kingsway"], "Vancouver", "BC", "V5R 5J9"),
                "mailing_address": None,
            },
            disclosed={"cra-individual", "bc-msp"},
            withheld={"bc-icbc-licensing": "consent_withdrawn"},
        ),
        Step(
            "name change",
            "alex",
            "bc-service-bc",
            "NameChanged",
            {
                "subject_id": "SBC-100234",
                "effective_date": today - timedelta(days=10),
                "given_names": "Alex Jordan",
                "family_name": "Tremblay-Singh",
                "reason": "MARRIAGE",
            },
            disclosed={"esdc-cpp"},
        ),
        Step(
            "address change told to the CRA",
            "priya",
            "cra-individual",
            "AddressChanged",
            {
                "subject_id": "CRA-P5L2M8",
                "effective_date": today - timedelta(days=2),
                "new_address": _address(
                    ["220 King Street West", "Suite 1200"], "Toronto", "ON", "M5H 1K4"
                ),
                "mailing_address": _address(["PO Box 4410 Stn A"], "Toronto", "ON", "M5W 3K1"),
            },
            disclosed={"esdc-cpp", "on-ohip", "toronto-property-tax"},
        ),
    ]
    return first, second


# Between the first and the second batch, Jordan withdraws this consent (online, by the client).
WITHDRAWAL = ("jordan", "bc-icbc-licensing", "AddressChanged")
