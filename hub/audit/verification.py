"""Offline verification of the audit log: what ``tellonce audit verify`` runs.

The verifier trusts nothing but a public key. It streams the leaves once, checking that each
leaf's index is its position and that it links to the hash of the leaf before; it recomputes the
Merkle root at every checkpoint size and compares it with the signed root; it checks every
checkpoint's signature, numbering and growth, and the RFC 9162 consistency proof between each
pair of consecutive checkpoints. It stops at the first problem and names its position.

Why the leaf links give exact positions: changing leaf p changes its hash, which breaks the
link stored in leaf p+1 only; changing the link stored in leaf p breaks both the link into p
and (through p's hash) the link out of it. One leaf of lookahead tells the two apart.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hub.audit import merkle
from hub.audit.log import GENESIS, LEAF_KINDS, signed_body
from hub.audit.merkle import Tree
from hub.model import Checkpoint
from hub.ports import SignatureCheck


@dataclass(frozen=True, slots=True)
class Finding:
    position: str  # "leaf 41", "checkpoint 3", "bundle"
    message: str

    def __str__(self) -> str:
        return f"{self.position}: {self.message}"


@dataclass(slots=True)
class Verdict:
    leaves: int = 0
    checkpoints: int = 0
    signed_size: int = 0  # leaves covered by the newest checkpoint
    problem: Finding | None = None
    roots: dict[int, str] = field(default_factory=dict)  # checkpoint seq -> verified root

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def unsigned(self) -> int:
        return max(self.leaves - self.signed_size, 0)


@dataclass(frozen=True, slots=True)
class LeafInput:
    """One leaf as the verifier sees it: its canonical bytes, and the hash a store kept."""

    data: bytes
    stored_hash: str | None = None


def check_checkpoints(
    checkpoints: Sequence[Checkpoint], check: SignatureCheck, key_id: str | None
) -> Finding | None:
    """Numbering, growth, key and signature of every checkpoint, in order."""
    previous: Checkpoint | None = None
    for position, checkpoint in enumerate(checkpoints, start=1):
        where = f"checkpoint {position}"
        if checkpoint.seq != position:
            return Finding(
                where,
                f"found checkpoint number {checkpoint.seq} here: a checkpoint was removed, "
                "inserted or moved",
            )
        if previous is not None and checkpoint.size <= previous.size:
            return Finding(
                where,
                f"covers {checkpoint.size} leaves, not more than checkpoint {previous.seq} "
                f"({previous.size}): the log only grows",
            )
        if key_id is not None and checkpoint.key_id != key_id:
            return Finding(where, f"names key {checkpoint.key_id}, not the trusted key {key_id}")
        try:
            signature = base64.b64decode(checkpoint.signature, validate=True)
        except (binascii.Error, ValueError):
            return Finding(where, "the signature is not base64")
        if base64.b64encode(signature).decode() != checkpoint.signature:
            # Unused bits of the last base64 digit: other text, same bytes. Still an edit.
            return Finding(where, "the signature is not in canonical base64: it was edited")
        if not check(signed_body(checkpoint), signature):
            return Finding(where, "the signature does not verify under the trusted public key")
        previous = checkpoint
    return None


def verify_log(
    leaves: Iterable[LeafInput],
    checkpoints: Sequence[Checkpoint],
    check: SignatureCheck,
    *,
    key_id: str | None = None,
    consistency: Sequence[Sequence[bytes]] | None = None,
    allow_unsigned_tail: bool = True,
) -> Verdict:
    """Verify a whole log. ``consistency[k]`` proves checkpoint k+1 extends checkpoint k
    (index 0 is unused); without it the proofs are generated from the leaves themselves."""
    verdict = Verdict(checkpoints=len(checkpoints))
    verdict.problem = check_checkpoints(checkpoints, check, key_id)
    if verdict.problem is not None:
        return verdict
    verdict.signed_size = checkpoints[-1].size if checkpoints else 0

    hashes: list[bytes] = []
    frontier = merkle.Frontier()
    prev_hash = GENESIS
    suspect: int | None = None  # leaf whose outgoing link broke; confirmed by the next leaf
    pending = list(checkpoints)
    stream = iter(leaves)
    for position, leaf in enumerate(stream):
        where = f"leaf {position}"
        try:
            body = json.loads(leaf.data)
            index, kind, link = body["i"], body["kind"], body["prev"]
        except (ValueError, TypeError, KeyError):
            verdict.problem = Finding(where, "is not a well-formed leaf (index, kind, prev)")
            return verdict
        if index != position:
            verdict.problem = Finding(
                where, f"holds leaf number {index}: a leaf was removed, inserted or moved"
            )
            return verdict
        if kind not in LEAF_KINDS:
            verdict.problem = Finding(where, f"has unknown kind {str(kind)[:32]!r}")
            return verdict
        digest = merkle.leaf_hash(leaf.data)
        if leaf.stored_hash is not None and leaf.stored_hash != digest.hex():
            verdict.problem = Finding(where, "its content no longer matches its stored hash")
            return verdict
        if suspect is not None:
            # The link into the previous leaf broke. If the link out of it broke too, that
            # leaf's own link field was changed; otherwise the leaf before it was.
            bad = suspect if link != prev_hash else suspect - 1
            verdict.problem = Finding(
                f"leaf {bad}", "was changed: its hash no longer matches the next leaf's link"
            )
            return verdict
        if link != prev_hash:
            if position == 0:  # nothing before it to blame
                verdict.problem = Finding(where, "was changed: it must link to the genesis hash")
                return verdict
            suspect = position
        prev_hash = digest.hex()
        hashes.append(digest)
        frontier.append(digest)
        verdict.leaves = position + 1
        while pending and pending[0].size == frontier.size:
            checkpoint = pending.pop(0)
            if suspect is not None or frontier.root().hex() != checkpoint.root:
                first = _blame(checkpoints, checkpoint, hashes, suspect, link, next(stream, None))
                verdict.problem = Finding(
                    f"leaf {max(first, 0)}",
                    f"was changed: checkpoint {checkpoint.seq}'s signed root does not match "
                    f"leaves 0 to {checkpoint.size - 1}",
                )
                return verdict
            verdict.roots[checkpoint.seq] = checkpoint.root
    if suspect is not None:
        verdict.problem = Finding(
            f"leaf {max(suspect - 1, 0)}",
            "was changed: its hash no longer matches the next leaf's link",
        )
        return verdict
    if pending:
        verdict.problem = Finding(
            f"leaf {verdict.leaves}",
            f"is missing: checkpoint {pending[0].seq} covers {pending[0].size} leaves but the "
            f"log ends after {verdict.leaves} (leaves were removed from the end)",
        )
        return verdict
    if not allow_unsigned_tail and verdict.leaves > verdict.signed_size:
        verdict.problem = Finding(
            f"leaf {verdict.signed_size}",
            "is not covered by any checkpoint: a bundle holds only signed leaves",
        )
        return verdict
    verdict.problem = _check_consistency(checkpoints, hashes, consistency)
    return verdict


def _blame(
    checkpoints: Sequence[Checkpoint],
    checkpoint: Checkpoint,
    hashes: list[bytes],
    suspect: int | None,
    link: object,
    following: LeafInput | None,
) -> int:
    """The leaf to name when ``checkpoint``'s root does not match the leaves read so far.

    ``suspect`` is set when the link into the newest leaf broke; ``link`` is that leaf's own
    link field. The next leaf's link says whether the newest leaf's hash changed too. Without a
    next leaf, a broken link into the newest leaf is settled by the signed root: if the hash
    it links to, put back as the leaf before, reproduces the root, the leaf before was changed.
    """
    newest = len(hashes) - 1
    if following is not None:
        out_broke = _link(following) != hashes[-1].hex()
    elif suspect is not None:
        try:
            restored = [*hashes[:-2], bytes.fromhex(str(link)), hashes[-1]]
            out_broke = merkle.root_from_leaf_hashes(restored).hex() != checkpoint.root
        except ValueError:
            out_broke = True
    else:
        out_broke = True  # the newest leaf itself changed (or leaves up to it were rewritten)
    if suspect is not None:
        return newest if out_broke else newest - 1
    # Links intact into and out of the newest leaf: leaves since the previous checkpoint were
    # rewritten and relinked; the first of them is the earliest that may have changed.
    return newest if out_broke else _first_uncovered(checkpoints, checkpoint)


def _link(leaf: LeafInput) -> object:
    try:
        return json.loads(leaf.data)["prev"]
    except (ValueError, TypeError, KeyError):
        return None


def _first_uncovered(checkpoints: Sequence[Checkpoint], checkpoint: Checkpoint) -> int:
    """First leaf not covered by the checkpoint before ``checkpoint``: where the change is."""
    earlier = [c.size for c in checkpoints if c.seq < checkpoint.seq]
    return earlier[-1] if earlier else 0


def _check_consistency(
    checkpoints: Sequence[Checkpoint],
    hashes: list[bytes],
    consistency: Sequence[Sequence[bytes]] | None,
) -> Finding | None:
    tree = Tree(hashes) if consistency is None else None
    for k in range(1, len(checkpoints)):
        old, new = checkpoints[k - 1], checkpoints[k]
        if consistency is not None:
            proof = list(consistency[k]) if k < len(consistency) else []
        else:
            assert tree is not None
            proof = tree.consistency_proof(old.size, new.size)
        try:
            merkle.verify_consistency(
                old.size, new.size, bytes.fromhex(old.root), bytes.fromhex(new.root), proof
            )
        except (merkle.ProofError, ValueError) as exc:
            return Finding(
                f"checkpoint {new.seq}",
                f"is not consistent with checkpoint {old.seq}: {exc}",
            )
    return None
