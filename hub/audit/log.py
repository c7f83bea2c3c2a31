"""The audit log: an append-only Merkle log of facts with signed checkpoints (DESIGN.md 7).

Each fact is one leaf. A leaf's bytes are the canonical JSON of its index, kind, data, time and
the hash of the previous leaf, hashed as RFC 9162 leaf data (``H(0x00 || bytes)``); the tree is
hashed as RFC 9162 (``hub.audit.merkle``). Carrying the previous leaf's hash pins every leaf to its
position, so a verifier names the exact leaf that was changed, removed, inserted or moved,
and the signed roots prove that nobody rewrote the log as a whole.

A checkpoint (a signed tree head) states the log's size and root at a moment, signed with the
hub's Ed25519 key. The ``Notary`` issues them every N leaves or T seconds, inside the same
transaction as the leaves, so the log and its signatures commit together or not at all.
Leaves hold ids, codes and hashes, never personal values.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub.audit import merkle
from hub.errors import SignerError, StoreError
from hub.model import AuditRecord, Checkpoint
from hub.ports import Signer, Transaction

GENESIS = "0" * 64
CHECKPOINT_HEADER = "tellonce.audit.checkpoint/v1"
# Every fact the log records, and the store facts ``tellonce audit reconcile`` counts them
# against.
LEAF_KINDS = (
    "accepted",
    "rejected",
    "disclosed",
    "withheld",
    "delivered",
    "delivery_failed",
    "dead_lettered",
    "dlq_replayed",
    "consent_given",
    "consent_withdrawn",
    "identity_linked",
    "receipt_refused",
    "erased",
)


# Canonical JSON: sorted keys, no spaces, UTF-8 kept. Built once: json.dumps with options builds
# an encoder per call, a fifth of the cost of a leaf.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def leaf_bytes(index: int, kind: str, data: dict[str, Any], at: datetime, prev_hash: str) -> bytes:
    """The canonical bytes of a leaf: what is hashed, exported and verified."""
    return _leaf_bytes(index, kind, data, at.isoformat(), prev_hash)


def _leaf_bytes(index: int, kind: str, data: dict[str, Any], at: str, prev_hash: str) -> bytes:
    """``{"i", "kind", "data", "at", "prev"}`` as canonical JSON, its fixed keys written in
    their sorted order by hand so that only ``data`` goes through the encoder's key sort (an
    int index is its digits, as json writes it): byte for byte what encoding the whole object
    gives (``tests/unit/test_audit.py``)."""
    encode = _CANONICAL.encode
    return (
        f'{{"at":{encode(at)},"data":{encode(data)},"i":{index:d},'
        f'"kind":{encode(kind)},"prev":{encode(prev_hash)}}}'
    ).encode()


def record_bytes(record: AuditRecord) -> bytes:
    return leaf_bytes(record.index, record.kind, record.data, record.recorded_at, record.prev_hash)


class AuditLog:
    """Builds the next leaves of the log, starting after ``last`` (None for an empty log)."""

    def __init__(self, last: AuditRecord | None) -> None:
        self._next = last.index + 1 if last else 0
        self._hash = last.hash if last else GENESIS
        self.pending: list[AuditRecord] = []
        # A batch stamps all its leaves with one time: its text is made once (by identity, as
        # equal times in other zones have other texts).
        self._at: datetime | None = None
        self._at_text = ""

    def append(self, kind: str, data: dict[str, Any], at: datetime) -> AuditRecord:
        if at is not self._at:
            self._at, self._at_text = at, at.isoformat()
        body = _leaf_bytes(self._next, kind, data, self._at_text, self._hash)
        leaf = merkle.leaf_hash(body).hex()
        record = AuditRecord(self._next, kind, data, at, self._hash, leaf)
        self._next += 1
        self._hash = leaf
        self.pending.append(record)
        return record

    def write(self, tx: Transaction) -> None:
        tx.add_audit(self.pending)
        self.pending = []


def checkpoint_body(seq: int, size: int, root: str, issued_at: datetime, key_id: str) -> bytes:
    """The signed text of a checkpoint; one field per line, like a C2SP signed note."""
    lines = [
        CHECKPOINT_HEADER,
        f"seq {seq}",
        f"size {size}",
        f"root {root}",
        f"time {issued_at.isoformat()}",
        f"key {key_id}",
    ]
    return ("\n".join(lines) + "\n").encode()


def signed_body(checkpoint: Checkpoint) -> bytes:
    return checkpoint_body(
        checkpoint.seq, checkpoint.size, checkpoint.root, checkpoint.issued_at, checkpoint.key_id
    )


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    every_leaves: int = 1_000
    every_seconds: float = 30.0

    def due(self, last: Checkpoint | None, size: int, now: datetime) -> bool:
        """A checkpoint is due when leaves are unsigned and enough of them or of time passed."""
        signed = last.size if last else 0
        if size <= signed:
            return False
        if size - signed >= self.every_leaves or last is None:
            return True
        return now - last.issued_at >= timedelta(seconds=self.every_seconds)


class Notary:
    """Issues checkpoints with the signer; fails closed when the signer cannot sign."""

    PROBE = b"tellonce: signer probe"

    def __init__(self, signer: Signer, policy: CheckpointPolicy) -> None:
        self._signer = signer
        self.policy = policy

    @property
    def key_id(self) -> str:
        return self._signer.key_id

    def public_key_pem(self) -> str:
        return self._signer.public_key_pem()

    def ensure_available(self) -> None:
        """Raise SignerError unless the key signs now: checked before accepting a batch, so no
        event is accepted into a log that cannot be signed."""
        self._signer.sign(self.PROBE)

    def maybe_checkpoint(
        self, tx: Transaction, now: datetime, *, force: bool = False
    ) -> Checkpoint | None:
        """Issue a checkpoint in ``tx`` when one is due (or ``force``d and leaves are unsigned)."""
        last = tx.last_checkpoint()
        last_leaf = tx.last_audit()
        size = last_leaf.index + 1 if last_leaf else 0
        signed = last.size if last else 0
        if size <= signed or not (force or self.policy.due(last, size, now)):
            return None
        frontier = (
            merkle.Frontier.from_state(signed, [bytes.fromhex(h) for h in last.frontier])
            if last
            else merkle.Frontier()
        )
        if last and frontier.root().hex() != last.root:
            # Signing on top of a damaged cache would certify a wrong root: stop instead.
            raise StoreError(
                f"the saved state of checkpoint {last.seq} does not match its signed root; "
                "run 'tellonce audit verify' and restore the database",
                retriable=False,
            )
        for leaf in tx.leaf_hashes(signed, size):
            frontier.append(leaf)
        checkpoint = self.sign(
            seq=(last.seq if last else 0) + 1,
            size=size,
            root=frontier.root().hex(),
            issued_at=now,
            frontier=tuple(h.hex() for h in frontier.state()),
        )
        tx.add_checkpoint(checkpoint)
        return checkpoint

    def sign(
        self, *, seq: int, size: int, root: str, issued_at: datetime, frontier: tuple[str, ...]
    ) -> Checkpoint:
        key_id = self._signer.key_id
        signature = self._signer.sign(checkpoint_body(seq, size, root, issued_at, key_id))
        if len(signature) != 64:
            raise SignerError("the signer returned a signature that is not 64 bytes (Ed25519)")
        return Checkpoint(
            seq=seq,
            size=size,
            root=root,
            issued_at=issued_at,
            key_id=key_id,
            signature=base64.b64encode(signature).decode(),
            frontier=frontier,
        )


def covering_checkpoint(checkpoints: Iterable[Checkpoint], index: int) -> Checkpoint | None:
    """The first (smallest) checkpoint whose tree includes leaf ``index``."""
    for checkpoint in checkpoints:
        if checkpoint.size > index:
            return checkpoint
    return None
