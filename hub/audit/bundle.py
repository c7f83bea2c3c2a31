"""Audit bundles: the signed part of the log in one file an outsider can verify offline.

The file is JSON Lines, streamed both ways so 100,000s of leaves need no more memory than
their hashes:

1. a header: format, public key (PEM), key id, counts, export time;
2. one line per checkpoint, with the RFC 9162 consistency proof from the checkpoint before;
3. one line per leaf: exactly the leaf's canonical bytes, so its hash is the hash of the line.

Only leaves covered by the newest checkpoint are exported: an unsigned leaf proves nothing.
The header's public key lets anyone check the signatures; to be sure they are the hub's, pin
the published key (``tellonce audit verify --public-key``).
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from hub.audit.log import record_bytes
from hub.audit.merkle import Tree
from hub.audit.verification import Finding, LeafInput, Verdict, check_checkpoints, verify_log
from hub.model import Checkpoint
from hub.ports import SignatureCheck, Store

FORMAT = "tellonce-audit-bundle/v1"


@dataclass(frozen=True, slots=True)
class ExportSummary:
    leaves: int
    checkpoints: int
    unsigned: int  # leaves after the newest checkpoint, left out


def export_bundle(
    store: Store, out: IO[bytes], *, public_key_pem: str, key_id: str, now: datetime
) -> ExportSummary:
    checkpoints = store.checkpoints()
    size = checkpoints[-1].size if checkpoints else 0
    tree = Tree(store.leaf_hashes(size))
    header = {
        "format": FORMAT,
        "key_id": key_id,
        "public_key": public_key_pem,
        "leaves": size,
        "checkpoints": len(checkpoints),
        "exported_at": now.isoformat(),
    }
    out.write(_line(header))
    previous: Checkpoint | None = None
    for checkpoint in checkpoints:
        proof = tree.consistency_proof(previous.size, checkpoint.size) if previous else []
        out.write(_checkpoint_line(checkpoint, proof))
        previous = checkpoint
    total = 0
    for record in store.audit_records(0, size):
        out.write(record_bytes(record) + b"\n")
        total += 1
    unsigned = sum(1 for _ in store.audit_records(size))
    return ExportSummary(leaves=total, checkpoints=len(checkpoints), unsigned=unsigned)


def checkpoint_json(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "seq": checkpoint.seq,
        "size": checkpoint.size,
        "root": checkpoint.root,
        "time": checkpoint.issued_at.isoformat(),
        "key": checkpoint.key_id,
        "signature": checkpoint.signature,
    }


def checkpoint_from_json(value: Any) -> Checkpoint:
    """Raises ValueError/KeyError/TypeError on anything that is not a checkpoint."""
    return Checkpoint(
        seq=_int(value["seq"]),
        size=_int(value["size"]),
        root=_hex64(value["root"]),
        issued_at=datetime.fromisoformat(value["time"]),
        key_id=str(value["key"]),
        signature=str(value["signature"]),
    )


class BundleReader:
    """Reads a bundle file; ``problem`` is set when its framing is already wrong."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header: dict[str, Any] = {}
        self.checkpoints: list[Checkpoint] = []
        self.consistency: list[list[bytes]] = []
        self.problem: Finding | None = None
        self._leaves_at = 0
        self._read_head()

    def _read_head(self) -> None:
        with self.path.open("rb") as f:
            try:
                header = json.loads(f.readline())
                if not isinstance(header, dict) or header.get("format") != FORMAT:
                    raise ValueError
                count = _int(header["checkpoints"])
                _int(header["leaves"])
                str(header["public_key"])
            except (ValueError, KeyError, TypeError):
                self.problem = Finding("bundle", f"the first line is not a {FORMAT} header")
                return
            self.header = header
            for position in range(1, count + 1):
                line = f.readline()
                try:
                    item = json.loads(line)
                    checkpoint = checkpoint_from_json(item["checkpoint"])
                    proof = [_unhex(h) for h in item["consistency"]]
                    # Only the exporter's exact bytes: other spellings of the same values
                    # (hex case, time zone, spacing, base64 padding bits) are edits too.
                    if line != _checkpoint_line(checkpoint, proof):
                        raise ValueError("not in canonical form")
                except (ValueError, KeyError, TypeError, binascii.Error):
                    self.problem = (
                        Finding(
                            "bundle",
                            f"the header announces {count} checkpoints but only "
                            f"{position - 1} follow",
                        )
                        if _is_leaf(line)
                        else Finding(
                            f"checkpoint {position}",
                            "is not a well-formed checkpoint line (or checkpoints were removed)",
                        )
                    )
                    return
                self.checkpoints.append(checkpoint)
                self.consistency.append(proof)
            self._leaves_at = f.tell()
            if _is_checkpoint(f.readline()):
                self.problem = Finding(
                    "bundle", f"the header announces {count} checkpoints but more follow"
                )

    @property
    def public_key_pem(self) -> str:
        return str(self.header.get("public_key", ""))

    def leaves(self) -> Iterator[LeafInput]:
        with self.path.open("rb") as f:
            f.seek(self._leaves_at)
            for line in f:
                yield LeafInput(line.rstrip(b"\n"))

    def count_problem(self, leaves_seen: int) -> Finding | None:
        """The header's counts against what the file held."""
        expected = _int(self.header["leaves"])
        if leaves_seen != expected:
            return Finding(
                "bundle", f"the header announces {expected} leaves but {leaves_seen} follow"
            )
        return None


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _checkpoint_line(checkpoint: Checkpoint, proof: list[bytes]) -> bytes:
    return _line({"checkpoint": checkpoint_json(checkpoint), "consistency": _hex(proof)})


