"""E2E helpers: run the installed ``tellonce`` command as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.keyring import directory_file, hub_key

TELLONCE = shutil.which("tellonce", path=str(Path(sys.executable).parent)) or "tellonce"


def full_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its TELLONCE_* variables, plus ``env``."""
    merged = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
    merged.update(env or {})
    return merged


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TELLONCE, *args], capture_output=True, text=True, env=full_env(env), timeout=timeout
    )


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {
        "TELLONCE_STORE__URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "TELLONCE_AUDIT__SIGNING_KEY": str(tmp_path / "audit-key.pem"),
        "TELLONCE_LOG_LEVEL": "warning",
    }


@pytest.fixture
def signed_env(sqlite_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """``sqlite_env`` with a directory file listing every program's key (``tellonce publish
    --key tests.keyring.key_file(program)`` signs with it) and the hub's audit key."""
    audit_key = Path(sqlite_env["TELLONCE_AUDIT__SIGNING_KEY"])
    directory = directory_file(tmp_path / "directory.toml", hub_key(audit_key))
    return {**sqlite_env, "TELLONCE_DIRECTORY_PATH": str(directory)}
