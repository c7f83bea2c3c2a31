"""RFC 9162 Merkle trees: published vectors reproduce, corrupted proofs fail, proofs verify."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hub.audit.merkle
from hub.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Frontier,
    ProofError,
    Tree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# The RFC 6962 / RFC 9162 reference vectors, copied from github.com/transparency-dev/merkle:
# leaf inputs and roots from testonly/constants.go (LeafInputs, RootHashes), inclusion proofs
# from testonly/reference_test.go (TestRefInclusionProof, 0-based index; proof/verify_test.go
# `inclusionProofs` holds the same proofs with 1-based leaf numbers), consistency proofs from
# testonly/reference_test.go (TestRefConsistencyProof) plus (6, 7) from proof/verify_test.go.
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]  # ROOTS[n] is the root of the tree of the first n leaves
INCLUSION = [
    (0, 1, ()),
    (0, 2, ("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",)),
    (1, 2, ("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",)),
    (2, 3, ("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",)),
    (
        1,
        5,
        (
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
    (
        0,
        8,
        (
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        5,
        8,
        (
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
]
CONSISTENCY = [
    (1, 1, ()),
    (
        1,
        8,
        (
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        2,
        5,
        (
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
    (
        6,
        8,
        (
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (
        6,
        7,
        (
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
]
# sha256SomeHash from proof/verify_test.go: 32 bytes that are no node of the reference tree.
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")

LEAF_HASHES = [leaf_hash(d) for d in LEAVES]
# Leaf hashes for the larger generated trees.
POOL = [leaf_hash(i.to_bytes(4, "big")) for i in range(500)]

# RFC verification binds a tree size only through the shape of the path (which siblings sit
# left or right, and how many); a neighbouring size with the same shape computes the same root.
# So these single-size corruptions verify, as they do in every RFC 9162 verifier. The size is
# bound by taking size and root together from one signed checkpoint, never from the prover.
SAME_SHAPE_INCLUSION = {(1, 5): 6, (0, 8): 7, (5, 8): 7}
SAME_SHAPE_CONSISTENCY = {(1, 8): 7, (2, 5): 6, (6, 8): 7, (6, 7): 8}

Probe = tuple[str, Callable[[], None]]


def hashes(hex_strings: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hex_strings]


def flipped(proof: Sequence[bytes], i: int, bit: int) -> list[bytes]:
    """``proof`` with bit ``bit`` (0 = lowest bit of the first byte) of hash ``i`` flipped."""
    out = list(proof)
    h = bytearray(out[i])
    h[bit // 8] ^= 1 << bit % 8
    out[i] = bytes(h)
    return out


def resized(proof: Sequence[bytes], i: int, length: int) -> list[bytes]:
    out = list(proof)
    out[i] = (out[i] + b"\x00")[:length]
    return out


def accepted(probes: Sequence[Probe]) -> list[str]:
    """Descriptions of the probes that verified; every one should have raised ProofError."""
    passed = []
    for desc, call in probes:
        try:
            call()
        except ProofError:
            continue
        passed.append(desc)
    return passed


# The RFC definitions (2.1.1, 2.1.3.1, 2.1.4.1) transcribed literally, to check the fast code.
def ref_mth(d: Sequence[bytes]) -> bytes:
    if not d:
        return EMPTY_ROOT
    if len(d) == 1:
        return d[0]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return node_hash(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def test_public_api_is_what_callers_import() -> None:
    """The module exports exactly the agreed names, so additions are deliberate."""
    assert sorted(hub.audit.merkle.__all__) == sorted(
        [
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
    )


def test_hash_primitives_use_the_rfc_domain_prefixes() -> None:
    """Leaves hash with 0x00, nodes with 0x01, the empty tree is SHA-256 of nothing."""
    assert HASH_SIZE == 32
    assert ROOTS[0] == EMPTY_ROOT
    assert leaf_hash(LEAVES[0]) == ROOTS[1]
    assert node_hash(LEAF_HASHES[0], LEAF_HASHES[1]) == ROOTS[2]


@pytest.mark.parametrize("size", range(9))
def test_reference_roots_reproduce(size: int) -> None:
    """Both root builders give the published root for every prefix of the reference leaves."""
    assert root_from_leaf_hashes(LEAF_HASHES[:size]) == ROOTS[size]
    assert Frontier.from_leaf_hashes(LEAF_HASHES[:size]).root() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION)
def test_reference_inclusion_proofs_reproduce_and_verify(
    index: int, size: int, expected: Sequence[str]
) -> None:
    """inclusion_proof gives the published PATH, and that PATH verifies."""
    proof = inclusion_proof(index, LEAF_HASHES[:size])
    assert proof == hashes(expected)
    verify_inclusion(index, size, LEAF_HASHES[index], proof, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "expected"), CONSISTENCY)
def test_reference_consistency_proofs_reproduce_and_verify(
    old: int, new: int, expected: Sequence[str]
) -> None:
    """consistency_proof gives the published PROOF, and that PROOF verifies."""
    proof = consistency_proof(old, LEAF_HASHES[:new])
    assert proof == hashes(expected)
    verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


def inclusion_probes(i: int, n: int, proof: list[bytes]) -> list[Probe]:
    """proof/verify_test.go corruptInclusionProof, plus size +-1 and wrong-length hashes."""
    leaf, root = LEAF_HASHES[i], ROOTS[n]

    def probe(desc: str, i: int, n: int, leaf: bytes, proof: list[bytes], root: bytes) -> Probe:
        return desc, lambda: verify_inclusion(i, n, leaf, proof, root)

    sizes = sorted({n - 1, n + 1, n * 2, n // 2} - {n, SAME_SHAPE_INCLUSION.get((i, n))})
    probes = [
        probe("index - 1", i - 1, n, leaf, proof, root),
        probe("index + 1", i + 1, n, leaf, proof, root),
        probe("index ^ 2", i ^ 2, n, leaf, proof, root),
        *(probe(f"size {s}", i, s, leaf, proof, root) for s in sizes),
        probe("wrong leaf", i, n, leaf_hash(b"WrongLeaf"), proof, root),
        probe("short wrong leaf", i, n, b"WrongLeaf", proof, root),
        probe("empty root", i, n, leaf, proof, EMPTY_ROOT),
        probe("random root", i, n, leaf, proof, SOME_HASH),
        probe("root of another size", i, n, leaf, proof, ROOTS[n % 8 + 1]),
        probe("trailing garbage", i, n, leaf, [*proof, b""], root),
        probe("trailing root", i, n, leaf, [*proof, root], root),
        probe("trailing hash", i, n, leaf, [*proof, SOME_HASH], root),
        probe("preceding garbage", i, n, leaf, [b"", *proof], root),
        probe("preceding root", i, n, leaf, [root, *proof], root),
        probe("preceding hash", i, n, leaf, [SOME_HASH, *proof], root),
        probe("31-byte leaf", i, n, leaf[:31], proof, root),
        probe("33-byte leaf", i, n, leaf + b"\x00", proof, root),
        probe("31-byte root", i, n, leaf, proof, root[:31]),
        probe("33-byte root", i, n, leaf, proof, root + b"\x00"),
    ]
    for j in range(len(proof)):
        probes.append(probe(f"proof[{j}] bit 3", i, n, leaf, flipped(proof, j, 3), root))
        probes.append(probe(f"31-byte proof[{j}]", i, n, leaf, resized(proof, j, 31), root))
        probes.append(probe(f"33-byte proof[{j}]", i, n, leaf, resized(proof, j, 33), root))
    if proof:
        probes.append(probe("removed component", i, n, leaf, proof[:-1], root))
        probes.append(probe("empty proof", i, n, leaf, [], root))
    if len(proof) > 1:
        inserted = [proof[0], SOME_HASH, *proof[1:]]
        probes.append(probe("inserted component", i, n, leaf, inserted, root))
    return probes


def consistency_probes(m: int, n: int, proof: list[bytes]) -> list[Probe]:
    """proof/verify_test.go corruptConsistencyProof, plus size +-1 and wrong-length hashes."""
    r1, r2 = ROOTS[m], ROOTS[n]
    sizes = sorted({n - 1, n + 1, n * 2, n // 2} - {n, SAME_SHAPE_CONSISTENCY.get((m, n))})

    def probe(desc: str, m: int, n: int, r1: bytes, r2: bytes, proof: list[bytes]) -> Probe:
        return desc, lambda: verify_consistency(m, n, r1, r2, proof)

    probes = [
        probe("old size - 1", m - 1, n, r1, r2, proof),
        probe("old size + 1", m + 1, n, r1, r2, proof),
        probe("old size ^ 2", m ^ 2, n, r1, r2, proof),
        *(probe(f"new size {s}", m, s, r1, r2, proof) for s in sizes),
        probe("short wrong old root", m, n, b"WrongRoot", r2, proof),
        probe("short wrong new root", m, n, r1, b"WrongRoot", proof),
        probe("wrong old root", m, n, SOME_HASH, r2, proof),
        probe("wrong new root", m, n, r1, SOME_HASH, proof),
        probe("swapped roots", m, n, r2, r1, proof),
        probe("empty proof", m, n, r1, r2, []),
        probe("trailing garbage", m, n, r1, r2, [*proof, b""]),
        probe("trailing old root", m, n, r1, r2, [*proof, r1]),
        probe("trailing new root", m, n, r1, r2, [*proof, r2]),
        probe("preceding garbage", m, n, r1, r2, [b"", *proof]),
        probe("preceding old root", m, n, r1, r2, [r1, *proof]),
        probe("preceding new root", m, n, r1, r2, [r2, *proof]),
        probe("preceding proof[0]", m, n, r1, r2, [proof[0], *proof]),
        probe("truncated proof", m, n, r1, r2, proof[:-1]),
        probe("31-byte old root", m, n, r1[:31], r2, proof),
        probe("33-byte new root", m, n, r1, r2 + b"\x00", proof),
    ]
    for j in range(len(proof)):
        probes.append(probe(f"proof[{j}] bit 4", m, n, r1, r2, flipped(proof, j, 4)))
        probes.append(probe(f"31-byte proof[{j}]", m, n, r1, r2, resized(proof, j, 31)))
        probes.append(probe(f"33-byte proof[{j}]", m, n, r1, r2, resized(proof, j, 33)))
    return probes


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION)
def test_every_corrupted_inclusion_proof_fails(
    index: int, size: int, expected: Sequence[str]
) -> None:
    """Each corruption of a published inclusion proof raises ProofError."""
    assert accepted(inclusion_probes(index, size, hashes(expected))) == []


@pytest.mark.parametrize(("old", "new", "expected"), [c for c in CONSISTENCY if c[2]])
def test_every_corrupted_consistency_proof_fails(
    old: int, new: int, expected: Sequence[str]
) -> None:
    """Each corruption of a published non-trivial consistency proof raises ProofError."""
    assert accepted(consistency_probes(old, new, hashes(expected))) == []


def test_neighbouring_size_with_the_same_path_shape_verifies() -> None:
    """As in the RFC, the size is bound only through the root: same-shape sizes verify too."""
    for (i, n), other in SAME_SHAPE_INCLUSION.items():
        verify_inclusion(i, other, LEAF_HASHES[i], inclusion_proof(i, LEAF_HASHES[:n]), ROOTS[n])
    for (m, n), other in SAME_SHAPE_CONSISTENCY.items():
        proof = consistency_proof(m, LEAF_HASHES[:n])
        verify_consistency(m, other, ROOTS[m], ROOTS[n], proof)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((7, 7, LEAF_HASHES[0], [], ROOTS[7]), "index 7 is not below tree size 7"),
        ((0, 0, LEAF_HASHES[0], [], EMPTY_ROOT), "index 0 is not below tree size 0"),
        ((-1, 3, LEAF_HASHES[0], [], ROOTS[3]), "index -1 is negative"),
        ((0, 1, LEAF_HASHES[0], [SOME_HASH, SOME_HASH], ROOTS[1]), "proof has 2 extra hashes"),
        ((0, 8, LEAF_HASHES[0], [SOME_HASH], ROOTS[8]), "proof is missing 2 more hashes"),
        ((0, 1, LEAF_HASHES[0], [], ROOTS[2]), "computed root differs"),
        ((0, 2, LEAF_HASHES[0], [b"\x00" * 31], ROOTS[2]), "proof hash 0 is 31 bytes, not 32"),
        ((0, 1, b"", [], ROOTS[1]), "leaf hash is 0 bytes"),
        ((0, 1, LEAF_HASHES[0], [], b""), "root is 0 bytes"),
    ],
)
def test_inclusion_errors_say_what_is_wrong(
    args: tuple[int, int, bytes, list[bytes], bytes], message: str
) -> None:
    """verify_inclusion names the defect: index, extra or missing hashes, root, hash length."""
    with pytest.raises(ProofError, match=message):
        verify_inclusion(*args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((2, 1, ROOTS[2], ROOTS[1], []), "old size 2 is above new size 1"),
        ((1, 0, ROOTS[1], ROOTS[0], []), "old size 1 is above new size 0"),
        ((-1, 1, ROOTS[0], ROOTS[1], []), "old size -1 is negative"),
        ((0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]), "proof has 1 extra hash"),
        ((0, 1, EMPTY_ROOT, ROOTS[1], [EMPTY_ROOT]), "proof has 1 extra hash"),
        ((1, 1, ROOTS[1], ROOTS[1], [EMPTY_ROOT]), "proof has 1 extra hash"),
        ((0, 3, SOME_HASH, ROOTS[3], []), "old root is not the root of the empty tree"),
        ((1, 1, ROOTS[1], ROOTS[2], []), "roots differ for the same tree size 1"),
        ((1, 2, ROOTS[1], ROOTS[2], []), "proof is empty"),
        ((2, 4, ROOTS[2], ROOTS[4], [SOME_HASH] * 3), "proof has 2 extra hashes"),
        ((3, 8, ROOTS[3], ROOTS[8], [SOME_HASH]), "proof is missing 3 more hashes"),
        ((3, 4, SOME_HASH, ROOTS[4], consistency_proof(3, LEAF_HASHES[:4])), "computed old root"),
        ((2, 3, ROOTS[2], SOME_HASH, [LEAF_HASHES[2]]), "computed new root differs"),
        ((2, 3, ROOTS[2], ROOTS[3], [b"\x00" * 33]), "proof hash 0 is 33 bytes, not 32"),
        ((2, 3, ROOTS[2][:31], ROOTS[3], [LEAF_HASHES[2]]), "old root is 31 bytes"),
    ],
)
def test_consistency_errors_say_what_is_wrong(
    args: tuple[int, int, bytes, bytes, list[bytes]], message: str
) -> None:
    """verify_consistency names the defect: sizes, extra or missing hashes, roots, lengths."""
    with pytest.raises(ProofError, match=message):
        verify_consistency(*args)


def test_trivial_consistency_proofs_verify() -> None:
    """Equal sizes, and the empty tree against any tree, verify with an empty proof."""
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 8, EMPTY_ROOT, ROOTS[8], [])
    verify_consistency(5, 5, ROOTS[5], ROOTS[5], [])
    assert consistency_proof(0, LEAF_HASHES) == []
    assert consistency_proof(8, LEAF_HASHES) == []


def test_frontier_agrees_with_root_from_leaf_hashes_up_to_300() -> None:
    """Appending one leaf at a time gives the O(n) builder's root at every size 0..300."""
    leaves = POOL[:300]
    frontier = Frontier()
    assert frontier.root() == EMPTY_ROOT
    for n in range(301):
        assert frontier.size == n
        assert frontier.root() == root_from_leaf_hashes(leaves[:n])
        if n < 300:
            frontier.append(leaves[n])


