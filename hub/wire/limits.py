"""Bounds applied to untrusted bytes before and during decoding."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# What any date or timestamp must stay within whatever the settings say: Python's datetime holds
# years 1 to 9999 (PostgreSQL holds more), and a day of margin keeps a time-zone shift in range.
EARLIEST_DATE = date(1, 1, 2)
LATEST_DATE = date(9999, 12, 30)


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    # An inbound life event is a few hundred bytes; 64 KiB leaves room without inviting abuse.
    max_bytes: int = 64 * 1024
    # Our schemas nest at most 4 deep; recursion far deeper crashes fastavro (DESIGN.md 3).
    max_depth: int = 16
    # Total array/map items across a message; a huge count in a few bytes must not allocate.
    max_items: int = 1_000
    # The business window of every date and timestamp (Avro logical types), both days included.
    # fastavro raises OverflowError/ValueError far outside it; the checker refuses before.
    min_date: date = date(1900, 1, 1)
    max_date: date = date(2100, 12, 31)

    def __post_init__(self) -> None:
        if not EARLIEST_DATE <= self.min_date <= self.max_date <= LATEST_DATE:
            raise ValueError(
                f"the date window must satisfy {EARLIEST_DATE} <= min_date <= max_date <= "
                f"{LATEST_DATE}"
            )
