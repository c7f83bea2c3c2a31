"""Verifying the audit log: an intact log verifies, tampering is found and its position named.

The log is real: a few hundred leaves appended by ``AuditLog`` in batches, checkpoints issued by
``Notary`` under a small policy and signed with an Ed25519 key file. The property test at the
end applies well over 1,000 random mutations to the live store and to an exported bundle.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import io
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.adapters.memory import MemoryStore
from hub.adapters.signing import FileSigner, public_key_check
from hub.audit import merkle
from hub.audit.bundle import export_bundle
from hub.audit.log import (
    LEAF_KINDS,
    AuditLog,
    CheckpointPolicy,
    Notary,
    checkpoint_body,
    leaf_bytes,
    record_bytes,
)
from hub.audit.oversight import verify_store
from hub.audit.verification import Verdict
from hub.cli.audit import cmd_verify
from hub.config.settings import Settings
from hub.errors import TellonceError
from hub.model import AuditRecord, Checkpoint
from hub.ports import SignatureCheck
from tests.samples import write_signed_leaves

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
LEAVES = 200
POSITION = re.compile(r"(leaf|checkpoint) \d+|bundle")


@dataclass(frozen=True)
class Log:
    """A signed log in a memory store, and what a verifier trusts."""

    store: MemoryStore
    signer: FileSigner
    check: SignatureCheck
    key_id: str

    @property
    def audit(self) -> list[AuditRecord]:
        return list(self.store.audit_records())

    @property
    def checkpoints(self) -> list[Checkpoint]:
        return self.store.checkpoints()

    def sizes(self) -> list[int]:
        return [c.size for c in self.checkpoints]


def build_log(key: Path, *, leaves: int = LEAVES, every: int = 16, seed: int = 7) -> Log:
    """Batches of 1 to 9 leaves, a checkpoint when ``every`` are unsigned, all signed at the end."""
    store = MemoryStore()
    signer = FileSigner(key, create=True)
    notary = Notary(signer, CheckpointPolicy(every_leaves=every, every_seconds=3_600))
    write_signed_leaves(store, notary, T0, leaves=leaves, seed=seed)
    pem = signer.public_key_pem()
    return Log(store, signer, public_key_check(pem), signer.key_id)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    return build_log(tmp_path_factory.mktemp("log") / "audit.pem")


@pytest.fixture(scope="module")
def forger(tmp_path_factory: pytest.TempPathFactory) -> FileSigner:
    """Somebody else's Ed25519 key."""
    return FileSigner(tmp_path_factory.mktemp("forger") / "other.pem", create=True)


def tampered(
    log: Log, audit: list[AuditRecord] | None = None, checkpoints: list[Checkpoint] | None = None
) -> MemoryStore:
    """A store holding ``log`` with its leaves or checkpoints replaced, as an intruder would."""
    return log.store.tampered(audit=audit, checkpoints=checkpoints)


def verify(log: Log, store: MemoryStore) -> Verdict:
    return verify_store(store, log.check, log.key_id)


def where(log: Log, store: MemoryStore) -> str:
    """The position the verifier names; fails the test if the store verifies."""
    problem = verify(log, store).problem
    assert problem is not None, "the tampered store verified"
    return problem.position


def rehashed(record: AuditRecord, **changes: Any) -> AuditRecord:
    """``record`` changed and given the hash of its new bytes, as a careful intruder would."""
    changed = dataclasses.replace(record, **changes)
    return dataclasses.replace(changed, hash=merkle.leaf_hash(record_bytes(changed)).hex())


def other_hex(value: str, rng: random.Random) -> str:
    i = rng.randrange(len(value))
    return value[:i] + rng.choice("0123456789abcdef".replace(value[i], "")) + value[i + 1 :]


def relinked(records: list[AuditRecord], start: int, data: dict[str, Any]) -> list[AuditRecord]:
    """Leaves from ``start`` rewritten (first one's data replaced), renumbered and relinked."""
    builder = AuditLog(records[start - 1] if start else None)
    for n, record in enumerate(records[start:]):
        builder.append(record.kind, data if n == 0 else record.data, record.recorded_at)
    return records[:start] + builder.pending


