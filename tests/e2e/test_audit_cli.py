"""`tellonce audit`: sign, export, verify, reconcile, prove, report, as a privacy officer would."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.adapters.signing import FileSigner
from hub.audit import merkle
from tests.e2e.conftest import run

pytestmark = pytest.mark.e2e

PERSON = "bc-service-bc:SBC-1001"  # PROGRAM:LOCAL_ID names the client without their person id


@dataclass(frozen=True)
class Audited:
    """A hub store with three leaves, all signed, exported, and the published public key."""

    env: dict[str, str]
    folder: Path
    bundle: Path
    public_key: Path


def hub_env(folder: Path) -> dict[str, str]:
    return {
        "TELLONCE_STORE__URL": f"sqlite:///{folder / 'hub.db'}",
        "TELLONCE_AUDIT__SIGNING_KEY": str(folder / "audit.pem"),
        "TELLONCE_LOG_LEVEL": "warning",
    }


def ok(*args: str, env: dict[str, str]) -> str:
    result = run(*args, env=env)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Audited:
    folder = tmp_path_factory.mktemp("hub")
    env = hub_env(folder)
    ok("consent", "link", "bc-service-bc", "SBC-1001", env=env)
    ok("consent", "link", "cra-individual", "CRA-1", env=env)
    ok("consent", "grant", PERSON, "cra-individual", "AddressChanged", env=env)
    assert ok("audit", "checkpoint", env=env).startswith("checkpoint 1: tree size 3, root ")
    bundle = folder / "audit.jsonl"
    assert "exported 3 leaves and 1 checkpoints" in ok("audit", "export", str(bundle), env=env)
    public_key = folder / "hub-public.pem"
    public_key.write_text(ok("audit", "public-key", env=env))
    return Audited(env, folder, bundle, public_key)


def test_exported_bundle_verifies_against_the_published_key(audited: Audited) -> None:
    """`audit verify BUNDLE --public-key PEM` checks the bundle offline and exits 0."""
    result = run("audit", "verify", str(audited.bundle), "--public-key", str(audited.public_key))
    assert result.returncode == 0, result.stderr
    assert "verified bundle" in result.stdout
    assert "3 leaves, 1 checkpoints" in result.stdout


@pytest.mark.parametrize("k", [1, 2], ids=["middle-leaf", "last-leaf"])
def test_edited_leaf_line_fails_and_names_the_leaf(
    audited: Audited, tmp_path: Path, k: int
) -> None:
    """Changing one leaf line of the bundle exits 1 and says which leaf was changed."""
    lines = audited.bundle.read_bytes().split(b"\n")
    leaf_line = 2 + k  # header, one checkpoint, then leaves 0, 1, 2
    leaf = json.loads(lines[leaf_line])
    assert leaf["i"] == k
    leaf["at"] = "2020-01-01T00:00:00+00:00"
    lines[leaf_line] = json.dumps(leaf, sort_keys=True, separators=(",", ":")).encode()
    edited = tmp_path / "edited.jsonl"
    edited.write_bytes(b"\n".join(lines))
    result = run("audit", "verify", str(edited), "--public-key", str(audited.public_key))
    assert result.returncode == 1
    assert result.stderr.startswith(f"NOT VERIFIED: bundle {edited}: leaf {k}: was changed")


def test_bundle_checked_against_another_key_fails(audited: Audited, tmp_path: Path) -> None:
    """A bundle verified against a key other than the hub's is refused."""
    other = tmp_path / "other.pem"
    created = run("audit", "keygen", "--path", str(other), env=audited.env)
    assert created.returncode == 0, created.stderr
    other_public = tmp_path / "other-public.pem"
    other_public.write_text(FileSigner(other).public_key_pem())
    result = run("audit", "verify", str(audited.bundle), "--public-key", str(other_public))
    assert result.returncode == 1
    assert "was made with another key than the one you trust" in result.stderr


def test_live_store_verifies(audited: Audited) -> None:
    """`audit verify` without a bundle checks the live store and reports it as JSON."""
    report = json.loads(ok("audit", "verify", "--json", env=audited.env))
    assert report["verified"] is True
    assert report["what"] == "the live store"
    assert (report["leaves"], report["checkpoints"], report["unsigned_leaves"]) == (3, 1, 0)
    assert report["problem"] is None


def test_reconcile_matches_leaves_with_links_and_consents(audited: Audited) -> None:
    """`audit reconcile --json` exits 0 with every tally equal, links and consents counted."""
    report = json.loads(ok("audit", "reconcile", "--json", env=audited.env))
    assert report["reconciled"] is True
    tallies = {t["fact"]: (t["leaves"], t["facts"]) for t in report["tallies"]}
    assert tallies["identity links"] == (2, 2)
    assert tallies["consents given"] == (1, 1)
    assert all(t["ok"] for t in report["tallies"])


def test_prove_prints_an_inclusion_proof_that_verifies(audited: Audited) -> None:
    """`audit prove 0` prints a JSON proof that checks against the signed root."""
    proof = json.loads(ok("audit", "prove", "0", env=audited.env))
    assert (proof["leaf_index"], proof["tree_size"], proof["checkpoint"]) == (0, 3, 1)
    merkle.verify_inclusion(
        0,
        proof["tree_size"],
        bytes.fromhex(proof["leaf_hash"]),
        [bytes.fromhex(h) for h in proof["path"]],
        bytes.fromhex(proof["root"]),
    )


