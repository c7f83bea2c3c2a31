"""The store and privacy contracts (hub.testing.store_contract, hub.testing.privacy_contract)
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.adapters.sql import SqlStore
from hub.ports import Store
from hub.privacy.vault import Vault
from hub.testing.privacy_contract import PrivacyContract
from hub.testing.store_contract import StoreContract
from hub.testing.vaults import throwaway_vault


class TestSqlStore(StoreContract):
    @pytest.fixture
    def store(self, store_url: str, tmp_path: Path) -> Iterator[Store]:
        """A new, migrated SQL store on each backend (``store_url`` of the conftest)."""
        store = SqlStore.open(store_url, vault=throwaway_vault(tmp_path / "keks"))
        yield store
        store.close()


class TestSqlStorePrivacy(PrivacyContract):
    @pytest.fixture
    def store(self, store_url: str, vault: Vault) -> Iterator[Store]:
        """A new, migrated SQL store on each backend, sealing with ``vault``."""
        store = SqlStore.open(store_url, vault=vault)
        yield store
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_one_relay_at_a_time_on_postgres(store_url: str, tmp_path: Path) -> None:
    """While one transaction holds the relay's turn, another is told no at once, not made to
    wait; it gets the turn once the first ended (SQLite and the memory store serialize
    transactions instead)."""
    store = SqlStore.open(store_url, vault=throwaway_vault(tmp_path))
    try:
        with store.transaction() as first:
            assert first.claim_relay()
            with store.transaction() as second:
                assert not second.claim_relay()
        with store.transaction() as third:
            assert third.claim_relay()
    finally:
        store.close()


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_a_bounded_wait_for_the_audit_head_on_postgres(store_url: str, tmp_path: Path) -> None:
    """While one transaction holds the audit head, another's bounded wait ends with False and
    leaves it usable; it gets the head once the first ended, and its own waits stay bounded
    by nothing else (the lock timeout does not outlive the wait)."""
    store = SqlStore.open(store_url, vault=throwaway_vault(tmp_path))
    try:
        with store.transaction() as first:
            assert first.lock_audit_head(wait_s=0.01)
            with store.transaction() as second:
                assert not second.lock_audit_head(wait_s=0.01)
                assert second.offsets("g", "t") == {}  # still usable after the timeout
        with store.transaction() as third:
            assert third.lock_audit_head(wait_s=0.01)
            assert third.lock_audit_head(wait_s=0.01)  # holding it twice is harmless
            setting = third._c.exec_driver_sql("SHOW lock_timeout").scalar_one()
            assert setting == "0"
    finally:
        store.close()
