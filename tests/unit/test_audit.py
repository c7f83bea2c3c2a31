"""The audit log: linked, canonical leaves; checkpoints due by policy, signed, failing closed."""

from __future__ import annotations

import base64
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.adapters.memory import MemoryStore, MemoryTransaction
from hub.adapters.signing import FileSigner, key_id_for, public_key_check
from hub.audit import merkle
from hub.audit.log import (
    GENESIS,
    AuditLog,
    CheckpointPolicy,
    Notary,
    checkpoint_body,
    covering_checkpoint,
    leaf_bytes,
    record_bytes,
    signed_body,
)
from hub.errors import SignerError
from hub.model import AuditRecord, Checkpoint
from hub.testing.fakes import ShortSigner, UnusableSigner

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
EVERY_HOUR = CheckpointPolicy(every_leaves=1_000, every_seconds=3_600)


@pytest.fixture
def signer(tmp_path: Path) -> FileSigner:
    return FileSigner(tmp_path / "audit.pem", create=True)


def append(store: MemoryStore, count: int, at: datetime = T0) -> list[AuditRecord]:
    """``count`` leaves in one transaction, after whatever the store holds."""
    with store.transaction() as tx:
        log = AuditLog(tx.last_audit())
        records = [
            log.append("accepted", {"event": f"bc-service-bc/evt-{i}"}, at + timedelta(seconds=i))
            for i in range(count)
        ]
        log.write(tx)
    return records


def checkpoint_now(store: MemoryStore, notary: Notary, at: datetime = T0) -> Checkpoint | None:
    with store.transaction() as tx:
        return notary.maybe_checkpoint(tx, at, force=True)


# -- leaves ----------------------------------------------------------------------------------


def test_leaves_link_and_number_across_appenders(store: MemoryStore) -> None:
    """A second AuditLog resumes after the stored last leaf: indexes run on, each links back."""
    first = append(store, 3)
    second = append(store, 2)
    records = list(store.audit_records())
    assert records == first + second
    assert [r.index for r in records] == [0, 1, 2, 3, 4]
    assert records[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.hash
    for record in records:
        assert record.hash == merkle.leaf_hash(record_bytes(record)).hex()


def test_written_leaves_leave_the_appender_empty(store: MemoryStore) -> None:
    """write() hands the pending leaves to the transaction once; a second write adds nothing."""
    with store.transaction() as tx:
        log = AuditLog(None)
        log.append("rejected", {"reason": "bad_header"}, T0)
        log.write(tx)
        log.write(tx)
    assert len(list(store.audit_records())) == 1


def test_leaf_bytes_are_canonical_json() -> None:
    """Sorted keys, no spaces, UTF-8 kept: the bytes do not depend on how data was built."""
    data: dict[str, Any] = {"recipient": "bc-msp", "event": "qc-ramq/évt-1"}
    body = leaf_bytes(7, "withheld", data, T0, GENESIS)
    assert (
        body
        == (
            '{"at":"2025-03-14T12:00:00+00:00","data":{"event":"qc-ramq/évt-1",'
            f'"recipient":"bc-msp"}},"i":7,"kind":"withheld","prev":"{GENESIS}"}}'
        ).encode()
    )
    reordered = {"event": "qc-ramq/évt-1", "recipient": "bc-msp"}
    assert leaf_bytes(7, "withheld", reordered, T0, GENESIS) == body


LEAF_DATA = st.dictionaries(
    st.text(),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=8,
    ),
    max_size=6,
)


@given(
    index=st.integers(min_value=0, max_value=2**63 - 1),
    kind=st.text(),
    data=LEAF_DATA,
    at=st.datetimes(timezones=st.timezones()),
    prev=st.text(),
)
def test_leaf_bytes_are_the_sorted_json_of_the_whole_leaf(
    index: int, kind: str, data: dict[str, Any], at: datetime, prev: str
) -> None:
    """The leaf writer's hand-ordered keys give exactly json.dumps of the whole leaf, sorted."""
    body = {"i": index, "kind": kind, "data": data, "at": at.isoformat(), "prev": prev}
    expected = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert leaf_bytes(index, kind, data, at, prev) == expected.encode()
    record = AuditLog(None).append(kind, data, at)
    assert record.hash == merkle.leaf_hash(leaf_bytes(0, kind, data, at, GENESIS)).hex()