def _is_leaf(line: bytes) -> bool:
    return _is_object_with(line, "i")


def _is_checkpoint(line: bytes) -> bool:
    return _is_object_with(line, "checkpoint")


def _is_object_with(line: bytes, key: str) -> bool:
    try:
        value = json.loads(line)
    except ValueError:
        return False
    return isinstance(value, dict) and key in value


def _hex(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def _unhex(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError("not a hex string")
    return bytes.fromhex(value)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("not a count")
    return value


def _hex64(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 64:
        raise ValueError("not a SHA-256 hex digest")
    bytes.fromhex(value)
    return value


def verify_bundle(
    path: Path,
    trusted_pem: str | None,
    checker: Callable[[str], SignatureCheck],
    key_id_of: Callable[[str], str],
) -> tuple[Verdict, str]:
    """Verify a bundle file against ``trusted_pem`` (or, failing that, the key it carries).

    ``checker`` and ``key_id_of`` turn a PEM public key into a signature check and a key id;
    they come from the signing adapter, which the core does not import. Returns the verdict
    and the PEM actually used.
    """
    reader = BundleReader(path)
    pem = trusted_pem or reader.public_key_pem
    if reader.problem is not None:
        # The checkpoints read before the framing broke are checked first, so a removed
        # checkpoint is named where it is missing rather than where the lines ran out.
        earlier = (
            check_checkpoints(reader.checkpoints, checker(pem), key_id_of(pem))
            if reader.checkpoints
            else None
        )
        return Verdict(problem=earlier or reader.problem), pem
    if trusted_pem and reader.header.get("key_id") != key_id_of(trusted_pem):
        return Verdict(
            problem=Finding("bundle", "was made with another key than the one you trust")
        ), pem
    if not trusted_pem and reader.header.get("key_id") != key_id_of(pem):
        return Verdict(
            problem=Finding("bundle", "its header's key id does not match its public key")
        ), pem
    seen = 0

    def counted() -> Iterator[LeafInput]:
        nonlocal seen
        for leaf in reader.leaves():
            seen += 1
            yield leaf

    verdict = verify_log(
        counted(),
        reader.checkpoints,
        checker(pem),
        key_id=key_id_of(pem),
        consistency=[[], *reader.consistency[1:]],
        allow_unsigned_tail=False,
    )
    if verdict.ok:
        verdict.problem = reader.count_problem(seen)
    return verdict, pem
