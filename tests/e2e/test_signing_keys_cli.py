"""``tellonce keys new`` and ``tellonce publish --key``: a program's key made, listed in the
directory, and used; what a publisher is told when its event would be refused for its
signature."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.e2e.conftest import run

pytestmark = pytest.mark.e2e

SHIPPED = Path(__file__).resolve().parents[2] / "hub" / "config" / "resources" / "directory.toml"
PROGRAM = "bc-vital-statistics"
DEATH = {
    "subject_id": "VS-2026-000042",
    "date_of_death": "2026-11-01",
    "province_of_death": "BC",
    "death_registration_number": "2026-59-000042",
    "informant_relationship": "SPOUSE",
}


def with_entry(tmp_path: Path, entry: str) -> Path:
    """The shipped directory with ``entry`` added to the program's table, as README says."""
    text = SHIPPED.read_text(encoding="utf-8")
    start = text.index(f'id = "{PROGRAM}"')
    end = text.index("[[programs]]", start)
    path = tmp_path / "directory.toml"
    path.write_text(text[:end] + entry + "\n" + text[end:], encoding="utf-8")
    return path


def publish(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = run(
        "publish",
        PROGRAM,
        "DeathReported",
        "--json",
        json.dumps(DEATH),
        "--dry-run",
        *args,
        env=env,
    )
    return result.returncode, result.stdout, result.stderr


def test_a_new_key_is_listed_and_signs_what_publish_sends(tmp_path: Path) -> None:
    """`keys new` writes a 0600 key file and prints its directory entry; with the entry in the
    directory, `publish --key` puts both signature headers on the event and passes the hub's
    check; without --key it is refused as unsigned (signatures are required by default) in one
    line saying how to make, list and give a key, and with another program's key as
    unknown_key; a second `keys new` on the same file exits 2 and
    leaves it as it was."""
    key = tmp_path / "vs.pem"
    made = run("keys", "new", PROGRAM, "--out", str(key))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert made.stdout.splitlines()[1] == "[[programs.keys]]"
    assert "PRIVATE" not in made.stdout + made.stderr
    env = {"TELLONCE_DIRECTORY_PATH": str(with_entry(tmp_path, made.stdout))}

    code, out, err = publish(env, "--key", str(key))
    assert code == 0, err
    headers = json.loads(out)["headers"]
    assert headers["ce_signaturekey"].startswith("ed25519:")
    assert len(headers["ce_signature"]) == 88  # 64 bytes in base64

    code, _, err = publish(env)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "(unsigned)" in err
    for step in ("'tellonce keys new PROGRAM --out FILE'", "TELLONCE_DIRECTORY_PATH", "--key"):
        assert step in err

    other = tmp_path / "other.pem"
    assert run("keys", "new", "bc-service-bc", "--out", str(other)).returncode == 0
    code, _, err = publish(env, "--key", str(other))
    assert code == 2
    assert "(unknown_key)" in err

    before = key.read_bytes()
    again = run("keys", "new", PROGRAM, "--out", str(key))
    assert again.returncode == 2
    assert "already exists" in again.stderr
    assert key.read_bytes() == before


def test_keys_new_json_entry_and_bad_requests_exit_2(tmp_path: Path) -> None:
    """--json prints the entry as one object with the validity asked for; an unknown program
    or a validity that ends before it starts exits 2 with one line and writes no file."""
    made = run(
        "keys",
        "new",
        PROGRAM,
        "--out",
        str(tmp_path / "a.pem"),
        "--json",
        "--valid-from",
        "2027-01-01T00:00:00Z",
        "--valid-to",
        "2028-01-01T00:00:00Z",
    )
    assert made.returncode == 0, made.stderr
    entry = json.loads(made.stdout)
    assert entry["program"] == PROGRAM
    assert (entry["valid_from"], entry["valid_to"]) == (
        "2027-01-01T00:00:00Z",
        "2028-01-01T00:00:00Z",
    )
    unknown = run("keys", "new", "no-such-program", "--out", str(tmp_path / "b.pem"))
    assert unknown.returncode == 2
    assert "unknown program" in unknown.stderr
    backwards = run(
        "keys",
        "new",
        PROGRAM,
        "--out",
        str(tmp_path / "c.pem"),
        "--valid-from",
        "2027-01-01T00:00:00Z",
        "--valid-to",
        "2026-01-01T00:00:00Z",
    )
    assert backwards.returncode == 2
    assert "--valid-to must come after" in backwards.stderr
    assert not (tmp_path / "b.pem").exists()
    assert not (tmp_path / "c.pem").exists()