def resigned(checkpoint: Checkpoint, signer: FileSigner, key_id: str | None = None) -> Checkpoint:
    """``checkpoint`` signed by ``signer``, naming ``key_id`` (default: the signer's own)."""
    key = key_id or signer.key_id
    c = checkpoint
    signature = signer.sign(checkpoint_body(c.seq, c.size, c.root, c.issued_at, key))
    return dataclasses.replace(c, key_id=key, signature=base64.b64encode(signature).decode())


# -- the intact log --------------------------------------------------------------------------


def test_intact_store_verifies(log: Log) -> None:
    """Every leaf, signature, root and consistency proof of the untouched store checks out."""
    verdict = verify(log, log.store)
    assert verdict.ok, verdict.problem
    assert (verdict.leaves, verdict.signed_size, verdict.unsigned) == (LEAVES, LEAVES, 0)
    assert verdict.checkpoints == len(log.checkpoints) >= 8
    assert verdict.roots == {c.seq: c.root for c in log.checkpoints}


def test_unsigned_newest_leaves_verify_and_are_counted(log: Log) -> None:
    """Leaves appended since the last checkpoint are checked by their links and reported."""
    store = tampered(log)
    with store.transaction() as tx:
        builder = AuditLog(tx.last_audit())
        for n in range(3):
            builder.append("rejected", {"reason": "bad_header", "n": n}, T0)
        builder.write(tx)
    verdict = verify(log, store)
    assert verdict.ok, verdict.problem
    assert (verdict.leaves, verdict.signed_size, verdict.unsigned) == (LEAVES + 3, LEAVES, 3)


def test_empty_log_verifies() -> None:
    """A hub that recorded nothing yet has a valid, empty log."""
    verdict = verify_store(MemoryStore(), lambda message, signature: False, None)
    assert verdict.ok
    assert (verdict.leaves, verdict.checkpoints) == (0, 0)


# -- leaves ----------------------------------------------------------------------------------

Edit = Callable[[AuditRecord], AuditRecord]
EDITS: dict[str, Edit] = {
    "data, hash kept": lambda r: dataclasses.replace(r, data={**r.data, "recipient": "esdc-cpp"}),
    "data, rehashed": lambda r: rehashed(r, data={**r.data, "recipient": "esdc-cpp"}),
    "kind, rehashed": lambda r: rehashed(
        r, kind="withheld" if r.kind != "withheld" else "disclosed"
    ),
    "time, rehashed": lambda r: rehashed(r, recorded_at=r.recorded_at - timedelta(days=1)),
    "link, rehashed": lambda r: rehashed(r, prev_hash="ab" * 32),
    "stored hash": lambda r: dataclasses.replace(r, hash="cd" * 32),
    "index": lambda r: dataclasses.replace(r, index=r.index + 1),
}
# Where in the log: the middle of a checkpoint, the last leaf a checkpoint covers, the first.
PLACES: dict[str, Callable[[Log], int]] = {
    "inside": lambda log: log.sizes()[3] + 2,
    "last-of-checkpoint": lambda log: log.sizes()[3] - 1,
    "first-after-checkpoint": lambda log: log.sizes()[3],
    "first-leaf": lambda log: 0,
    "last-leaf": lambda log: LEAVES - 1,
}


@pytest.mark.parametrize("place", PLACES.values(), ids=PLACES.keys())
@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_edited_leaf_is_named(log: Log, edit: Edit, place: Callable[[Log], int]) -> None:
    """Changing any field of leaf k, with or without fixing its hash, is reported as leaf k."""
    k = place(log)
    audit = log.audit
    audit[k] = edit(audit[k])
    assert where(log, tampered(log, audit)) == f"leaf {k}"


@pytest.mark.parametrize("k", [0, 50, LEAVES - 1])
def test_deleted_leaf_is_named(log: Log, k: int) -> None:
    """Removing leaf k is reported at leaf k, where it is missing."""
    audit = log.audit
    del audit[k]
    assert where(log, tampered(log, audit)) == f"leaf {k}"


