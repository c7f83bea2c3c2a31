"""`tellonce person erase` as a clerk runs it on SQLite: what it prints, when it refuses, and
what `consent show|history` and `audit verify|reconcile|report` say afterwards."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import run

pytestmark = pytest.mark.e2e

REF = "bc-service-bc:SBC-77"
LOCAL_IDS = ("SBC-77", "MSP-77")


@pytest.fixture
def person(sqlite_env: dict[str, str]) -> str:
    linked = run("consent", "link", "bc-service-bc", "SBC-77", env=sqlite_env)
    assert linked.returncode == 0, linked.stderr
    person_id = linked.stdout.strip()
    assert (
        run("consent", "link", "bc-msp", "MSP-77", "--to", person_id, env=sqlite_env).returncode
        == 0
    )
    granted = run("consent", "grant", REF, "bc-msp", "AddressChanged", env=sqlite_env)
    assert granted.returncode == 0, granted.stderr
    return person_id


def test_help_explains_the_policy() -> None:
    """--help says what is destroyed, what --force does and what stays."""
    result = run("person", "erase", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for words in ("data key", "--force", "dead letter", "blind index", "withheld", "exit 2"):
        assert words in text, words


def test_erase_prints_counts_never_a_local_id(sqlite_env: dict[str, str], person: str) -> None:
    """Erasing by a local id prints the person id and counts; a second erasure exits 2."""
    result = run("person", "erase", REF, env=sqlite_env)
    assert result.returncode == 0, result.stderr
    assert f"erased person {person}: data key destroyed, 2 identity links" in result.stdout
    assert not [local_id for local_id in LOCAL_IDS if local_id in result.stdout]
    again = run("person", "erase", person, "--json", env=sqlite_env)
    assert again.returncode == 2
    assert again.stderr.startswith("tellonce: this person was erased already")
    assert again.stdout == ""


def test_erase_of_nobody_exits_2(sqlite_env: dict[str, str], person: str) -> None:
    """An id nobody is linked under exits 2 with one line that does not repeat the id."""
    result = run("person", "erase", "bc-service-bc:SBC-NOBODY", env=sqlite_env)
    assert result.returncode == 2
    assert result.stderr.startswith("tellonce: no client is linked at program 'bc-service-bc'")
    assert "SBC-NOBODY" not in result.stderr


def test_after_erasure_reads_say_erased_and_the_audit_holds(
    sqlite_env: dict[str, str], person: str
) -> None:
    """consent show and history exit 0 and say erased (no local id); grant exits 2; audit
    verify and reconcile pass; the report marks the person erased."""
    erased = run("person", "erase", REF, "--json", env=sqlite_env)
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["dead_lettered"] == []

    shown = run("consent", "show", REF, "--json", env=sqlite_env)
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert (view["person"], view["erased"], view["links"]) == (person, True, {})
    assert [c["state"] for c in view["consents"]] == ["given"]
    history = run("consent", "history", REF, env=sqlite_env)
    assert history.returncode == 0, history.stderr
    assert "erased: this person was erased" in history.stdout
    grant = run("consent", "withdraw", REF, "bc-msp", "AddressChanged", env=sqlite_env)
    assert grant.returncode == 2
    assert "was erased" in grant.stderr

    assert run("audit", "checkpoint", env=sqlite_env).returncode == 0
    verified = run("audit", "verify", env=sqlite_env)
    assert verified.returncode == 0, verified.stderr
    reconciled = run("audit", "reconcile", env=sqlite_env)
    assert reconciled.returncode == 0, reconciled.stdout
    assert "erased persons" in reconciled.stdout
    report = run("audit", "report", "--person", REF, "--format", "json", env=sqlite_env)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["scope"]["person"] == f"person {person[:8]} (erased)"
    for output in (shown.stdout, history.stdout, report.stdout, reconciled.stdout):
        assert not [local_id for local_id in LOCAL_IDS if local_id in output]