def test_a_leaf_hashes_its_time_as_given_even_when_equal_to_the_last() -> None:
    """Equal times in other zones have other texts: each leaf hashes the text of its own."""
    log = AuditLog(None)
    times = [T0, T0, T0.astimezone(timezone(timedelta(hours=-5))), T0]
    records = [log.append("withheld", {"n": n}, at) for n, at in enumerate(times)]
    assert [merkle.leaf_hash(record_bytes(r)).hex() for r in records] == [r.hash for r in records]
    assert b"07:00:00-05:00" in record_bytes(records[2])


# -- policy ----------------------------------------------------------------------------------


def checkpoint(size: int, at: datetime = T0) -> Checkpoint:
    return Checkpoint(1, size, "0" * 64, at, "ed25519:0000000000000000", "")


POLICY = CheckpointPolicy(every_leaves=10, every_seconds=30)


@pytest.mark.parametrize(
    ("last", "size", "seconds_later", "due"),
    [
        (None, 0, 0, False),  # empty log: nothing to sign
        (None, 1, 0, True),  # the first leaf is signed as soon as a batch ends
        (checkpoint(5), 5, 3_600, False),  # nothing unsigned, however long ago
        (checkpoint(5), 14, 29, False),  # 9 unsigned leaves, 29 s: neither threshold
        (checkpoint(5), 15, 0, True),  # 10 unsigned leaves: due by count
        (checkpoint(5), 6, 30, True),  # 1 unsigned leaf, 30 s: due by time
    ],
    ids=["empty", "first", "all-signed", "below-both", "by-leaves", "by-time"],
)
def test_checkpoint_policy(
    last: Checkpoint | None, size: int, seconds_later: int, due: bool
) -> None:
    """A checkpoint is due once unsigned leaves reach the count or the time; never with none."""
    assert POLICY.due(last, size, T0 + timedelta(seconds=seconds_later)) is due


# -- notary ----------------------------------------------------------------------------------


def test_checkpoint_roots_match_the_merkle_tree_hash(
    store: MemoryStore, signer: FileSigner
) -> None:
    """Each checkpoint states the log's size and its RFC 9162 root over all leaves so far."""
    notary = Notary(signer, EVERY_HOUR)
    for count in (1, 6, 9, 16, 3):
        append(store, count)
        issued = checkpoint_now(store, notary)
        assert issued is not None
        hashes = store.leaf_hashes(issued.size)
        assert issued.size == len(list(store.audit_records()))
        assert issued.root == merkle.root_from_leaf_hashes(hashes).hex()
        assert issued.frontier == tuple(
            h.hex() for h in merkle.Frontier.from_leaf_hashes(hashes).state()
        )
    assert [c.seq for c in store.checkpoints()] == [1, 2, 3, 4, 5]
    assert [c.size for c in store.checkpoints()] == [1, 7, 16, 32, 35]


class ReadCounting:
    """A transaction that records which leaf hashes the notary reads."""

    def __init__(self, tx: MemoryTransaction) -> None:
        self._tx = tx
        self.reads: list[tuple[int, int]] = []

    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        self.reads.append((start, stop))
        return self._tx.leaf_hashes(start, stop)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


def test_notary_resumes_from_the_stored_frontier(store: MemoryStore, signer: FileSigner) -> None:
    """A later checkpoint hashes only the leaves added since the last one, not the whole log."""
    notary = Notary(signer, EVERY_HOUR)
    append(store, 40)
    checkpoint_now(store, notary)
    append(store, 5)
    with store.transaction() as tx:
        counting = ReadCounting(tx)
        issued = notary.maybe_checkpoint(counting, T0, force=True)
    assert counting.reads == [(40, 45)]
    assert issued is not None
    assert issued.root == merkle.root_from_leaf_hashes(store.leaf_hashes(45)).hex()