def test_truncated_log_is_found_by_the_last_checkpoint(log: Log) -> None:
    """Cutting the newest leaves off is caught: the last checkpoint covers more leaves."""
    verdict = verify(log, tampered(log, log.audit[:-3]))
    assert verdict.problem is not None
    assert verdict.problem.position == f"leaf {LEAVES - 3}"
    assert "is missing" in verdict.problem.message


def test_swapped_leaves_are_named(log: Log) -> None:
    """Exchanging leaves 40 and 120 is reported at leaf 40."""
    audit = log.audit
    audit[40], audit[120] = audit[120], audit[40]
    assert where(log, tampered(log, audit)) == "leaf 40"


def test_inserted_copy_is_named(log: Log) -> None:
    """A copy of leaf 60 slipped in after it is reported at leaf 61."""
    audit = log.audit
    audit.insert(61, audit[60])
    assert where(log, tampered(log, audit)) == "leaf 61"


def test_rewritten_and_relinked_leaves_are_caught_by_the_signed_root(log: Log) -> None:
    """Relinked, rehashed leaves fail the next signed root, named from that checkpoint's first."""
    k = log.sizes()[4] + 5
    audit = relinked(log.audit, k, {"event": "bc-service-bc/forged"})
    verdict = verify(log, tampered(log, audit))
    assert verdict.problem is not None
    assert verdict.problem.position == f"leaf {log.sizes()[4]}"
    assert "checkpoint 6's signed root" in verdict.problem.message


# -- checkpoints -----------------------------------------------------------------------------

CheckpointEdit = Callable[[Checkpoint, Log], Checkpoint]
CHECKPOINT_EDITS: dict[str, CheckpointEdit] = {
    "root": lambda c, log: dataclasses.replace(c, root=merkle.EMPTY_ROOT.hex()),
    "size": lambda c, log: dataclasses.replace(c, size=c.size + 1),
    "time": lambda c, log: dataclasses.replace(c, issued_at=c.issued_at + timedelta(seconds=1)),
    "seq": lambda c, log: dataclasses.replace(c, seq=c.seq + 1),
    "key id": lambda c, log: dataclasses.replace(c, key_id="ed25519:0000000000000000"),
    "signature of another": lambda c, log: dataclasses.replace(
        c, signature=log.checkpoints[0].signature
    ),
    "signature not base64": lambda c, log: dataclasses.replace(c, signature="not base64!"),
}


@pytest.mark.parametrize("edit", CHECKPOINT_EDITS.values(), ids=CHECKPOINT_EDITS.keys())
def test_edited_checkpoint_is_named(log: Log, edit: CheckpointEdit) -> None:
    """Changing any signed field or the signature of checkpoint 3 is reported there."""
    checkpoints = log.checkpoints
    checkpoints[2] = edit(checkpoints[2], log)
    assert where(log, tampered(log, checkpoints=checkpoints)) == "checkpoint 3"


def test_non_canonical_signature_text_is_refused(log: Log) -> None:
    """A signature re-encoded with different unused base64 bits is an edit, not the original."""
    checkpoints = log.checkpoints
    original = checkpoints[2].signature
    assert original.endswith("==")
    digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = digits.index(original[-3])
    twin = original[:-3] + digits[last ^ 1] + "=="
    assert base64.b64decode(twin) == base64.b64decode(original)
    checkpoints[2] = dataclasses.replace(checkpoints[2], signature=twin)
    verdict = verify(log, tampered(log, checkpoints=checkpoints))
    assert verdict.problem is not None
    assert verdict.problem.position == "checkpoint 3"


def test_deleted_checkpoint_is_named(log: Log) -> None:
    """Removing checkpoint 3 is reported at position 3, which now holds checkpoint 4."""
    checkpoints = log.checkpoints
    del checkpoints[2]
    verdict = verify(log, tampered(log, checkpoints=checkpoints))
    assert verdict.problem is not None
    assert str(verdict.problem).startswith("checkpoint 3: found checkpoint number 4")


