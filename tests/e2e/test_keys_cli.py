"""``tellonce keys``: a KEK rotation killed with SIGKILL part-way, rerun to the end, on SQLite
and PostgreSQL; every identity link still resolves and opens, with the old KEK deleted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from consent.model import Evidence, IdentityLink
from hub.bootstrap import App
from hub.config.settings import Settings
from tests.e2e.conftest import TELLONCE, full_env, run
from tests.integration.conftest import fresh_postgres_database

pytestmark = pytest.mark.e2e

PERSONS = 3_000
PROGRAM = "bc-msp"
BATCH = 20  # 150 batches: the kill lands well before the end


def local_id(i: int) -> str:
    return f"MSP-{i:06d}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A hub's settings on a new store, with its KEK folder in the temp dir."""
    variables = {
        "TELLONCE_AUDIT__SIGNING_KEY": str(tmp_path / "audit-key.pem"),
        "TELLONCE_PRIVACY__KEK_DIR": str(tmp_path / "keks"),
        "TELLONCE_LOG_LEVEL": "warning",
    }
    if request.param == "sqlite":
        yield variables | {"TELLONCE_STORE__URL": f"sqlite:///{tmp_path / 'hub.db'}"}
        return
    with fresh_postgres_database("tellonce_keys") as url:
        yield variables | {"TELLONCE_STORE__URL": url}


def app_for(env: dict[str, str]) -> App:
    """A new App (nothing cached: every data key is unwrapped again) for ``env``."""
    settings = Settings.model_validate(
        {
            "store": {"url": env["TELLONCE_STORE__URL"]},
            "audit": {"signing_key": env["TELLONCE_AUDIT__SIGNING_KEY"]},
            "privacy": {"kek_dir": env["TELLONCE_PRIVACY__KEK_DIR"]},
        }
    )
    return App.from_settings(settings)


def seed(env: dict[str, str]) -> dict[str, str]:
    """PERSONS persons, each linked at PROGRAM, through the store (sealed as the hub seals);
    local id to person id."""
    app = app_for(env)
    evidence = Evidence("counter", "staff-1", datetime.now(UTC))
    people: dict[str, str] = {}
    try:
        for start in range(0, PERSONS, 500):
            with app.store.transaction() as tx:
                for i in range(start, start + 500):
                    person = f"person-{i:06d}"
                    tx.add_person(person, evidence.recorded_at)
                    tx.add_link(IdentityLink(person, PROGRAM, local_id(i), evidence))
                    people[local_id(i)] = person
    finally:
        app.close()
    return people


def every_link_resolves_and_opens(env: dict[str, str], people: dict[str, str]) -> None:
    app = app_for(env)
    try:
        with app.store.transaction() as tx:
            assert tx.persons_for(PROGRAM, people) == people  # the blind index finds each
            opened = tx.links_of(people.values())  # each sealed local id opens
        assert {links[PROGRAM]: person for person, links in opened.items()} == people
    finally:
        app.close()


def keys_by_kek(env: dict[str, str]) -> dict[str, int]:
    result = run("keys", "status", "--json", env=env)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["key_wrapper"] == "file"
    return {"current": status["current_kek"], **status["data_keys_by_kek"]}


def sealed_column(env: dict[str, str]) -> list[bytes]:
    engine = create_engine(env["TELLONCE_STORE__URL"])
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT local_id_sealed FROM identity_links ORDER BY id")
            )
            return [bytes(row[0]) for row in rows]
    finally:
        engine.dispose()


