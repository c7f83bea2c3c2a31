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


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_one_relay_at_a_time_on_postgres(store_url: str) -> None:
    """While one transaction holds the relay's turn, another is told no at once, not made to
    wait; it gets the turn once the first ended (SQLite and the memory store serialize
    transactions instead)."""
    store = SqlStore.open(store_url)
    try:
        with store.transaction() as first:
            assert first.claim_relay()
            with store.transaction() as second:
                assert not second.claim_relay()
        with store.transaction() as third:
            assert third.claim_relay()
    finally:
        store.close()
