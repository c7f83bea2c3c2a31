"""Fixtures of the fast tier: the shipped catalog and directory, a fixed clock, a memory store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from hub.adapters.avro import AvroCodec
from hub.adapters.memory import MemoryStore
from hub.audit.pseudonyms import Pseudonyms
from hub.config.directory import Directory, load_directory
from hub.wire.catalog import Catalog, load_catalog

# The hub's pseudonym key in the fast tier (hub.audit.pseudonyms): fixed, so hashes are
# reproducible.
PSEUDONYMS = Pseudonyms(bytes(range(32)))


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