def test_fast_builders_match_the_rfc_definitions() -> None:
    """Roots and proofs equal a literal transcription of MTH, PATH and PROOF for n <= 40."""
    for n in range(41):
        d = POOL[:n]
        assert root_from_leaf_hashes(d) == ref_mth(d)
        for m in range(n):
            assert inclusion_proof(m, d) == ref_path(m, d)
            if m:
                assert consistency_proof(m, d) == ref_subproof(m, d, True)


def test_frontier_copy_is_independent() -> None:
    """Appending to a copy leaves the original frontier untouched."""
    original = Frontier.from_leaf_hashes(LEAF_HASHES[:5])
    twin = original.copy()
    twin.append(LEAF_HASHES[5])
    assert (original.size, original.root()) == (5, ROOTS[5])
    assert (twin.size, twin.root()) == (6, ROOTS[6])


def test_builders_reject_bad_input() -> None:
    """Wrong-length leaf hashes and out-of-range positions raise ValueError, not a bad root."""
    with pytest.raises(ValueError, match="leaf hash is 31 bytes"):
        Frontier().append(b"\x00" * 31)
    with pytest.raises(ValueError, match="leaf hash 1 is 33 bytes"):
        root_from_leaf_hashes([LEAF_HASHES[0], b"\x00" * 33])
    with pytest.raises(ValueError, match="index 8 is not in a tree of size 8"):
        inclusion_proof(8, LEAF_HASHES)
    with pytest.raises(ValueError, match="index -1"):
        inclusion_proof(-1, LEAF_HASHES)
    with pytest.raises(ValueError, match="old size 9 is not between 0 and the tree size 8"):
        consistency_proof(9, LEAF_HASHES)


