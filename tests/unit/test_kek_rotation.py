"""KEK rotation (hub.privacy.rotation) on the in-memory store with a vault: every data key ends
under a new KEK, sealed values still open, and a rotation that failed part-way resumes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hub.adapters.keys import AesGcmSealer, FileKeyWrapper
from hub.adapters.memory import MemoryStore, MemoryTransaction
from hub.errors import StoreError
from hub.privacy.blind_index import BlindIndex
from hub.privacy.rotation import SETTLE_ROUNDS, rotate_kek
from hub.privacy.vault import Vault
from hub.testing.records import T0

PERSONS = 1_200  # three batches of 500: two full, one of 200


def person(i: int) -> str:
    return f"person-{i:05d}"


@pytest.fixture
def keks(tmp_path: Path) -> Path:
    return tmp_path / "keks"


@pytest.fixture
def vault(keks: Path) -> Vault:
    return Vault(FileKeyWrapper(keks, create=True), AesGcmSealer(), BlindIndex(bytes(range(32))))


@pytest.fixture
def store(vault: Vault) -> MemoryStore:
    store = MemoryStore(vault=vault)
    with store.transaction() as tx:
        for i in range(PERSONS):
            tx.add_person(person(i), T0)
    return store


def keys_by_kek(store: MemoryStore) -> dict[str, int]:
    with store.transaction() as tx:
        return tx.data_keys_by_kek()


def sealed_address(store: MemoryStore, vault: Vault, who: str) -> bytes:
    """A value sealed under ``who``'s data key as the store keeps it now."""
    with store.transaction() as tx:
        return vault.seal(who, tx.state.data_keys[who], b"1 Water Street", b"outbox-1")


def opens(store: MemoryStore, vault: Vault, who: str, sealed: bytes) -> bytes:
    with store.transaction() as tx:
        return vault.open(who, tx.state.data_keys[who], sealed, b"outbox-1")


class StoreThatFails:
    """The memory store, except that its ``fail_at``-th transaction fails after its work,
    before it commits (the database went away mid-rotation)."""

    def __init__(self, store: MemoryStore, fail_at: int) -> None:
        self._store = store
        self._fail_at = fail_at
        self._opened = 0

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        self._opened += 1
        with self._store.transaction() as tx:
            yield tx
            if self._opened == self._fail_at:
                raise StoreError("the database went away")

    def close(self) -> None:
        self._store.close()


class StoreWithLockedRows:
    """The memory store, except that its first ``passes`` rewrap passes find nothing to take,
    as on PostgreSQL when a running hub holds the rows (FOR UPDATE SKIP LOCKED)."""

    def __init__(self, store: MemoryStore, passes: int) -> None:
        self._store = store
        self.passes = passes

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._store.transaction() as tx:
            yield _Skipping(tx, self)