def test_prove_of_a_leaf_not_signed_is_a_usage_error(audited: Audited) -> None:
    """Asking for a leaf no checkpoint covers exits 2 and says which leaves are covered."""
    result = run("audit", "prove", "3", env=audited.env)
    assert result.returncode == 2
    assert "leaf 3 is not covered by checkpoint 1 (leaves 0 to 2)" in result.stderr


def test_report_in_french_has_french_headings(audited: Audited) -> None:
    """`audit report --lang fr --format csv` writes its column headings in French."""
    out = ok(
        "audit", "report", "--person", PERSON, "--lang", "fr", "--format", "csv", env=audited.env
    )
    headings = out.splitlines()[0].split(",")
    assert headings[:3] == ["Date de la décision", "Type d'événement", "Événement"]
    assert "Indice de la feuille" in headings


def test_public_key_prints_a_pem(audited: Audited) -> None:
    """`audit public-key` prints the PEM to publish on stdout and the key id on stderr."""
    result = run("audit", "public-key", env=audited.env)
    assert result.returncode == 0
    lines = result.stdout.strip().splitlines()
    assert (lines[0], lines[-1]) == ("-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----")
    assert result.stderr.startswith("# key id ed25519:")


def test_keygen_refuses_to_overwrite_the_key(audited: Audited) -> None:
    """`audit keygen` over an existing key exits 2 and leaves the key as it was."""
    key = Path(audited.env["TELLONCE_AUDIT__SIGNING_KEY"])
    before = key.read_bytes()
    result = run("audit", "keygen", env=audited.env)
    assert result.returncode == 2
    assert "already exists; refusing to overwrite it" in result.stderr
    assert key.read_bytes() == before


def test_unsigned_leaves_are_left_out_of_the_export(tmp_path: Path) -> None:
    """Leaves after the last checkpoint are not exported, and export says how many."""
    env = hub_env(tmp_path)
    ok("consent", "link", "bc-service-bc", "SBC-1001", env=env)
    ok("audit", "checkpoint", env=env)
    ok("consent", "link", "cra-individual", "CRA-1", env=env)
    result = run("audit", "export", str(tmp_path / "b.jsonl"), env=env)
    assert result.returncode == 0
    assert "exported 1 leaves" in result.stdout
    assert "1 newer leaves are not signed yet" in result.stderr
    assert "1 newest leaves are not yet covered" in ok("audit", "verify", env=env)


def test_checkpoint_without_a_signing_key_fails_closed(tmp_path: Path) -> None:
    """With key creation off and no key file, `audit checkpoint` exits 1 and says to run keygen."""
    env = {**hub_env(tmp_path), "TELLONCE_AUDIT__CREATE_KEY": "false"}
    ok("consent", "link", "bc-service-bc", "SBC-1001", env=env)
    result = run("audit", "checkpoint", env=env)
    assert result.returncode == 1
    assert "tellonce audit keygen" in result.stderr
    assert not (tmp_path / "audit.pem").exists()


def test_keygen_creates_the_pseudonym_key_beside_the_signing_key(tmp_path: Path) -> None:
    """`audit keygen` makes both keys; `--pseudonym` adds a missing pseudonym key only, and
    refuses to replace one."""
    env = {**hub_env(tmp_path), "TELLONCE_AUDIT__CREATE_KEY": "false"}
    pseudonym_key = tmp_path / "audit.pseudonym-key"
    created = ok("audit", "keygen", env=env)
    assert f"created {pseudonym_key} (pseudonym key)" in created
    first = pseudonym_key.read_text()
    pseudonym_key.unlink()
    ok("audit", "keygen", "--pseudonym", env=env)
    assert pseudonym_key.read_text() != first  # a new one, the signing key left alone
    again = run("audit", "keygen", "--pseudonym", env=env)
    assert again.returncode == 2
    assert "already exists; refusing to overwrite it" in again.stderr


def test_pseudonym_look_up_needs_the_existing_key(tmp_path: Path) -> None:
    """`audit pseudonym` never creates the key: without it, exit 2 naming the setting; with it,
    the same id always gives the same `h:` hash."""
    env = hub_env(tmp_path)
    missing = run("audit", "pseudonym", "sbc-2026-000101", env=env)
    assert missing.returncode == 2
    assert "TELLONCE_AUDIT__PSEUDONYM_KEY" in missing.stderr
    assert not (tmp_path / "audit.pseudonym-key").exists()
    ok("audit", "keygen", env=env)
    first = ok("audit", "pseudonym", "sbc-2026-000101", env=env).strip()
    assert first.startswith("h:")
    assert len(first) == 2 + 64
    assert ok("audit", "pseudonym", "sbc-2026-000101", env=env).strip() == first
    named = ok("audit", "pseudonym", "sbc-2026-000101", "--source", "bc-service-bc", env=env)
    assert named.strip() == f"bc-service-bc/{first}"
