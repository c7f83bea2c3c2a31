"""Audit bundles: what export writes, and what ``tellonce audit verify BUNDLE`` finds in them.

Bundles are verified the way the command does it (``cmd_verify`` with ``--json``), against the
hub's pinned public key unless a test says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.adapters.memory import MemoryStore
from hub.adapters.signing import FileSigner
from hub.audit import merkle
from hub.audit.bundle import FORMAT, BundleReader, ExportSummary, export_bundle
from hub.audit.log import AuditLog, CheckpointPolicy, Notary, leaf_bytes, record_bytes
from hub.cli.audit import cmd_verify
from hub.config.settings import Settings
from tests.samples import write_signed_leaves

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
LEAVES = 200


@dataclass(frozen=True)
class Exported:
    store: MemoryStore
    signer: FileSigner
    bundle: bytes
    summary: ExportSummary
    sizes: list[int]  # checkpoint sizes, oldest first

    @property
    def lines(self) -> list[bytes]:
        """The bundle's lines without their newlines: header, checkpoints, leaves."""
        return self.bundle.split(b"\n")[:-1]

    def leaf_line(self, index: int) -> int:
        return 1 + len(self.sizes) + index


def signed_log(key: Path, *, leaves: int = LEAVES, unsigned: int = 0, seed: int = 7) -> MemoryStore:
    """Batches of 1 to 9 leaves, checkpoints every ~16, all signed; then ``unsigned`` more."""
    store = MemoryStore()
    notary = Notary(FileSigner(key, create=True), CheckpointPolicy(16, 3_600))
    at = write_signed_leaves(store, notary, T0, leaves=leaves, seed=seed)
    with store.transaction() as tx:
        log = AuditLog(tx.last_audit())
        for n in range(unsigned):
            log.append("rejected", {"reason": "bad_header", "n": n}, at)
        log.write(tx)
    return store


def export(store: MemoryStore, key: Path) -> Exported:
    signer = FileSigner(key)
    out = io.BytesIO()
    summary = export_bundle(
        store,
        out,
        public_key_pem=signer.public_key_pem(),
        key_id=signer.key_id,
        now=T0 + timedelta(days=1),
    )
    sizes = [c.size for c in store.checkpoints()]
    return Exported(store, signer, out.getvalue(), summary, sizes)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    key = tmp_path_factory.mktemp("hub") / "audit.pem"
    return export(signed_log(key, unsigned=4), key)


@pytest.fixture
def trusted(tmp_path: Path, exported: Exported) -> Path:
    """The hub's published public key, as an auditor keeps it."""
    path = tmp_path / "hub.pem"
    path.write_text(exported.signer.public_key_pem())
    return path


