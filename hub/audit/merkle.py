"""Merkle tree hashing, proofs and their verification, as RFC 9162 section 2.1 defines them.

RFC 9162 (Certificate Transparency 2.0) section 2.1 fixes the tree public transparency logs
use: leaves hashed as SHA-256(0x00 || data), interior nodes as SHA-256(0x01 || left || right)
(distinct prefixes, so a leaf cannot pass for a node), n leaves split at the largest power of
two below n. Keeping to it exactly lets an auditor check our proofs with any CT verifier.

Everything works on *leaf hashes*: the log stores them, and a client checking a proof needs
the leaf's hash, not the record. ``root_from_leaf_hashes`` and ``Frontier`` give MTH (2.1.1)
of a whole or a growing tree; ``inclusion_proof``/``verify_inclusion`` are PATH and its check
(2.1.3), ``consistency_proof``/``verify_consistency`` are PROOF and its check (2.1.4); ``Tree``
keeps a whole log's levels so many proofs over its prefixes cost one hashing of the log. The
checks follow the RFC's steps literally, so a proof with a hash too many or too few fails
here exactly as in any other implementation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from hub.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "ProofError",
    "Tree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """MTH({d(0)}) = SHA-256(0x00 || d(0)): the hash of one leaf's data."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node from its two children."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The RFC's k for n > 1: the largest power of two smaller than n."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes, bottom-up in O(n).

    Pairing neighbours level by level and lifting an unpaired last node unchanged builds the
    same tree as the RFC's top-down split at the largest power of two: the left part of every
    split is a complete subtree, which is exactly what pairing from the left produces.
    """
    level = list(hashes)
    for i, h in enumerate(level):
        if len(h) != HASH_SIZE:
            raise ValueError(f"leaf hash {i} is {len(h)} bytes, not {HASH_SIZE}")
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


class Frontier:
    """The right edge of a growing tree: enough to append leaves and compute the root.

    A tree of ``size`` leaves is a row of complete subtrees, one per set bit of ``size``. Only
    their roots are kept (O(log n)); appending merges equal subtrees like a binary carry, so a
    log keeps its root current without holding or rereading its leaves.
    """

    def __init__(self) -> None:
        self.size = 0
        self._nodes: list[bytes] = []  # roots of the complete subtrees, largest first

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash at index ``size``."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
        node, carry = leaf, self.size
        while carry & 1:
            node = node_hash(self._nodes.pop(), node)
            carry >>= 1
        self._nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        """MTH of all leaves appended so far; EMPTY_ROOT before the first."""
        if not self._nodes:
            return EMPTY_ROOT
        root = self._nodes[-1]
        for node in reversed(self._nodes[:-1]):
            root = node_hash(node, root)
        return root

    def copy(self) -> Frontier:
        """An independent frontier at the same size, e.g. to compute a root speculatively."""
        twin = Frontier()
        twin.size = self.size
        twin._nodes = list(self._nodes)
        return twin

    def state(self) -> list[bytes]:
        """The subtree roots, largest first: with ``size``, all a store keeps to resume."""
        return list(self._nodes)

    @classmethod
    def from_state(cls, size: int, nodes: Sequence[bytes]) -> Frontier:
        """Resume a frontier saved as ``size`` and ``state()``."""
        if len(nodes) != size.bit_count() or any(len(n) != HASH_SIZE for n in nodes):
            raise ValueError(f"a frontier of size {size} holds {size.bit_count()} hashes")
        frontier = cls()
        frontier.size = size
        frontier._nodes = list(nodes)
        return frontier

    @classmethod
    def from_leaf_hashes(cls, hashes: Iterable[bytes]) -> Frontier:
        """A frontier holding ``hashes`` in order."""
        frontier = cls()
        for h in hashes:
            frontier.append(h)
        return frontier


class Tree:
    """A whole log's leaf hashes with every level of complete, aligned subtrees (2n hashes).

    Built once, it answers roots and proofs for any prefix of the log: the subtrees the RFC
    recursion visits start on a subtree boundary, so each is a lookup or O(log n) combinations.
    A verifier or exporter needing a proof per checkpoint thus hashes the log once, not once
    per proof.
    """

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        for i, h in enumerate(leaf_hashes):
            if len(h) != HASH_SIZE:
                raise ValueError(f"leaf hash {i} is {len(h)} bytes, not {HASH_SIZE}")
        self.size = len(leaf_hashes)
        self._levels: list[list[bytes]] = [list(leaf_hashes)]
        while len(self._levels[-1]) > 1:
            below = self._levels[-1]
            self._levels.append(
                [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )

    def _range(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi)."""
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:  # a complete, aligned subtree: stored
            return self._levels[n.bit_length() - 1][lo // n]
        k = _split(n)
        return node_hash(self._range(lo, lo + k), self._range(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        size = self._size(size)
        return self._range(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]) (RFC 9162 2.1.3.1), ordered leaf to root.

        Walks the RFC's recursion top-down without recursing: at each split the subtree that
        does not hold ``index`` contributes its root.
        """
        size = self._size(size)
        if not 0 <= index < size:
            raise ValueError(f"index {index} is not in a tree of size {size}")
        path: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            mid = lo + _split(hi - lo)
            if index < mid:
                path.append(self._range(mid, hi))
                hi = mid
            else:
                path.append(self._range(lo, mid))
                lo = mid
        path.reverse()  # collected root-first; the RFC lists the sibling nearest the leaf first
        return path

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[new_size]) (RFC 9162 2.1.4.1), in the RFC's order.

        Empty when ``old_size`` is 0 or the new size. Otherwise SUBPROOF is unrolled like
        ``inclusion_proof``; ``whole`` is the RFC's flag b: once the old tree is not the whole
        subtree being descended, that subtree's root is part of the proof.
        """
        n = self._size(new_size)
        if not 0 <= old_size <= n:
            raise ValueError(f"old size {old_size} is not between 0 and the tree size {n}")
        proof: list[bytes] = []
        if old_size in (0, n):
            return proof
        lo, hi, m, whole = 0, n, old_size, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                proof.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range(lo, lo + k))
                lo, m, whole = lo + k, m - k, False
        if not whole:
            proof.append(self._range(lo, hi))
        proof.reverse()
        return proof

    def _size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is not between 0 and the {self.size} leaves held")
        return size


def inclusion_proof(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) over leaf hashes (RFC 9162 2.1.3.1), ordered leaf to root."""
    return Tree(hashes).inclusion_proof(index)


def consistency_proof(old_size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, D[n]) over leaf hashes (RFC 9162 2.1.4.1), in the RFC's order."""
    return Tree(hashes).consistency_proof(old_size)


def _check_lengths(proof: Sequence[bytes], *named: tuple[str, bytes]) -> None:
    """Reject wrong-length hashes up front, so the error names them instead of a root mismatch."""
    for what, value in [*named, *((f"proof hash {i}", h) for i, h in enumerate(proof))]:
        if len(value) != HASH_SIZE:
            raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _hashes(count: int, kind: str) -> str:
    return f"{count} {kind} {'hash' if count == 1 else 'hashes'}"


def _step(fn: int, sn: int) -> tuple[bool, int, int]:
    """One turn of the loop both RFC verifiers share (steps b and c).

    Returns whether the next path hash is a left sibling (LSB(fn) set, or fn == sn on the right
    border), and fn, sn after the right-shifts: first "until LSB(fn) is set or fn is 0" in the
    left case, which skips levels where the node has no right sibling, then once.
    """
    left = bool(fn & 1) or fn == sn
    while left and fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return left, fn >> 1, sn >> 1


def _missing(fn: int, sn: int) -> int:
    """How many more path hashes the loop would take from (fn, sn) to reach sn == 0."""
    count = 0
    while sn:
        _, fn, sn = _step(fn, sn)
        count += 1
    return count


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` sits at ``index`` in the tree of ``size`` with ``root`` (2.1.3.2)."""
    _check_lengths(proof, ("leaf hash", leaf), ("root", root))
    if index < 0:
        raise ProofError(f"index {index} is negative")
    if index >= size:
        raise ProofError(f"index {index} is not below tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for i, p in enumerate(proof):
        if sn == 0:
            raise ProofError(f"proof has {_hashes(len(proof) - i, 'extra')}")
        left, fn, sn = _step(fn, sn)
        r = node_hash(p, r) if left else node_hash(r, p)
    if sn != 0:
        raise ProofError(f"proof is missing {_hashes(_missing(fn, sn), 'more')}")
    if r != root:
        raise ProofError("computed root differs from the given root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``old_size``/``old_root`` is a prefix of ``new_size``/``new_root``.

    Follows 2.1.4.2, which covers 0 < old_size < new_size. The cases it leaves out are decided
    as PROOF defines them: equal sizes and old_size 0 need an empty proof, equal sizes need
    equal roots, and a tree of size 0 has only one possible root, EMPTY_ROOT.
    """
    _check_lengths(proof, ("old root", old_root), ("new root", new_root))
    if old_size < 0:
        raise ProofError(f"old size {old_size} is negative")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is above new size {new_size}")
    if old_size in (0, new_size):
        if proof:
            raise ProofError(f"proof has {_hashes(len(proof), 'extra')}: it must be empty")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError("old root is not the root of the empty tree")
        if old_size == new_size and old_root != new_root:
            raise ProofError(f"roots differ for the same tree size {old_size}")
        return
    if not proof:  # step 1
        raise ProofError(f"proof is empty: sizes {old_size} and {new_size} need hashes")
    # Step 2: a power-of-two old tree is a complete subtree of the new one; the proof leaves
    # out its root, which the verifier already has.
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for i, c in enumerate(path[1:]):
        if sn == 0:
            raise ProofError(f"proof has {_hashes(len(path) - 1 - i, 'extra')}")
        left, fn, sn = _step(fn, sn)
        if left:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
        else:
            sr = node_hash(sr, c)
    if sn != 0:
        raise ProofError(f"proof is missing {_hashes(_missing(fn, sn), 'more')}")
    if fr != old_root:
        raise ProofError("computed old root differs from the given old root")
    if sr != new_root:
        raise ProofError("computed new root differs from the given new root")