def test_reordered_checkpoints_are_named(log: Log) -> None:
    """Exchanging checkpoints 3 and 4 is reported at checkpoint 3."""
    checkpoints = log.checkpoints
    checkpoints[2], checkpoints[3] = checkpoints[3], checkpoints[2]
    assert where(log, tampered(log, checkpoints=checkpoints)) == "checkpoint 3"


def test_duplicated_checkpoint_is_named(log: Log) -> None:
    """A copy of checkpoint 3 after it is reported at checkpoint 4."""
    checkpoints = log.checkpoints
    checkpoints.insert(3, checkpoints[2])
    assert where(log, tampered(log, checkpoints=checkpoints)) == "checkpoint 4"


def test_checkpoint_forged_under_the_hub_key_id_is_named(log: Log, forger: FileSigner) -> None:
    """A checkpoint signed by another key while naming the hub's key fails its signature."""
    checkpoints = log.checkpoints
    checkpoints[2] = resigned(checkpoints[2], forger, key_id=log.key_id)
    verdict = verify(log, tampered(log, checkpoints=checkpoints))
    assert str(verdict.problem) == (
        "checkpoint 3: the signature does not verify under the trusted public key"
    )


def test_log_rewritten_and_resigned_with_another_key_fails(log: Log, forger: FileSigner) -> None:
    """Rewriting leaves and re-signing every checkpoint with another key is caught at once."""
    audit = relinked(log.audit, 10, {"event": "bc-service-bc/forged"})
    hashes = [bytes.fromhex(r.hash) for r in audit]
    checkpoints = [
        resigned(
            dataclasses.replace(c, root=merkle.root_from_leaf_hashes(hashes[: c.size]).hex()),
            forger,
        )
        for c in log.checkpoints
    ]
    forged = tampered(log, audit, checkpoints)
    assert verify_store(forged, public_key_check(forger.public_key_pem()), forger.key_id).ok
    verdict = verify(log, forged)
    assert verdict.problem is not None
    assert verdict.problem.position == "checkpoint 1"
    assert f"not the trusted key {log.key_id}" in verdict.problem.message


# -- the property: every mutation is detected --------------------------------------------------


