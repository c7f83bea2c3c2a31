"""The store fence: a consumer group works with one store, and a hub on another is kept out."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.adapters.claims import decode_claim, encode_claim
from hub.adapters.memory import MemoryStore
from hub.adapters.memory_claims import MemoryClaimLog
from hub.errors import FenceError
from hub.model import StoreClaim
from hub.processing.fence import StoreFence, owner

T0 = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
GROUP = "tellonce-hub"


def fence(claims: MemoryClaimLog, store_id: str, group: str = GROUP) -> StoreFence:
    return StoreFence(
        claims,
        group_id=group,
        store_id=store_id,
        audit_key_id=f"ed25519:{store_id}",
        host="hub-1",
        clock=lambda: T0,
    )


def in_force(claims: MemoryClaimLog) -> list[tuple[str, str]]:
    return [(claim.group_id, claim.store_id) for _, claim in claims.read()]


class StaleFirstRead(MemoryClaimLog):
    """A log whose first full read ran before another hub's claim landed (a start race)."""

    def __init__(self, shared: MemoryClaimLog) -> None:
        super().__init__()
        self.records = shared.records
        self._stale = True

    def read(self, through: int | None = None) -> list[tuple[int, StoreClaim]]:
        if through is None and self._stale:
            self._stale = False
            return []
        return super().read(through)


def test_first_hub_claims_its_group_for_its_store() -> None:
    """A group nobody claimed yet is claimed for the hub's store, with host and audit key."""
    claims = MemoryClaimLog()
    fence(claims, "store-a").enter()
    ((_, claim),) = claims.read()
    assert (claim.group_id, claim.store_id) == (GROUP, "store-a")
    assert claim.host == "hub-1"
    assert claim.audit_key_id == "ed25519:store-a"


def test_hub_on_another_store_is_refused_with_both_store_ids() -> None:
    """A second store is refused before joining; the message names the group, both store ids
    and both ways out, and nothing is written to the log."""
    claims = MemoryClaimLog()
    fence(claims, "store-a").enter()
    written = len(claims.records)
    with pytest.raises(FenceError) as refused:
        fence(claims, "store-b").enter()
    message = str(refused.value)
    assert f"consumer group {GROUP!r} works with another store: store store-a" in message
    assert "this hub's store (TELLONCE_STORE__URL) is store-b" in message
    assert "audit key ed25519:store-a" in message
    assert "TELLONCE_HUB__GROUP_ID" in message
    assert len(claims.records) == written


def test_hubs_on_the_same_store_share_the_group() -> None:
    """More workers on the group's own store pass and add no claim."""
    claims = MemoryClaimLog()
    fence(claims, "store-a").enter()
    fence(claims, "store-a").enter()
    fence(claims, "store-a").check()
    assert len(claims.records) == 1


def test_groups_are_fenced_separately() -> None:
    """Another group's store does not matter: each group has its own claim."""
    claims = MemoryClaimLog()
    fence(claims, "store-b", group="other-hub").enter()
    fence(claims, "store-a").enter()
    assert in_force(claims) == [("other-hub", "store-b"), (GROUP, "store-a")]


def test_start_race_the_older_claim_wins_and_the_loser_withdraws() -> None:
    """Two hubs that both saw no claim: the one that recorded first wins; the other refuses
    and takes its claim back, so compaction can never leave it as the group's store."""
    claims = MemoryClaimLog()
    loser = fence(StaleFirstRead(claims), "store-b")
    fence(claims, "store-a").enter()  # lands between the loser's read and its append
    with pytest.raises(FenceError, match="store store-a"):
        loser.enter()
    assert in_force(claims) == [(GROUP, "store-a")]
    assert claims.records[-1] == (f"{GROUP}/store-b", None)  # the tombstone


def test_running_hub_reclaims_a_lost_claim() -> None:
    """When the broker lost the topic, the running hub's check records its claim again."""
    claims = MemoryClaimLog()
    running = fence(claims, "store-a")
    running.enter()
    claims.records.clear()  # Tansu restarted: topics are memory-only
    running.check()
    assert in_force(claims) == [(GROUP, "store-a")]