@st.composite
def tree_and_positions(draw: st.DrawFn) -> tuple[int, int, int]:
    n = draw(st.integers(1, 500))
    return n, draw(st.integers(0, n - 1)), draw(st.integers(0, n))


@given(tree_and_positions(), st.integers(0, 8 * HASH_SIZE - 1))
def test_generated_proofs_verify_and_a_flipped_bit_fails(
    case: tuple[int, int, int], bit: int
) -> None:
    """For any tree up to 500 leaves, built proofs verify; one flipped proof bit breaks them."""
    n, index, old = case
    leaves = POOL[:n]
    root, old_root = root_from_leaf_hashes(leaves), root_from_leaf_hashes(leaves[:old])
    path = inclusion_proof(index, leaves)
    verify_inclusion(index, n, leaves[index], path, root)
    proof = consistency_proof(old, leaves)
    verify_consistency(old, n, old_root, root, proof)
    if path:
        with pytest.raises(ProofError):
            verify_inclusion(index, n, leaves[index], flipped(path, bit % len(path), bit), root)
    if proof:
        with pytest.raises(ProofError):
            verify_consistency(old, n, old_root, root, flipped(proof, bit % len(proof), bit))


@given(st.integers(1, 300), st.data())
def test_tree_answers_any_prefix_as_the_rfc_defines_it(n: int, data: st.DataObject) -> None:
    """Tree gives, for any prefix of a log, the MTH, PATH and PROOF of that prefix alone."""
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    tree = Tree(hashes)
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(0, size))
    prefix = hashes[:size]
    assert tree.root(size) == ref_mth(prefix) == root_from_leaf_hashes(prefix)
    assert tree.inclusion_proof(index, size) == ref_path(index, prefix)
    assert tree.consistency_proof(old, size) == (
        ref_subproof(old, prefix, True) if 0 < old < size else []
    )


def test_frontier_resumes_from_its_saved_state() -> None:
    """A frontier saved as (size, state) and resumed gives the same roots as one never saved."""
    hashes = [leaf_hash(bytes([i])) for i in range(23)]
    saved = Frontier.from_leaf_hashes(hashes[:13])
    resumed = Frontier.from_state(saved.size, saved.state())
    for h in hashes[13:]:
        resumed.append(h)
    assert resumed.root() == root_from_leaf_hashes(hashes)
