"""The store contract (hub.testing.store_contract) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.adapters.sql import SqlStore
from hub.ports import Store
from hub.testing.store_contract import StoreContract


class TestSqlStore(StoreContract):
    @pytest.fixture
    def store(self, store_url: str) -> Iterator[Store]:
        """A new, migrated SQL store on each backend (``store_url`` of the conftest)."""
        store = SqlStore.open(store_url)
        yield store
        store.close()