def test_running_hub_stops_when_another_store_claimed_the_group_first() -> None:
    """If another store claimed the group after the loss, the running hub's check stops it."""
    claims = MemoryClaimLog()
    running = fence(claims, "store-a")
    running.enter()
    claims.records.clear()
    fence(claims, "store-b").enter()
    with pytest.raises(FenceError, match="now works with another store: store store-b") as stop:
        running.check()
    assert "Stopping" in str(stop.value)


def test_a_withdrawn_claim_does_not_count() -> None:
    """After a tombstone the next claim in force is the group's store."""
    a = StoreClaim(GROUP, "store-a", None, T0, None)
    b = StoreClaim(GROUP, "store-b", None, T0, None)
    claims = MemoryClaimLog()
    claims.append(a)
    claims.append(b)
    claims.withdraw(a)
    assert owner(claims.read(), GROUP) == b


def test_memory_store_has_a_stable_id_of_its_own() -> None:
    """Each store has its own id, the same on every call."""
    store = MemoryStore()
    assert store.store_id() == store.store_id()
    assert store.store_id() != MemoryStore().store_id()


# -- the claim record on tellonce.hub.v1 ---------------------------------------------------------


CLAIM = StoreClaim(GROUP, "9f2c0e4e-1111-4222-8333-444455556666", "ed25519:ab", T0, "hub-1")


def test_claim_record_round_trips() -> None:
    """A claim read back from its record equals the claim written."""
    assert decode_claim(CLAIM.key.encode(), encode_claim(CLAIM)) == CLAIM


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (None, encode_claim(CLAIM)),
        (b"tellonce-hub/another-store", encode_claim(CLAIM)),
        (CLAIM.key.encode(), b"not json"),
        (CLAIM.key.encode(), b"[]"),
        (CLAIM.key.encode(), b'{"group_id": "tellonce-hub"}'),
        (CLAIM.key.encode(), encode_claim(CLAIM).replace(b"+00:00", b"")),
        (CLAIM.key.encode(), encode_claim(CLAIM).replace(b'"hub-1"', b"7")),
        (CLAIM.key.encode(), b"\xff\xfe"),
        (CLAIM.key.encode(), b" " * 5000 + encode_claim(CLAIM)),
    ],
    ids=[
        "no-key",
        "key-of-another-claim",
        "not-json",
        "not-an-object",
        "missing-fields",
        "time-without-zone",
        "host-not-text",
        "not-utf8",
        "too-large",
    ],
)
def test_records_that_are_not_claims_are_skipped(key: bytes | None, value: bytes) -> None:
    """A record anyone could have written is not a claim unless it is well-formed."""
    assert decode_claim(key, value) is None


# No timing checks: the machines are shared, and slowness is not what these tests are about.
UNTIMED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@UNTIMED
@given(key=st.one_of(st.none(), st.binary(max_size=80)), value=st.binary(max_size=300))
def test_any_record_decodes_to_a_claim_or_none(key: bytes | None, value: bytes) -> None:
    """Decoding never raises, whatever bytes are on the topic."""
    result = decode_claim(key, value)
    assert result is None or isinstance(result, StoreClaim)


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["2026-11-29T16:00:00+00:00", "9999-12-31T23:59:59-23:59", "0001-01-01"]),
    st.lists(st.integers(), max_size=3),
)


@UNTIMED
@given(
    fields=st.dictionaries(
        st.sampled_from(["group_id", "store_id", "audit_key_id", "claimed_at", "host", "x"]),
        JSON_VALUES,
    )
)
def test_any_json_object_decodes_to_a_claim_or_none(fields: dict[str, object]) -> None:
    """Objects with the claim's fields of any JSON type never make decoding raise."""
    value = json.dumps(fields).encode()
    key = f"{fields.get('group_id')}/{fields.get('store_id')}".encode()
    result = decode_claim(key, value)
    assert result is None or result.key.encode() == key
