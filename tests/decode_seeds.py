"""Seeds for fuzzing the hub's decode-and-validate step, shared by the hypothesis property test
(``tests/unit/test_decode_property.py``) and ``bench/fuzz_decode.py``: one valid record of each
life event (and of schemas of another kind, which the life-events topic must refuse), the clock
they are valid at, and the values a mutation splices in. Imports nothing from the hub, so the
fuzzer can import it before atheris instruments the hub's modules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

NOW = datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)
SUBJECT = "SBC-1001"
ADDRESS = {"lines": ["1 Main St"], "municipality": "Victoria", "province": "BC"}
# schema -> (source allowed to publish it, a valid record); the life events first.
SEEDS: dict[str, tuple[str, dict[str, Any]]] = {
    "ca.tellonce.lifeevents.AddressChanged": (
        "bc-service-bc",
        {
            "subject_id": SUBJECT,
            "effective_date": date(2025, 3, 1),
            "new_address": ADDRESS | {"postal_code": "V8W 1A1"},
            "mailing_address": ADDRESS | {"lines": ["PO Box 1", "Stn A"], "postal_code": "V8W 2B2"},
        },
    ),
    "ca.tellonce.lifeevents.DeathReported": (
        "bc-vital-statistics",
        {
            "subject_id": SUBJECT,
            "date_of_death": date(2025, 3, 10),
            "province_of_death": "BC",
            "death_registration_number": "2025-59-000123",
            "informant_relationship": "SPOUSE",
        },
    ),
    "ca.tellonce.lifeevents.NameChanged": (
        "bc-service-bc",
        {
            "subject_id": SUBJECT,
            "effective_date": date(2025, 2, 1),
            "given_names": "Alex",
            "family_name": "Tremblay",
            "reason": "MARRIAGE",
        },
    ),
    "ca.tellonce.consent.ConsentChanged": (
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
            "expires_at": NOW + timedelta(days=365),
        },
    ),
    "ca.tellonce.receipts.Receipt": (
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
}
# Values a mutation splices in (as Avro varints): the edges of Avro ints and longs, of the date
# window and of Python's dates, and counts that would allocate without the checker.
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
LIFE_EVENTS = tuple(schema for schema in SEEDS if schema.startswith("ca.tellonce.lifeevents."))
