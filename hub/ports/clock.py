"""The clock port: the one source of "now" for the core, so tests can fix it."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """What time it is."""

    def __call__(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