def test_checkpoint_signature_verifies_under_the_public_key(
    store: MemoryStore, signer: FileSigner
) -> None:
    """The signature covers the checkpoint body and checks out with the published key only."""
    append(store, 3)
    issued = checkpoint_now(store, Notary(signer, EVERY_HOUR), T0 + timedelta(minutes=1))
    assert issued is not None
    assert issued.key_id == key_id_for(signer.public_key_pem())
    body = signed_body(issued)
    assert (
        body
        == (
            "tellonce.audit.checkpoint/v1\nseq 1\nsize 3\n"
            f"root {issued.root}\ntime 2025-03-14T12:01:00+00:00\nkey {issued.key_id}\n"
        ).encode()
    )
    check = public_key_check(signer.public_key_pem())
    signature = base64.b64decode(issued.signature)
    assert check(body, signature)
    other = checkpoint_body(1, 4, issued.root, issued.issued_at, issued.key_id)
    assert not check(other, signature)


def test_checkpoint_waits_for_the_policy_unless_forced(
    store: MemoryStore, signer: FileSigner
) -> None:
    """Not due and not forced: no checkpoint; forced with nothing unsigned: still none."""
    notary = Notary(signer, CheckpointPolicy(every_leaves=10, every_seconds=60))
    append(store, 1)
    checkpoint_now(store, notary)
    append(store, 2)
    with store.transaction() as tx:
        assert notary.maybe_checkpoint(tx, T0 + timedelta(seconds=59)) is None
        due = notary.maybe_checkpoint(tx, T0 + timedelta(seconds=60))
        assert due is not None
        assert due.size == 3
        assert notary.maybe_checkpoint(tx, T0 + timedelta(hours=1), force=True) is None
    assert [c.size for c in store.checkpoints()] == [1, 3]


@pytest.mark.parametrize("signer", [UnusableSigner(), ShortSigner()], ids=["raises", "short"])
def test_unusable_signer_fails_closed(store: MemoryStore, signer: UnusableSigner) -> None:
    """When the checkpoint cannot be signed, the batch's leaves are not committed either."""
    append(store, 2)
    notary = Notary(signer, CheckpointPolicy(every_leaves=1, every_seconds=60))

    def batch_with_checkpoint() -> None:
        with store.transaction() as tx:
            log = AuditLog(tx.last_audit())
            log.append("accepted", {"event": "bc-service-bc/evt-9"}, T0)
            log.write(tx)
            notary.maybe_checkpoint(tx, T0)

    with pytest.raises(SignerError):
        batch_with_checkpoint()
    assert [r.index for r in store.audit_records()] == [0, 1]
    assert store.checkpoints() == []


def test_ensure_available_raises_when_the_key_cannot_sign(tmp_path: Path) -> None:
    """The probe signs with a working key and raises SignerError once the key file is gone."""
    path = tmp_path / "audit.pem"
    notary = Notary(FileSigner(path, create=True), EVERY_HOUR)
    notary.ensure_available()
    path.unlink()
    with pytest.raises(SignerError, match="tellonce audit keygen"):
        notary.ensure_available()
    with pytest.raises(SignerError):
        Notary(UnusableSigner(), EVERY_HOUR).ensure_available()


def test_covering_checkpoint_is_the_first_that_includes_the_leaf() -> None:
    """Leaf i is proved by the smallest checkpoint whose size exceeds i; none if unsigned."""
    signed = [checkpoint(3), checkpoint(8)]
    assert covering_checkpoint(signed, 0) is signed[0]
    assert covering_checkpoint(signed, 2) is signed[0]
    assert covering_checkpoint(signed, 3) is signed[1]
    assert covering_checkpoint(signed, 8) is None
