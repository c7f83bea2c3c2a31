"""Fixtures of the fast tier: the shipped catalog and directory, a fixed clock, a memory store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from hub.adapters.avro import AvroCodec
from hub.adapters.memory import MemoryStore
from hub.audit.pseudonyms import Pseudonyms
from hub.config.directory import Directory, load_directory
from hub.wire.catalog import Catalog, load_catalog

# The hub's pseudonym key in the fast tier (hub.audit.pseudonyms): fixed, so hashes are
# reproducible.
PSEUDONYMS = Pseudonyms(bytes(range(32)))


class FaultyCodec:
    """The real codec, except that a value ending in ``poison`` makes decoding raise ``error``
    and, when ``poison_event`` is given, encoding a notice of that event raises OverflowError:
    a stand-in for whatever a library or a bug might raise on one record."""

    def __init__(self, codec: AvroCodec, error: Exception, poison_event: str | None = None) -> None:
        self.codec = codec
        self.error = error
        self.poison_event = poison_event

    def decode(self, value: bytes | None) -> Any:
        if value is not None and value.endswith(b"poison"):
            raise self.error
        return self.codec.decode(value)

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        if self.poison_event is not None and record.get("event_id") == self.poison_event:
            raise OverflowError("date value out of range")
        return self.codec.encode(name, record)


@pytest.fixture(scope="session")
def now() -> datetime:
    return datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)


@pytest.fixture(scope="session")
def clock(now: datetime) -> Callable[[], datetime]:
    return lambda: now


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def codec(catalog: Catalog) -> AvroCodec:
    return AvroCodec(catalog)


@pytest.fixture(scope="session")
def directory() -> Directory:
    return load_directory()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()
