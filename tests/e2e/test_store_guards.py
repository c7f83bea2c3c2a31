"""Guards around the store a command uses: commands that only read never create or migrate a
database, and a TELLONCE_* variable that names no setting is refused instead of ignored."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import run
from tests.integration.conftest import require_postgres

pytestmark = pytest.mark.e2e


READ_ONLY = [
    ("audit", "report"),
    ("audit", "verify"),
    ("audit", "reconcile"),
    ("audit", "prove", "0"),
    ("audit", "export", "bundle.jsonl"),
    ("connector", "status"),
    ("dlq", "list", "bc-msp"),
    ("consent", "show", "bc-msp:MSP-1"),
    ("consent", "history", "bc-msp:MSP-1"),
]
IDS = ["-".join(args[:2]) for args in READ_ONLY]


def _env(store_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "TELLONCE_STORE__URL": store_url,
        "TELLONCE_AUDIT__SIGNING_KEY": str(tmp_path / "audit-key.pem"),
        # Never contacted: the missing store is reported first.
        "TELLONCE_BROKER__BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "TELLONCE_LOG_LEVEL": "warning",
    }


@pytest.mark.parametrize("args", READ_ONLY, ids=IDS)
def test_read_only_command_on_a_missing_sqlite_file_exits_2_and_creates_nothing(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """A read-only command on a missing SQLite file exits 2 naming TELLONCE_STORE__URL, and the
    file (and the signing key) are still missing afterwards."""
    database = tmp_path / "typo.db"
    result = run(*args, env=_env(f"sqlite:///{database}", tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "TELLONCE_STORE__URL" in result.stderr
    assert "tellonce db upgrade" in result.stderr
    assert "Traceback" not in result.stderr
    assert not database.exists()
    assert not (tmp_path / "audit-key.pem").exists()


def test_read_only_command_on_an_empty_file_does_not_migrate_it(tmp_path: Path) -> None:
    """A database without tellonce's tables is reported, not migrated: the file stays empty."""
    database = tmp_path / "empty.db"
    database.touch()
    result = run("audit", "reconcile", env=_env(f"sqlite:///{database}", tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "holds no tellonce tables" in result.stderr
    assert "tellonce db upgrade" in result.stderr
    assert database.stat().st_size == 0


def test_read_only_command_reads_a_store_the_hub_created(tmp_path: Path) -> None:
    """Once 'tellonce db upgrade' made the database, the same command reads it (exit 0)."""
    env = _env(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path)
    assert run("db", "upgrade", env=env).returncode == 0
    result = run("audit", "reconcile", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reconciled" in result.stdout


@pytest.fixture
def missing_postgres_database() -> str:
    """The URL of a database that does not exist on the PostgreSQL server."""
    require_postgres()
    return f"postgresql://postgres:s3cret@127.0.0.1:5432/tellonce_missing_{uuid.uuid4().hex[:12]}"


@pytest.mark.postgres
@pytest.mark.parametrize("args", READ_ONLY, ids=IDS)
def test_read_only_command_on_a_missing_postgres_database_exits_2(
    missing_postgres_database: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """A missing PostgreSQL database exits 2 naming TELLONCE_STORE__URL, never its password."""
    result = run(*args, env=_env(missing_postgres_database, tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "TELLONCE_STORE__URL" in result.stderr
    assert "does not exist" in result.stderr
    assert "s3cret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_misspelt_setting_is_refused_with_the_right_name(tmp_path: Path) -> None:
    """TELLONCE_STORE_URL (one underscore) exits 2 suggesting TELLONCE_STORE__URL; its value,
    which may hold a password, is not echoed."""
    env = {
        "TELLONCE_STORE_URL": "postgresql://hub:s3cret@db.example/tellonce",
        "TELLONCE_AUDIT__SIGNING_KEY": str(tmp_path / "audit-key.pem"),
    }
    result = run("audit", "reconcile", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "TELLONCE_STORE_URL is not a tellonce setting" in result.stderr
    assert "did you mean TELLONCE_STORE__URL?" in result.stderr
    assert "s3cret" not in result.stderr
    assert result.stdout == ""


def test_an_unknown_setting_without_a_close_name_is_refused(sqlite_env: dict[str, str]) -> None:
    """A TELLONCE_* variable like nothing known is refused too, without a suggestion."""
    result = run("directory", "show", env={**sqlite_env, "TELLONCE_QQQ": "1"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "TELLONCE_QQQ is not a tellonce setting" in result.stderr
    assert "did you mean" not in result.stderr


def test_known_settings_in_lower_case_are_accepted(sqlite_env: dict[str, str]) -> None:
    """Settings are case-insensitive, as pydantic-settings reads them: lower case passes."""
    env = {key.lower(): value for key, value in sqlite_env.items()}
    result = run("directory", "show", env=env)
    assert result.returncode == 0, result.stderr