def test_a_killed_rotation_resumes_and_the_old_kek_is_no_longer_needed(
    env: dict[str, str],
) -> None:
    """SIGKILL part-way leaves keys under both KEKs, all opening; the rerun says it resumes,
    makes no KEK, finishes; ciphertexts are untouched and the old KEK can be deleted."""
    people = seed(env)
    before = keys_by_kek(env)
    old = before["current"]
    assert before == {"current": old, old: PERSONS}
    ciphertexts = sealed_column(env)

    with subprocess.Popen(
        [TELLONCE, "keys", "rotate-kek", "--batch", str(BATCH)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env(env),
    ) as rotation:
        assert rotation.stderr is not None
        for line in rotation.stderr:
            if line.startswith("rewrapped "):  # a first batch is committed
                os.kill(rotation.pid, signal.SIGKILL)
                break
        rotation.kill()  # no-op when it is dead already
        rotation.wait(timeout=60)
    assert rotation.returncode == -signal.SIGKILL

    halfway = keys_by_kek(env)
    new = halfway["current"]
    assert new != old
    assert 0 < halfway[new] < PERSONS
    assert halfway[old] == PERSONS - halfway[new]
    every_link_resolves_and_opens(env, people)  # both KEKs unwrap meanwhile

    rerun = run("keys", "rotate-kek", "--json", env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming an unfinished rotation" in rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["resumed"] is True
    assert summary["created"] is False
    assert summary["kek_id"] == new
    assert summary["rewrapped"] == halfway[old]
    assert summary["data_keys_by_kek"] == {new: PERSONS}
    assert summary["retired_keks"] == [old]
    assert keys_by_kek(env) == {"current": new, new: PERSONS}
    assert sealed_column(env) == ciphertexts  # no ciphertext was touched

    kek_dir = Path(env["TELLONCE_PRIVACY__KEK_DIR"])
    (kek_dir / f"{old}.kek").unlink()
    every_link_resolves_and_opens(env, people)


def test_rotating_a_finished_store_makes_a_new_kek_and_reports_it(env: dict[str, str]) -> None:
    """With every key under the current KEK, rotate-kek makes a new one; the text says so."""
    app = app_for(env)
    try:
        with app.store.transaction() as tx:
            tx.add_person("person-1", datetime.now(UTC))
    finally:
        app.close()
    old = keys_by_kek(env)["current"]
    result = run("keys", "rotate-kek", env=env)
    assert result.returncode == 0, result.stderr
    new = keys_by_kek(env)["current"]
    assert new != old
    assert f"made KEK {new} current" in result.stderr
    assert f"every data key is under KEK {new}: 1 rewrapped" in result.stdout
    assert f"KEK {old} wraps no data key any more" in result.stdout
    status = run("keys", "status", env=env)
    assert f"current KEK: {new}" in status.stdout
    assert f"{new}  1  (current)" in status.stdout


def test_keys_status_without_a_kek_exits_1_and_creates_none(tmp_path: Path) -> None:
    """A read-only status on a store whose KEK folder is missing: exit 1 naming the setting,
    and no KEK is created (a reader never mints a key)."""
    env = {
        "TELLONCE_STORE__URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "TELLONCE_AUDIT__SIGNING_KEY": str(tmp_path / "audit-key.pem"),
        "TELLONCE_PRIVACY__KEK_DIR": str(tmp_path / "keks"),
        "TELLONCE_LOG_LEVEL": "warning",
    }
    assert run("db", "upgrade", env=env).returncode == 0
    for kek in (tmp_path / "keks").glob("*"):  # whatever the upgrade made: start without
        kek.unlink()
    result = run("keys", "status", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TELLONCE_PRIVACY__KEK_DIR" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "keks").glob("*.kek"))


def test_incomplete_pkcs11_settings_exit_2_naming_the_setting(tmp_path: Path) -> None:
    """key_wrapper=pkcs11 without a library: exit 2 and the variable to set."""
    env = {
        "TELLONCE_STORE__URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "TELLONCE_AUDIT__SIGNING_KEY": str(tmp_path / "audit-key.pem"),
        "TELLONCE_PRIVACY__KEY_WRAPPER": "pkcs11",
        "TELLONCE_PRIVACY__PKCS11_PIN": "1234-secret",
        "TELLONCE_LOG_LEVEL": "warning",
    }
    result = run("keys", "rotate-kek", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "TELLONCE_PRIVACY__PKCS11_LIBRARY" in result.stderr
    assert "1234-secret" not in result.stderr + result.stdout