def mutate_store(
    rng: random.Random, log: Log, forger: FileSigner
) -> tuple[str, list[AuditRecord], list[Checkpoint]]:
    """One random tampering of the stored leaves or checkpoints.

    Left out, because no verifier holding only the store can see them: appending well-formed
    leaves after the newest checkpoint (that is how the log grows) and removing the newest
    checkpoint (an older, valid state). ``frontier`` is an unsigned cache, not part of the log.
    """
    audit, checkpoints = log.audit, log.checkpoints
    n, m = len(audit), len(checkpoints)
    k = rng.randrange(n)
    j = rng.randrange(m)
    kind = rng.choice(STORE_MUTATIONS)
    if kind == "leaf field":
        r = audit[k]
        field = rng.choice(["index", "kind", "data", "recorded_at", "prev_hash", "hash"])
        change: dict[str, Any] = {
            "index": r.index + rng.choice([-2, -1, 1, 2, n]),
            "kind": rng.choice([x for x in (*LEAF_KINDS, "forged") if x != r.kind]),
            "data": {**r.data, "n": rng.random()},
            "recorded_at": r.recorded_at + timedelta(microseconds=rng.choice([-1, 1, 10**9])),
            "prev_hash": other_hex(r.prev_hash, rng),
            "hash": other_hex(r.hash, rng),
        }
        edit = dataclasses.replace if rng.random() < 0.5 or field == "hash" else rehashed
        audit[k] = edit(r, **{field: change[field]})
    elif kind == "leaf deleted":
        del audit[k]
    elif kind == "leaves swapped":
        i = rng.choice([x for x in range(n) if x != k])
        audit[i], audit[k] = audit[k], audit[i]
    elif kind == "leaf copied":
        audit.insert(rng.randrange(n + 1), audit[k])
    elif kind == "leaf moved":
        record = audit.pop(k)
        audit.insert(rng.choice([x for x in range(n) if x != k]), record)
    elif kind == "leaf forged":
        p = rng.randrange(n)  # not at the end: a new leaf there is how the log grows
        builder = AuditLog(audit[p - 1] if p else None)
        audit.insert(p, builder.append("disclosed", {"event": "forged"}, T0))
    elif kind == "leaves rewritten":
        audit = relinked(audit, k, {"event": "bc-service-bc/forged", "n": rng.random()})
    elif kind == "leaves truncated":
        audit = audit[: rng.randrange(n)]
    elif kind == "checkpoint field":
        c = checkpoints[j]
        field = rng.choice(["seq", "size", "root", "issued_at", "key_id", "signature"])
        signature = base64.b64decode(c.signature)
        new: dict[str, Any] = {
            "seq": c.seq + rng.choice([-1, 1, 2, m]),
            "size": c.size + rng.choice([-1, 1, 2]),
            "root": other_hex(c.root, rng),
            "issued_at": c.issued_at + timedelta(microseconds=rng.choice([-1, 1, 10**9])),
            "key_id": "ed25519:" + other_hex(c.key_id.removeprefix("ed25519:"), rng),
            "signature": rng.choice(
                [
                    base64.b64encode(bytes([signature[0] ^ 1]) + signature[1:]).decode(),
                    base64.b64encode(rng.randbytes(64)).decode(),
                    checkpoints[(j + 1) % m].signature,
                    c.signature[: rng.randrange(len(c.signature))],
                    c.signature[:-3] + ("A" if c.signature[-3] != "A" else "Q") + "==",
                ]
            ),
        }
        checkpoints[j] = dataclasses.replace(c, **{field: new[field]})
    elif kind == "checkpoint deleted":
        del checkpoints[rng.randrange(m - 1)]  # not the newest: see the docstring
    elif kind == "checkpoints swapped":
        i = rng.choice([x for x in range(m) if x != j])
        checkpoints[i], checkpoints[j] = checkpoints[j], checkpoints[i]
    elif kind == "checkpoint copied":
        checkpoints.insert(rng.randrange(m + 1), checkpoints[j])
    elif kind == "checkpoint forged":
        checkpoints[j] = resigned(checkpoints[j], forger, key_id=rng.choice([log.key_id, None]))
    else:
        raise AssertionError(kind)
    return kind, audit, checkpoints


STORE_MUTATIONS = (
    "leaf field",
    "leaf deleted",
    "leaves swapped",
    "leaf copied",
    "leaf moved",
    "leaf forged",
    "leaves rewritten",
    "leaves truncated",
    "checkpoint field",
    "checkpoint deleted",
    "checkpoints swapped",
    "checkpoint copied",
    "checkpoint forged",
)


def verify_bundle(path: Path, trusted: Path | None) -> tuple[bool, str | None]:
    """``tellonce audit verify BUNDLE [--public-key PEM] --json``: (verified, problem)."""
    args = argparse.Namespace(
        bundle=str(path), public_key=str(trusted) if trusted else None, json=True
    )
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = cmd_verify(args, Settings())
    except TellonceError as exc:  # e.g. the header's public key is no longer a key
        return False, f"bundle: {exc}"
    result = json.loads(out.getvalue())
    assert code == (0 if result["verified"] else 1)
    return result["verified"], result["problem"]


