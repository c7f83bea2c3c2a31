"""The store contract (hub.testing.store_contract) on the in-memory store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.adapters.memory import MemoryStore
from hub.ports import Store
from hub.testing.store_contract import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[Store]:
        """A new memory store."""
        store = MemoryStore()
        yield store
        store.close()