def verify(tmp_path: Path, content: bytes, trusted: Path | None) -> tuple[bool, str | None]:
    """Write ``content`` as a bundle and verify it: (verified, "position: message")."""
    path = tmp_path / "audit.jsonl"
    path.write_bytes(content)
    args = argparse.Namespace(
        bundle=str(path), public_key=str(trusted) if trusted else None, json=True
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cmd_verify(args, Settings())
    result = json.loads(out.getvalue())
    assert code == (0 if result["verified"] else 1)
    return result["verified"], result["problem"]


def problem(tmp_path: Path, lines: list[bytes], trusted: Path | None) -> str:
    verified, found = verify(tmp_path, b"\n".join(lines) + b"\n", trusted)
    assert not verified, "the edited bundle verified"
    assert found is not None
    return found


def canonical(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


# -- export ----------------------------------------------------------------------------------


def test_export_writes_header_checkpoints_and_signed_leaves(exported: Exported) -> None:
    """Header with key and counts, one line per checkpoint, then each signed leaf's bytes."""
    lines = exported.lines
    header = json.loads(lines[0])
    assert header["format"] == FORMAT
    assert header["key_id"] == exported.signer.key_id
    assert header["public_key"] == exported.signer.public_key_pem()
    assert (header["leaves"], header["checkpoints"]) == (LEAVES, len(exported.sizes))
    assert exported.summary == ExportSummary(
        leaves=LEAVES, checkpoints=len(exported.sizes), unsigned=4
    )
    checkpoints = exported.store.checkpoints()
    for line, checkpoint in zip(lines[1:], checkpoints, strict=False):
        assert json.loads(line)["checkpoint"]["root"] == checkpoint.root
    records = list(exported.store.audit_records())
    leaf_lines = lines[exported.leaf_line(0) :]
    assert leaf_lines == [record_bytes(r) for r in records[:LEAVES]]  # unsigned ones left out
    assert [merkle.leaf_hash(line).hex() for line in leaf_lines] == [
        r.hash for r in records[:LEAVES]
    ]


def test_consistency_proofs_link_consecutive_checkpoints(exported: Exported) -> None:
    """Each checkpoint line carries the RFC 9162 proof that it extends the one before."""
    checkpoints = exported.store.checkpoints()
    proofs = [json.loads(line)["consistency"] for line in exported.lines[1 : 1 + len(checkpoints)]]
    assert proofs[0] == []
    for old, new, proof in zip(checkpoints, checkpoints[1:], proofs[1:], strict=False):
        merkle.verify_consistency(
            old.size,
            new.size,
            bytes.fromhex(old.root),
            bytes.fromhex(new.root),
            [bytes.fromhex(h) for h in proof],
        )


def test_bundle_reader_reads_what_export_wrote(tmp_path: Path, exported: Exported) -> None:
    """The reader gets back the checkpoints, their proofs and every leaf line, in order."""
    path = tmp_path / "audit.jsonl"
    path.write_bytes(exported.bundle)
    reader = BundleReader(path)
    assert reader.problem is None
    assert reader.public_key_pem == exported.signer.public_key_pem()
    assert [(c.seq, c.size, c.root) for c in reader.checkpoints] == [
        (c.seq, c.size, c.root) for c in exported.store.checkpoints()
    ]
    assert [leaf.data for leaf in reader.leaves()] == exported.lines[exported.leaf_line(0) :]


def test_empty_log_exports_a_bundle_that_verifies(tmp_path: Path) -> None:
    """A hub with no leaves yet exports a header only, and that verifies."""
    key = tmp_path / "audit.pem"
    FileSigner(key, create=True)
    empty = export(MemoryStore(), key)
    assert empty.bundle.count(b"\n") == 1
    assert verify(tmp_path, empty.bundle, None) == (True, None)


# -- verification of an intact bundle --------------------------------------------------------


def test_intact_bundle_verifies_against_the_pinned_key(
    tmp_path: Path, exported: Exported, trusted: Path
) -> None:
    """The exported bundle verifies with the hub's published key, and with its own header key."""
    assert verify(tmp_path, exported.bundle, trusted) == (True, None)
    assert verify(tmp_path, exported.bundle, None) == (True, None)


def test_bundle_of_another_key_fails_against_the_pinned_key(
    tmp_path: Path, exported: Exported, trusted: Path
) -> None:
    """A whole log re-signed with another key verifies only against that key, not the hub's."""
    key = tmp_path / "forger.pem"
    forged = export(signed_log(key, seed=8), key)
    assert verify(tmp_path, forged.bundle, None) == (True, None)
    assert verify(tmp_path, forged.bundle, trusted) == (
        False,
        "bundle: was made with another key than the one you trust",
    )


# -- leaf lines ------------------------------------------------------------------------------

Place = Callable[[Exported], int]
PLACES: dict[str, Place] = {
    "inside": lambda e: e.sizes[3] + 2,
    "last-of-checkpoint": lambda e: e.sizes[3] - 1,
    "first-after-checkpoint": lambda e: e.sizes[3],
    "first-leaf": lambda e: 0,
    "last-leaf": lambda e: LEAVES - 1,
}
LeafEdit = Callable[[dict[str, Any]], None]
LEAF_EDITS: dict[str, LeafEdit] = {
    "data": lambda leaf: leaf["data"].update(recipient="esdc-cpp"),
    "kind": lambda leaf: leaf.update(kind="withheld" if leaf["kind"] != "withheld" else "rejected"),
    "time": lambda leaf: leaf.update(at="2025-01-01T00:00:00+00:00"),
    "link": lambda leaf: leaf.update(prev="ab" * 32),
}


@pytest.mark.parametrize("place", PLACES.values(), ids=PLACES.keys())
@pytest.mark.parametrize("edit", LEAF_EDITS.values(), ids=LEAF_EDITS.keys())
def test_edited_leaf_line_is_named(
    tmp_path: Path, exported: Exported, trusted: Path, edit: LeafEdit, place: Place
) -> None:
    """Editing leaf k's line, and keeping it well-formed JSON, is reported as leaf k."""
    k = place(exported)
    lines = exported.lines
    leaf = json.loads(lines[exported.leaf_line(k)])
    edit(leaf)
    lines[exported.leaf_line(k)] = canonical(leaf)
    assert problem(tmp_path, lines, trusted).startswith(f"leaf {k}: was changed")


def test_byte_changed_in_a_leaf_line_is_named(
    tmp_path: Path, exported: Exported, trusted: Path
) -> None:
    """Even a space added inside leaf 30's line changes its hash: reported as leaf 30."""
    lines = exported.lines
    lines[exported.leaf_line(30)] = lines[exported.leaf_line(30)].replace(b'":', b'": ', 1)
    assert problem(tmp_path, lines, trusted).startswith("leaf 30: was changed")


@pytest.mark.parametrize("k", [0, 77, LEAVES - 1])
def test_deleted_leaf_line_is_named(
    tmp_path: Path, exported: Exported, trusted: Path, k: int
) -> None:
    """Removing leaf k's line is reported at leaf k."""
    lines = exported.lines
    del lines[exported.leaf_line(k)]
    assert problem(tmp_path, lines, trusted).startswith(f"leaf {k}: ")


def test_swapped_leaf_lines_are_named(tmp_path: Path, exported: Exported, trusted: Path) -> None:
    """Exchanging the lines of leaves 12 and 13 is reported at leaf 12."""
    lines = exported.lines
    a, b = exported.leaf_line(12), exported.leaf_line(13)
    lines[a], lines[b] = lines[b], lines[a]
    assert problem(tmp_path, lines, trusted).startswith("leaf 12: holds leaf number 13")


def test_inserted_copy_of_a_leaf_line_is_named(
    tmp_path: Path, exported: Exported, trusted: Path
) -> None:
    """A copy of leaf 90's line after it is reported at leaf 91."""
    lines = exported.lines
    lines.insert(exported.leaf_line(91), lines[exported.leaf_line(90)])
    assert problem(tmp_path, lines, trusted).startswith("leaf 91: holds leaf number 90")


def test_truncated_last_leaf_is_named(tmp_path: Path, exported: Exported, trusted: Path) -> None:
    """A bundle cut inside or before its last line is reported at that last leaf."""
    cut_inside = exported.bundle[:-20]
    found = verify(tmp_path, cut_inside, trusted)
    assert found == (False, f"leaf {LEAVES - 1}: is not a well-formed leaf (index, kind, prev)")
    cut_line = exported.bundle[: -len(exported.lines[-1]) - 1]
    verified, message = verify(tmp_path, cut_line, trusted)
    assert not verified
    assert message is not None
    assert message.startswith(f"leaf {LEAVES - 1}: is missing")


@pytest.mark.parametrize("extra", [b"\n", b"{}\n", b"trailing"], ids=["blank", "object", "text"])
def test_trailing_data_is_named(
    tmp_path: Path, exported: Exported, trusted: Path, extra: bytes
) -> None:
    """Anything after the last leaf is reported at the leaf position it would take."""
    verified, message = verify(tmp_path, exported.bundle + extra, trusted)
    assert not verified
    assert message == f"leaf {LEAVES}: is not a well-formed leaf (index, kind, prev)"


def test_appended_well_linked_leaf_is_refused(
    tmp_path: Path, exported: Exported, trusted: Path
) -> None:
    """A forged leaf with the right index and link still fails: no checkpoint signs it."""
    last = exported.lines[-1]
    forged = leaf_bytes(LEAVES, "accepted", {"event": "forged"}, T0, merkle.leaf_hash(last).hex())
    assert verify(tmp_path, exported.bundle + forged + b"\n", trusted) == (
        False,
        f"leaf {LEAVES}: is not covered by any checkpoint: a bundle holds only signed leaves",
    )


# -- header ----------------------------------------------------------------------------------


def test_header_leaf_count_must_match(tmp_path: Path, exported: Exported, trusted: Path) -> None:
    """A header announcing more or fewer leaves than follow is refused, naming the bundle."""
    for count in (LEAVES + 1, LEAVES - 1):
        lines = exported.lines
        header = json.loads(lines[0])
        header["leaves"] = count
        lines[0] = canonical(header)
        assert problem(tmp_path, lines, trusted) == (
            f"bundle: the header announces {count} leaves but {LEAVES} follow"
        )


def test_header_checkpoint_count_must_match(
    tmp_path: Path, exported: Exported, trusted: Path
) -> None:
    """A header announcing more or fewer checkpoints than follow is refused, naming the bundle."""
    n = len(exported.sizes)
    for count, says in ((n + 1, f"only {n} follow"), (n - 1, "more follow")):
        lines = exported.lines
        header = json.loads(lines[0])
        header["checkpoints"] = count
        lines[0] = canonical(header)
        assert problem(tmp_path, lines, trusted) == (
            f"bundle: the header announces {count} checkpoints but {says}"
        )


def test_file_without_header_is_not_a_bundle(
    tmp_path: Path, exported: Exported, trusted: Path
) -> None:
    """A file whose first line is not a bundle header is refused as a whole."""
    assert problem(tmp_path, exported.lines[1:], trusted) == (
        f"bundle: the first line is not a {FORMAT} header"
    )


# -- checkpoint lines ------------------------------------------------------------------------


def edited_checkpoint(exported: Exported, seq: int, **changes: Any) -> list[bytes]:
    lines = exported.lines
    item = json.loads(lines[seq])
    item["checkpoint"].update(changes)
    lines[seq] = canonical(item)
    return lines


CHECKPOINT_EDITS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "root": lambda c: {"root": merkle.EMPTY_ROOT.hex()},
    "size": lambda c: {"size": c["size"] - 1},
    "time": lambda c: {"time": "2025-03-14T12:00:00+00:00"},
    "signature": lambda c: {"signature": c["signature"][::-1]},
    "key": lambda c: {"key": "ed25519:0000000000000000"},
}


@pytest.mark.parametrize("edit", CHECKPOINT_EDITS.values(), ids=CHECKPOINT_EDITS.keys())
def test_edited_checkpoint_line_is_named(
    tmp_path: Path, exported: Exported, trusted: Path, edit: Callable[[dict[str, Any]], Any]
) -> None:
    """Changing a signed field or the signature of checkpoint 3 is reported at checkpoint 3."""
    current = json.loads(exported.lines[3])["checkpoint"]
    lines = edited_checkpoint(exported, 3, **edit(current))
    assert problem(tmp_path, lines, trusted).startswith("checkpoint 3: ")


def upper_case_proof(line: bytes) -> bytes:
    proof = json.loads(line)["consistency"][0].encode()
    return line.replace(proof, proof.upper())


SPELLINGS: dict[str, Callable[[bytes], bytes]] = {
    "upper-case proof hex": upper_case_proof,
    "other time zone spelling": lambda line: line.replace(b'+00:00"', b'-00:00"'),
    "spaces": lambda line: line.replace(b'","', b'", "'),
    "key order": lambda line: json.dumps(
        dict(reversed(json.loads(line).items())), separators=(",", ":")
    ).encode(),
}


@pytest.mark.parametrize("spell", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_respelled_checkpoint_line_is_named(
    tmp_path: Path, exported: Exported, trusted: Path, spell: Callable[[bytes], bytes]
) -> None:
    """The same values written differently are an edit too: only the exported bytes verify."""
    lines = exported.lines
    lines[3] = spell(lines[3])
    assert lines[3] != exported.lines[3]
    assert problem(tmp_path, lines, trusted) == (
        "checkpoint 3: is not a well-formed checkpoint line (or checkpoints were removed)"
    )


def test_edited_consistency_proof_is_named(
    tmp_path: Path, exported: Exported, trusted: Path
) -> None:
    """A consistency proof that no longer links checkpoint 3 to 2 is reported at checkpoint 3."""
    lines = exported.lines
    item = json.loads(lines[3])
    item["consistency"][0] = "00" * 32
    lines[3] = canonical(item)
    assert problem(tmp_path, lines, trusted).startswith(
        "checkpoint 3: is not consistent with checkpoint 2"
    )


def test_deleted_checkpoint_line_is_named(
    tmp_path: Path, exported: Exported, trusted: Path
) -> None:
    """Removing checkpoint 3's line is reported at checkpoint 3, which now holds number 4."""
    lines = exported.lines
    del lines[3]
    assert problem(tmp_path, lines, trusted).startswith(
        "checkpoint 3: found checkpoint number 4 here"
    )


def test_deleted_last_checkpoint_line_is_named(
    tmp_path: Path, exported: Exported, trusted: Path
) -> None:
    """Removing the newest checkpoint's line leaves fewer checkpoints than the header says."""
    n = len(exported.sizes)
    lines = exported.lines
    del lines[n]
    assert problem(tmp_path, lines, trusted) == (
        f"bundle: the header announces {n} checkpoints but only {n - 1} follow"
    )


def test_reordered_checkpoint_lines_are_named(
    tmp_path: Path, exported: Exported, trusted: Path
) -> None:
    """Exchanging the lines of checkpoints 4 and 5 is reported at checkpoint 4."""
    lines = exported.lines
    lines[4], lines[5] = lines[5], lines[4]
    assert problem(tmp_path, lines, trusted).startswith("checkpoint 4: found checkpoint number 5")
