"""KEK rotation: every data key rewrapped under a new key-encryption key, ciphertexts untouched.

Rotating replaces what protects the data keys, not the data: each person's data key is
unwrapped under its old KEK and wrapped again under the new one, in committed batches, and no
sealed value is read or written. A rotation that stops part-way (crash, Ctrl-C, kill) leaves
every data key wrapped under one KEK or the other, both of which still unwrap, so the hub goes
on working; running it again sees data keys not under the current KEK and resumes, making no
further KEK. Once no data key is under the old KEK, the live store no longer needs it; backups
taken before the rotation still do.

May import: ``hub.ports``, ``hub.errors`` and the standard library.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hub.ports.privacy import KeyWrapper
from hub.ports.store import Store

BATCH = 500  # data keys per transaction: an HSM round trip each, a short transaction
# On PostgreSQL a batch skips the persons a running hub's transaction holds locked; when a
# pass finds nothing left to take while keys are still under another KEK, it looks again
# this many times, a second apart, before it reports the rotation unfinished.
SETTLE_ROUNDS = 3


@dataclass(frozen=True)
class RotationPlan:
    """What a run found before rewrapping: the KEK it rewraps under, whether it made it, how
    many data keys were under another KEK, and how many each KEK wrapped."""

    kek_id: str
    created: bool  # False: an unfinished rotation is resumed under the current KEK
    stale: int
    keys_by_kek: dict[str, int]


@dataclass(frozen=True)
class Rotation:
    """The outcome: the plan, the data keys rewrapped and the batches committed, and how
    many data keys each KEK wraps now."""

    plan: RotationPlan
    rewrapped: int
    batches: int
    keys_by_kek: dict[str, int]

    @property
    def unfinished(self) -> int:
        """Data keys still under another KEK (locked by a running hub, or wrapped under the
        old KEK by a hub that had not seen the new one yet): run the rotation again."""
        return sum(n for kek_id, n in self.keys_by_kek.items() if kek_id != self.plan.kek_id)

    @property
    def retired(self) -> list[str]:
        """KEKs that wrapped data keys when the run began and wrap none now: the live store
        no longer needs them (backups taken before the rotation still do)."""
        return sorted(set(self.plan.keys_by_kek) - set(self.keys_by_kek))


def plan_rotation(store: Store, wrapper: KeyWrapper) -> RotationPlan:
    """Resume when some data key is not under the current KEK (a previous rotation stopped
    part-way); otherwise create a new KEK and make it current."""
    with store.transaction() as tx:
        keys_by_kek = tx.data_keys_by_kek()
    current = wrapper.current_kek()
    stale = sum(n for kek_id, n in keys_by_kek.items() if kek_id != current)
    if stale:
        return RotationPlan(current, created=False, stale=stale, keys_by_kek=keys_by_kek)
    total = sum(keys_by_kek.values())
    return RotationPlan(wrapper.new_kek(), created=True, stale=total, keys_by_kek=keys_by_kek)


def rewrap_all(
    store: Store,
    plan: RotationPlan,
    *,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
    wait: Callable[[float], None] = time.sleep,
) -> Rotation:
    """Rewrap data keys ``batch`` at a time, one committed transaction per batch, until none
    is left under another KEK; ``progress`` gets the running total after each batch."""
    rewrapped = batches = settled = 0
    while True:
        with store.transaction() as tx:
            done = tx.rewrap_data_keys(batch)
        if done:
            rewrapped += done
            batches += 1
            if progress is not None:
                progress(rewrapped)
            continue
        with store.transaction() as tx:
            keys_by_kek = tx.data_keys_by_kek()
        rotation = Rotation(plan, rewrapped, batches, keys_by_kek)
        if not rotation.unfinished or settled == SETTLE_ROUNDS:
            return rotation
        settled += 1
        wait(1.0)


def rotate_kek(
    store: Store,
    wrapper: KeyWrapper,
    *,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
    wait: Callable[[float], None] = time.sleep,
) -> Rotation:
    """Plan, then rewrap every data key under the KEK the plan names (see the module doc).
    ``wrapper`` must be the one the store's vault wraps with."""
    plan = plan_rotation(store, wrapper)
    return rewrap_all(store, plan, batch=batch, progress=progress, wait=wait)