def mutate_bundle(rng: random.Random, original: bytes, log: Log) -> tuple[str, bytes]:
    """One random edit of the bundle file's bytes or lines.

    Bytes of the header line are not flipped: apart from its counts (edited below) the header
    is unsigned metadata, and the key a careful auditor relies on is the pinned one.
    """
    lines = original.split(b"\n")[:-1]  # the file ends with a newline
    header_end = len(lines[0]) + 1
    kind = rng.choice(BUNDLE_MUTATIONS)
    if kind in ("byte replaced", "bit flipped"):
        i = rng.randrange(header_end, len(original))
        old = original[i]
        new = rng.choice([b for b in range(256) if b != old]) if kind == "byte replaced" else None
        new = old ^ (1 << rng.randrange(8)) if new is None else new
        return kind, original[:i] + bytes([new]) + original[i + 1 :]
    if kind == "line deleted":
        del lines[rng.randrange(len(lines))]
    elif kind == "line copied":
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines))
    elif kind == "lines swapped":
        i, j = rng.sample(range(len(lines)), 2)
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "line inserted":
        after = json.loads(lines[-1])["i"] + 1  # well-formed, linked, but never signed
        link = merkle.leaf_hash(lines[-1]).hex()
        forged_leaf = leaf_bytes(after, "accepted", {"event": "forged"}, T0, link)
        junk = [b"", b" ", b"{}", b"null", b'{"i":0}', rng.randbytes(rng.randint(1, 40))]
        lines.insert(rng.randrange(1, len(lines) + 1), rng.choice([*junk, forged_leaf]))
    elif kind == "truncated":
        return kind, original[: rng.randrange(len(original) - 1)]  # not just the last newline
    elif kind == "data appended":
        return kind, original + rng.choice([b"\n", b" ", b"x", b"\n\n", b"{}\n", lines[-1]])
    elif kind == "header count":
        header = json.loads(lines[0])
        name = rng.choice(["leaves", "checkpoints"])
        header[name] += rng.choice([-2, -1, 1, 2, 1000])
        lines[0] = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    else:
        raise AssertionError(kind)
    return kind, b"\n".join(lines) + b"\n"


BUNDLE_MUTATIONS = (
    "byte replaced",
    "bit flipped",
    "line deleted",
    "line copied",
    "lines swapped",
    "line inserted",
    "truncated",
    "data appended",
    "header count",
)
STORE_ROUNDS = 700
BUNDLE_ROUNDS = 700


def test_every_random_mutation_of_store_and_bundle_is_detected(
    log: Log,
    forger: FileSigner,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """Over 1,000 random edits of the live store and of a bundle: each fails verification."""
    rng = random.Random(20250314)
    started = time.monotonic()
    detected: Counter[str] = Counter()
    missed: list[str] = []

    for _ in range(STORE_ROUNDS):
        kind, audit, checkpoints = mutate_store(rng, log, forger)
        if (audit, checkpoints) == (log.audit, log.checkpoints):
            continue  # nothing changed: not a mutation
        problem = verify(log, tampered(log, audit, checkpoints)).problem
        if problem is None:
            missed.append(f"store: {kind}")
        else:
            assert POSITION.fullmatch(problem.position), problem
            detected[f"store: {kind}"] += 1

    pristine = tmp_path / "audit.jsonl"
    with pristine.open("wb") as out:
        export_bundle(
            log.store,
            out,
            public_key_pem=log.signer.public_key_pem(),
            key_id=log.key_id,
            now=T0 + timedelta(days=1),
        )
    original = pristine.read_bytes()
    trusted = tmp_path / "hub.pem"
    trusted.write_text(log.signer.public_key_pem())
    assert verify_bundle(pristine, trusted) == (True, None)
    bundle = tmp_path / "tampered.jsonl"
    for _ in range(BUNDLE_ROUNDS):
        kind, edited = mutate_bundle(rng, original, log)
        if edited == original:
            continue
        bundle.write_bytes(edited)
        verified, found = verify_bundle(bundle, rng.choice([trusted, None]))
        if verified:
            at = next(
                (i for i, (a, b) in enumerate(zip(edited, original, strict=False)) if a != b), None
            )
            missed.append(f"bundle: {kind} (first changed byte {at}, {len(edited)} bytes)")
        else:
            assert found is not None
            assert POSITION.fullmatch(found.split(": ", 1)[0]), found
            detected[f"bundle: {kind}"] += 1

    total = sum(detected.values())
    record_property("mutations_detected", total)
    print(f"\n{total} mutations, all detected, in {time.monotonic() - started:.1f} s: {detected}")
    assert missed == []
    assert total >= 1_000
    assert len(detected) == len(STORE_MUTATIONS) + len(BUNDLE_MUTATIONS)
