"""Inclusion and consistency proofs over a whole stored log, fast enough for every checkpoint.

``hub.merkle`` generates a proof from the leaf hashes in O(n). A verifier or an exporter that
needs a proof for each of hundreds of checkpoints would then hash the log hundreds of times.
``Tree`` hashes it once: it keeps every level of complete, aligned subtrees (2n hashes), so
the root of any subtree the RFC 9162 recursion visits is a lookup or O(log n) combinations.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.merkle import EMPTY_ROOT, node_hash


def _split(n: int) -> int:
    """Largest power of two smaller than n (n > 1): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


class Tree:
    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.size = len(leaf_hashes)
        self._levels: list[list[bytes]] = [list(leaf_hashes)]
        while len(self._levels[-1]) > 1:
            below = self._levels[-1]
            self._levels.append(
                [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )

    def _range(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi): ranges the recursion visits start on a subtree boundary."""
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:  # a complete, aligned subtree: stored
            return self._levels[n.bit_length() - 1][lo // n]
        k = _split(n)
        return node_hash(self._range(lo, lo + k), self._range(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        self._check(size)
        return self._range(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]) (RFC 9162 2.1.3.1), nearest sibling first."""
        size = self.size if size is None else size
        self._check(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of size {size}")
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
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[new_size]) (RFC 9162 2.1.4.1)."""
        n = self.size if new_size is None else new_size
        self._check(n)
        if not 0 <= old_size <= n:
            raise ValueError(f"old size {old_size} is not between 0 and {n}")
        if old_size in (0, n):
            return []
        proof: list[bytes] = []
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

    def _check(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is not between 0 and the {self.size} leaves held")
