"""Consent terms, history and signed receipts from the command line, as a clerk uses them."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.adapters.signing import FileSigner, create_key
from tests.e2e.conftest import run

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(sqlite_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**sqlite_env, "TELLONCE_AUDIT__SIGNING_KEY": str(tmp_path / "hub-key.pem")}


@pytest.fixture
def person(env: dict[str, str]) -> str:
    linked = run("consent", "link", "bc-service-bc", "SBC-1", env=env)
    assert linked.returncode == 0, linked.stderr
    person_id = linked.stdout.strip()
    assert run("consent", "link", "bc-msp", "MSP-1", "--to", person_id, env=env).returncode == 0
    return person_id


def grant(env: dict[str, str], person: str, *extra: str) -> None:
    result = run(
        "consent", "grant", person, "bc-msp", "AddressChanged", "--channel", "online",
        "--actor", "client", *extra, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_receipt_in_force_then_withdrawn(env: dict[str, str], person: str, tmp_path: Path) -> None:
    """A granted receipt verifies (exit 0); after withdrawal it is authentic but not in force."""
    receipt = tmp_path / "receipt.jws"
    grant(env, person, "--expires", "30d", "--receipt", str(receipt))
    assert receipt.read_text().count(".") == 2

    ok = run("consent", "verify-receipt", str(receipt), env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "IN FORCE" in ok.stdout
    until = (datetime.now(UTC) + timedelta(days=30)).date()
    assert any(f"until {d:%Y-%m-%d}" in ok.stdout for d in (until, until - timedelta(days=1)))

    withdraw = run("consent", "withdraw", person, "bc-msp", "AddressChanged", env=env)
    assert withdraw.returncode == 0, withdraw.stderr
    late = run("consent", "verify-receipt", str(receipt), "--json", env=env)
    assert late.returncode == 1, late.stdout + late.stderr
    verdict = json.loads(late.stdout)
    assert (verdict["authentic"], verdict["in_force"]) == (True, False)
    assert f"withdrawn later on {datetime.now(UTC):%Y-%m-%d}" in verdict["detail"]
    assert verdict["event_types"] == {"AddressChanged": "withdrawn"}
    assert "person" not in verdict["receipt"]["consent"]


def test_withdrawal_receipt_is_printed_and_not_in_force(env: dict[str, str], person: str) -> None:
    """withdraw --print-receipt prints a token; verifying it says it records a withdrawal."""
    grant(env, person)
    withdraw = run(
        "consent", "withdraw", person, "bc-msp", "AddressChanged", "--print-receipt", env=env
    )
    assert withdraw.returncode == 0, withdraw.stderr
    token = withdraw.stdout.strip().splitlines()[-1]
    result = run("consent", "verify-receipt", token, env=env)
    assert result.returncode == 1
    assert "records a withdrawal" in result.stdout


def test_tampered_receipt_is_not_authentic(
    env: dict[str, str], person: str, tmp_path: Path
) -> None:
    """Changing the signed claims (here: the state) makes the receipt fail with exit 2."""
    receipt = tmp_path / "receipt.jws"
    grant(env, person, "--receipt", str(receipt))
    header, payload, signature = receipt.read_text().strip().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["consent"]["event_types"].append("DeathReported")
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    (tmp_path / "forged.jws").write_text(f"{header}.{forged}.{signature}")
    result = run("consent", "verify-receipt", str(tmp_path / "forged.jws"), env=env)
    assert result.returncode == 2
    assert "NOT AUTHENTIC" in result.stderr
    assert "signature does not verify" in result.stderr


def test_receipt_checked_against_another_key_is_not_authentic(
    env: dict[str, str], person: str, tmp_path: Path
) -> None:
    """--public-key of another hub: the receipt is refused naming both key ids."""
    receipt = tmp_path / "receipt.jws"
    grant(env, person, "--receipt", str(receipt))
    other = tmp_path / "other.pem"
    create_key(other)
    public = tmp_path / "other.pub.pem"
    public.write_text(FileSigner(other).public_key_pem())
    result = run("consent", "verify-receipt", str(receipt), "--public-key", str(public), env=env)
    assert result.returncode == 2
    assert "not by the key you gave" in result.stderr


def test_history_json_lists_every_revision_and_verifies(env: dict[str, str], person: str) -> None:
    """history --json shows terms, notice, expiry and hash links of each revision."""
    grant(env, person, "--expires", "2099-01-31", "--purpose", "benefit continuity")
    assert run("consent", "withdraw", person, "bc-msp", "AddressChanged", env=env).returncode == 0
    result = run("consent", "history", "bc-msp:MSP-1", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verified"] is True
    (chain,) = report["consents"]
    given, withdrawn = chain["revisions"]
    assert (given["state"], withdrawn["state"], chain["state_now"]) == (
        "given",
        "withdrawn",
        "withdrawn",
    )
    assert given["purpose"] == "benefit continuity"
    assert given["expires_at"] == "2099-01-31T00:00:00+00:00"
    assert given["notice_version"] == "2025-01"
    assert len(given["notice_hash"]) == 64
    assert withdrawn["prev_hash"] == given["hash"]
    text = run("consent", "history", person, env=env)
    assert "chain verifies" in text.stdout
    assert "MSP-1" not in text.stdout


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--expires", "2001-01-01"), "must be in the future"),
        (("--expires", "soon"), "neither a duration"),
        (("--notice", "2025-1"), "did you mean '2025-01'"),
    ],
)
def test_bad_grant_options_exit_2(
    env: dict[str, str], person: str, option: tuple[str, ...], message: str
) -> None:
    """A past or unreadable expiry, or an unknown notice, is a bad request that says why."""
    result = run("consent", "grant", person, "bc-msp", "AddressChanged", *option, env=env)
    assert result.returncode == 2
    assert message in result.stderr


def test_garbage_receipt_argument_exits_2(env: dict[str, str]) -> None:
    """Something that is neither a file nor a token is a bad request."""
    result = run("consent", "verify-receipt", "no-such-file", env=env)
    assert result.returncode == 2
    assert "neither a receipt file nor a receipt token" in result.stderr


def test_notices_lists_versions_with_hashes() -> None:
    """consent notices lists each version and its SHA-256, marking the default."""
    result = run("consent", "notices", "--json")
    assert result.returncode == 0, result.stderr
    listed = {n["version"]: n for n in json.loads(result.stdout)}
    assert listed["2025-01"]["latest"] is True
    assert len(listed["2024-06"]["sha256"]) == 64


def test_history_of_a_rewritten_revision_fails(
    env: dict[str, str], person: str, tmp_path: Path
) -> None:
    """A revision edited in the database breaks its chain: history says where and exits 1."""
    grant(env, person)
    assert run("consent", "withdraw", person, "bc-msp", "AddressChanged", env=env).returncode == 0
    # Raw SQL on purpose: the ports only append revisions; the edit is made behind them.
    with sqlite3.connect(tmp_path / "hub.db") as db:
        db.execute("UPDATE consent_revisions SET state = 'given' WHERE seq = 2")
    result = run("consent", "history", person, env=env)
    assert result.returncode == 1
    assert "CHAIN BROKEN at revision 2" in result.stdout
