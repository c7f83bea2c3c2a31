"""`tellonce dlq` and `tellonce connector status` as an operator types them: help, and wrong
requests answered with exit 2 and what to do, before any broker is needed."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import run

pytestmark = pytest.mark.e2e

BROKER_HINT = "tellonce broker"


def test_dlq_help_names_list_and_replay() -> None:
    """`tellonce dlq --help` exits 0 and names both actions."""
    result = run("dlq", "--help")
    assert result.returncode == 0, result.stderr
    assert "list" in result.stdout
    assert "replay" in result.stdout


def test_dlq_replay_help_explains_offsets_and_all() -> None:
    """`tellonce dlq replay --help` documents --offset (with the partition form), --all, --force."""
    result = run("dlq", "replay", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--offset", "--all", "--force", "P/]N"):
        assert option in result.stdout


def test_dlq_replay_without_offset_or_all_is_a_usage_error(sqlite_env: dict[str, str]) -> None:
    """Replay with neither --offset nor --all exits 2 with the hint, without needing a broker."""
    result = run("dlq", "replay", "bc-msp", env=sqlite_env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--offset N" in result.stderr
    assert "--all" in result.stderr
    assert BROKER_HINT not in result.stderr  # judged before any connection is attempted


def test_dlq_replay_with_a_malformed_offset_is_a_usage_error(sqlite_env: dict[str, str]) -> None:
    """--offset that is neither N nor PARTITION/N exits 2 saying which forms it takes."""
    result = run("dlq", "replay", "bc-msp", "--offset", "first", env=sqlite_env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--offset takes N or PARTITION/N" in result.stderr
    assert "'first'" in result.stderr


@pytest.mark.parametrize(
    "args",
    [("dlq", "list", "bc-mps"), ("dlq", "replay", "bc-mps", "--all"), ("connector", "status", "x")],
    ids=["dlq-list", "dlq-replay", "connector-status"],
)
def test_unknown_recipient_exits_2(sqlite_env: dict[str, str], args: tuple[str, ...]) -> None:
    """An unknown recipient exits 2 and points at the directory (with a suggestion if close)."""
    env = {**sqlite_env, "TELLONCE_BROKER__BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    result = run(*args, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unknown program" in result.stderr
    if "bc-mps" in args:
        assert "bc-msp" in result.stderr  # did you mean


@pytest.mark.parametrize(
    "args",
    [("connector", "status"), ("connector", "status", "bc-msp"), ("dlq", "list", "bc-msp")],
    ids=["status-all", "status-one", "dlq-list"],
)
def test_commands_needing_a_broker_say_how_to_start_one(
    sqlite_env: dict[str, str], args: tuple[str, ...]
) -> None:
    """Without TELLONCE_BROKER__BOOTSTRAP_SERVERS they exit 2 pointing at 'tellonce broker'."""
    result = run(*args, env=sqlite_env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert BROKER_HINT in result.stderr
    assert "TELLONCE_BROKER__BOOTSTRAP_SERVERS" in result.stderr
    assert "Traceback" not in result.stderr
