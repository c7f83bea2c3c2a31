"""The privacy contract (hub.testing.privacy_contract) on the in-memory store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.adapters.memory import MemoryStore
from hub.ports import Store
from hub.privacy.vault import Vault
from hub.testing.privacy_contract import PrivacyContract


class TestMemoryStorePrivacy(PrivacyContract):
    @pytest.fixture
    def store(self, vault: Vault) -> Iterator[Store]:
        """A new memory store keeping wrapped data keys with ``vault``."""
        store = MemoryStore(vault)
        yield store
        store.close()