class _Skipping:
    def __init__(self, tx: MemoryTransaction, owner: StoreWithLockedRows) -> None:
        self._tx = tx
        self._owner = owner

    def rewrap_data_keys(self, limit: int) -> int:
        if self._owner.passes > 0:
            self._owner.passes -= 1
            return 0
        return self._tx.rewrap_data_keys(limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


def test_rotation_rewraps_every_data_key_under_a_new_kek(
    store: MemoryStore, vault: Vault, keks: Path
) -> None:
    """A new KEK becomes current, all data keys move to it in batches, sealed data still opens."""
    old = vault.wrapper.current_kek()
    assert keys_by_kek(store) == {old: PERSONS}
    sealed = sealed_address(store, vault, person(7))
    totals: list[int] = []

    rotation = rotate_kek(store, vault.wrapper, progress=totals.append)

    new = vault.wrapper.current_kek()
    assert new != old
    assert rotation.plan.kek_id == new
    assert rotation.plan.created
    assert rotation.rewrapped == PERSONS
    assert rotation.batches == 3
    assert totals == [500, 1000, PERSONS]
    assert keys_by_kek(store) == {new: PERSONS}
    assert rotation.retired == [old]
    # The ciphertext was not touched and still opens: the data key is the same, rewrapped.
    assert opens(store, vault, person(7), sealed) == b"1 Water Street"
    # A fresh process (no cached keys) opens it through the new KEK.
    fresh = Vault(FileKeyWrapper(keks, create=False), AesGcmSealer(), BlindIndex(bytes(32) + b"!"))
    with store.transaction() as tx:
        key = tx.state.data_keys[person(7)]
    assert key.kek_id == new
    assert fresh.open(person(7), key, sealed, b"outbox-1") == b"1 Water Street"


def test_each_completed_rotation_makes_a_new_kek(store: MemoryStore, vault: Vault) -> None:
    """Rotating again after a finished rotation starts another one with another KEK."""
    first = rotate_kek(store, vault.wrapper).plan.kek_id
    second = rotate_kek(store, vault.wrapper)
    assert second.plan.created
    assert second.plan.kek_id != first
    assert keys_by_kek(store) == {second.plan.kek_id: PERSONS}


def test_a_rotation_that_failed_part_way_resumes_without_another_kek(
    store: MemoryStore, vault: Vault, keks: Path
) -> None:
    """The first batch commits, the second fails; the rerun finishes under the same new KEK."""
    old = vault.wrapper.current_kek()
    sealed = sealed_address(store, vault, person(1_100))
    # Transaction 1 counts the keys, 2 rewraps the first batch, 3 fails.
    with pytest.raises(StoreError):
        rotate_kek(StoreThatFails(store, fail_at=3), vault.wrapper)  # type: ignore[arg-type]
    new = vault.wrapper.current_kek()
    assert new != old
    assert keys_by_kek(store) == {new: 500, old: PERSONS - 500}  # half-way: both unwrap
    assert opens(store, vault, person(1_100), sealed) == b"1 Water Street"

    resumed = rotate_kek(store, vault.wrapper)

    assert not resumed.plan.created
    assert resumed.plan.kek_id == new
    assert resumed.plan.stale == PERSONS - 500
    assert resumed.rewrapped == PERSONS - 500
    assert vault.wrapper.current_kek() == new
    assert keys_by_kek(store) == {new: PERSONS}
    assert len(list(keks.glob("*.kek"))) == 2  # the old KEK and the one new KEK, no third
    assert opens(store, vault, person(1_100), sealed) == b"1 Water Street"


def test_erased_persons_have_no_key_to_rewrap(store: MemoryStore, vault: Vault) -> None:
    """An erased person's data key is gone: rotation neither counts nor brings it back."""
    with store.transaction() as tx:
        tx.erase_person(person(0), T0)
    rotation = rotate_kek(store, vault.wrapper)
    assert rotation.rewrapped == PERSONS - 1
    assert keys_by_kek(store) == {rotation.plan.kek_id: PERSONS - 1}


def test_an_empty_store_still_gets_a_new_current_kek(vault: Vault) -> None:
    """With no data key yet, rotating makes a new KEK current and rewraps nothing."""
    store = MemoryStore(vault=vault)
    old = vault.wrapper.current_kek()
    rotation = rotate_kek(store, vault.wrapper)
    assert rotation.plan.created
    assert rotation.rewrapped == 0
    assert vault.wrapper.current_kek() == rotation.plan.kek_id != old


def test_rows_skipped_for_a_moment_are_rewrapped_on_a_later_pass(
    store: MemoryStore, vault: Vault
) -> None:
    """A pass that takes nothing while keys are left looks again a second later and finishes."""
    waits: list[float] = []
    locked = StoreWithLockedRows(store, passes=2)
    rotation = rotate_kek(locked, vault.wrapper, wait=waits.append)  # type: ignore[arg-type]
    assert waits == [1.0, 1.0]
    assert rotation.unfinished == 0
    assert rotation.rewrapped == PERSONS
    assert keys_by_kek(store) == {rotation.plan.kek_id: PERSONS}


def test_rows_locked_for_good_leave_the_rotation_reported_unfinished(
    store: MemoryStore, vault: Vault
) -> None:
    """When nothing can be taken after a few looks, the outcome says how many keys are left."""
    waits: list[float] = []
    locked = StoreWithLockedRows(store, passes=10**6)
    rotation = rotate_kek(locked, vault.wrapper, wait=waits.append)  # type: ignore[arg-type]
    assert len(waits) == SETTLE_ROUNDS
    assert rotation.unfinished == PERSONS
    assert rotation.rewrapped == 0
    resumed = rotate_kek(store, vault.wrapper)  # the rerun the CLI asks for finishes it
    assert not resumed.plan.created
    assert resumed.unfinished == 0
