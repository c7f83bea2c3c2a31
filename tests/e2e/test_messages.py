"""A message, never a traceback: each known mistake gets one `tellonce: ...` line saying what
was wrong and what to do, with exit 2 (the request or a setting is wrong) or 1 (the work failed),
and Ctrl-C on the demo exits 130 with one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hub.audit.reports import proof_reference
from tests.e2e.conftest import TELLONCE, full_env, run
from tests.integration.conftest import POSTGRES_SERVER, require_postgres
from tests.keyring import key_file
from tests.watchdog import wait_until

pytestmark = pytest.mark.e2e


def one_message(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single `tellonce:` line of a failed command, after checking its exit code."""
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tellonce: ")
    return lines[0]


# -- files the user names ------------------------------------------------------------------------


def test_publish_with_a_missing_payload_file(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    """`publish --file` naming no file exits 2 and says how to give the payload."""
    result = run(
        "publish", "bc-service-bc", "AddressChanged", "--file", str(tmp_path / "nope.json"),
        env=sqlite_env,
    )  # fmt: skip
    message = one_message(result, 2)
    assert f"cannot read the payload file {tmp_path / 'nope.json'}: no such file" in message
    assert "--json" in message


def test_verify_with_a_missing_public_key(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    """`audit verify --public-key` naming no file exits 2 and says how to get the key."""
    result = run("audit", "verify", "--public-key", str(tmp_path / "hub.pem"), env=sqlite_env)
    message = one_message(result, 2)
    assert "cannot read the public key file" in message
    assert "tellonce audit public-key" in message


def test_export_into_a_missing_folder(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    """`audit export` into a folder that does not exist exits 2, names it and writes nothing."""
    target = tmp_path / "no-such-folder" / "bundle.jsonl"
    message = one_message(run("audit", "export", str(target), env=sqlite_env), 2)
    assert f"the folder {target.parent} does not exist" in message
    assert "mkdir -p" in message
    assert not target.parent.exists()


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["garbage", "not a host:xx", "host:", ":9092", "host:99999"])
def test_unparsable_bootstrap_address_is_a_settings_error(
    sqlite_env: dict[str, str], address: str
) -> None:
    """A bootstrap address no client could use exits 2 naming the variable, before any client
    spends a minute retrying it."""
    env = {**sqlite_env, "TELLONCE_BROKER__BOOTSTRAP_SERVERS": address}
    result = run("publish", "bc-service-bc", "AddressChanged", "--json", "{}", env=env)
    message = one_message(result, 2)
    assert "invalid settings: TELLONCE_BROKER__BOOTSTRAP_SERVERS:" in message
    assert "is not host:port with a port from 1 to 65535" in message


def test_demo_on_a_cluster_that_does_not_answer_says_so_in_one_line(tmp_path: Path) -> None:
    """`tellonce demo --bootstrap` with nothing listening there exits 1 with one line naming
    the address, within the demo's bound, and leaves no demo folder behind."""
    result = run("demo", "--bootstrap", "127.0.0.1:9", env={"TMPDIR": str(tmp_path)}, timeout=60)
    message = one_message(result, 1)
    assert "cannot connect a reader to 127.0.0.1:9 (PLAINTEXT) within 10 s" in message
    assert "running?" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_missing_postgres_database_keeps_the_drivers_cause(sqlite_env: dict[str, str]) -> None:
    """A store URL naming a database that does not exist exits 2 with PostgreSQL's own words
    and how to create it."""
    require_postgres()
    env = {**sqlite_env, "TELLONCE_STORE__URL": f"{POSTGRES_SERVER}/tellonce_no_such_db"}
    message = one_message(run("db", "upgrade", env=env), 2)
    assert 'database "tellonce_no_such_db" does not exist' in message
    assert "createdb tellonce_no_such_db" in message


def test_refused_store_port_keeps_the_drivers_cause_but_not_the_password(
    sqlite_env: dict[str, str],
) -> None:
    """A store URL whose port nobody listens on exits 1 with the driver's cause, what to check,
    and the password masked."""
    url = "postgresql://postgres:Sekr3t-pw@127.0.0.1:1/x"
    message = one_message(run("db", "upgrade", env={**sqlite_env, "TELLONCE_STORE__URL": url}), 1)
    assert "port 1 failed: Connection refused" in message
    assert "check TELLONCE_STORE__URL (host, port, user)" in message
    assert "Sekr3t-pw" not in message


@pytest.mark.parametrize("scheme", ["mysql", "mariadb"])
def test_mysql_store_url_says_what_the_hub_store_supports(
    sqlite_env: dict[str, str], scheme: str
) -> None:
    """A MySQL or MariaDB store URL exits 2 saying the hub's store is SQLite or PostgreSQL, and
    names the extra MariaDB is for, not the PostgreSQL one."""
    env = {**sqlite_env, "TELLONCE_STORE__URL": f"{scheme}://root@127.0.0.1:3306/tellonce"}
    message = one_message(run("db", "upgrade", env=env), 2)
    assert "must be SQLite (sqlite:///tellonce.db) or PostgreSQL" in message
    assert "tellonce[mariadb]" in message
    assert "tellonce[postgres]" not in message


# -- payloads ------------------------------------------------------------------------------------

SECRET = "Zyxwvut Street"  # a value that must never be echoed back
DROP = object()  # remove the field


def payload_with(path: str = "", value: object = None) -> dict[str, Any]:
    """A good AddressChanged payload, with the field at ``path`` (a.b) set to ``value``."""
    payload: dict[str, Any] = {
        "subject_id": "SBC-42",
        "effective_date": "2026-11-01",
        "new_address": {
            "lines": [SECRET],
            "municipality": "Victoria",
            "province": "BC",
            "postal_code": "V8W 1A1",
        },
        "mailing_address": None,
    }
    if path:
        *parents, name = path.split(".")
        target = payload
        for parent in parents:
            target = target[parent]
        if value is DROP:
            del target[name]
        else:
            target[name] = value
    return payload


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        ("new_address", DROP, "new_address: is required; give an object (CanadianAddress"),
        ("new_address.lines", SECRET, "new_address.lines: must be a list of strings"),
        ("subject_id", 42, "subject_id: must be a string"),
        ("new_address.province", SECRET, "new_address.province: must be one of AB, BC,"),
        ("effective_date", SECRET, "effective_date: must be a date like 2026-11-01"),
        ("effective_date", 2**40, "effective_date: must be a date like 2026-11-01"),
        ("mailing_address", 5, "mailing_address: must be null or an object (CanadianAddress"),
        ("new_address.floor", SECRET, "new_address.floor: is not a field of CanadianAddress"),
    ],
    ids=[
        "missing", "string-for-list", "number-for-string", "not-an-enum-symbol",
        "not-a-date", "date-beyond-int", "wrong-union-branch", "unknown-field",
    ],
)  # fmt: skip
def test_payload_that_does_not_fit_the_schema_names_the_field(
    sqlite_env: dict[str, str], path: str, value: object, says: str
) -> None:
    """A payload that does not fit the schema exits 2 naming the field and the rule, never the
    value, before any broker is contacted (the one configured does not exist)."""
    payload = json.dumps(payload_with(path, value))
    env = {**sqlite_env, "TELLONCE_BROKER__BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    result = run("publish", "bc-service-bc", "AddressChanged", "--json", payload, env=env)
    message = one_message(result, 2)
    assert "does not fit the AddressChanged schema" in message
    assert says in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("source", "postal_code", "says"),
    [
        (
            "bc-service-bc",
            "K1A 0B1",
            "(invalid_event): new_address: postal_code does not belong to the province given",
        ),
        (
            "bc-service-bc",
            "v8w1a1",
            "(invalid_event): new_address: postal_code must look like A1A 1A1",
        ),
        (
            "bc-msp",
            "V8W 1A1",
            "(not_authorized): program bc-msp may not publish AddressChanged events; "
            "'tellonce directory show'",
        ),
    ],
    ids=["postal-code-of-another-province", "malformed-postal-code", "may-not-publish"],
)
def test_publish_refuses_what_the_hub_would_reject(
    signed_env: dict[str, str], source: str, postal_code: str, says: str
) -> None:
    """An event the hub would reject exits 2 with the hub's reason code and rule, and is not
    sent (no broker is reachable, yet no broker error)."""
    payload = json.dumps(payload_with("new_address.postal_code", postal_code))
    env = {**signed_env, "TELLONCE_BROKER__BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    key = str(key_file(source))
    result = run("publish", source, "AddressChanged", "--json", payload, "--key", key, env=env)
    message = one_message(result, 2)
    assert "the hub would reject this AddressChanged event " + says in message
    assert SECRET not in message


def test_death_in_the_future_is_refused_naming_the_field(signed_env: dict[str, str]) -> None:
    """A date of death in the future (but inside the date window) exits 2 with the field rule
    the hub applies."""
    next_year = date.today().replace(month=1, day=1).replace(year=date.today().year + 1)
    payload = {
        "subject_id": "VS-1",
        "date_of_death": next_year.isoformat(),
        "province_of_death": "BC",
        "informant_relationship": "SPOUSE",
    }
    result = run(
        "publish", "bc-vital-statistics", "DeathReported", "--json", json.dumps(payload),
        "--key", str(key_file("bc-vital-statistics")), env=signed_env,
    )  # fmt: skip
    assert "(invalid_event): date_of_death: must not be in the future" in one_message(result, 2)


def test_a_date_outside_the_window_is_refused_naming_the_field(signed_env: dict[str, str]) -> None:
    """A date beyond the hub's date window (2100-12-31 by default) exits 2 as out_of_range,
    naming the field and the setting, never the value."""
    payload = {
        "subject_id": "VS-1",
        "date_of_death": "2999-01-01",
        "province_of_death": "BC",
        "informant_relationship": "SPOUSE",
    }
    result = run(
        "publish", "bc-vital-statistics", "DeathReported", "--json", json.dumps(payload),
        "--key", str(key_file("bc-vital-statistics")), env=signed_env,
    )  # fmt: skip
    message = one_message(result, 2)
    assert "(out_of_range): date_of_death:" in message
    assert "TELLONCE_LIMITS__MIN_DATE" in message
    assert "2999" not in message


def test_dry_run_checks_and_prints_what_would_be_sent_without_a_broker(
    signed_env: dict[str, str],
) -> None:
    """`publish --dry-run` needs no broker, exits 0 and prints the topic, key, CloudEvents
    headers and value size it would send."""
    result = run(
        "publish", "bc-service-bc", "AddressChanged", "--json", json.dumps(payload_with()),
        "--id", "evt-1", "--dry-run", "--key", str(key_file("bc-service-bc")), env=signed_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["dry_run"], shown["sent"]) == (True, False)
    assert shown["topic"] == "tellonce.lifeevents.v1"
    assert shown["key"] == "SBC-42"
    assert shown["schema_id"] == 1
    assert shown["value_bytes"] > 5
    headers = shown["headers"]
    assert headers["ce_id"] == "evt-1"
    assert headers["ce_source"] == "bc-service-bc"
    assert headers["ce_type"] == "ca.tellonce.lifeevents.AddressChanged"
    assert headers["content-type"] == "application/avro"


# -- audit prove with what the report prints --------------------------------------------------


@pytest.fixture(scope="module")
def signed_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A store with three leaves, all covered by checkpoint 1 (tree size 3)."""
    folder = tmp_path_factory.mktemp("signed")
    env = {
        "TELLONCE_STORE__URL": f"sqlite:///{folder / 'hub.db'}",
        "TELLONCE_AUDIT__SIGNING_KEY": str(folder / "audit.pem"),
        "TELLONCE_LOG_LEVEL": "warning",
    }
    for args in (
        ("consent", "link", "bc-service-bc", "SBC-7"),
        ("consent", "link", "cra-individual", "CRA-7"),
        ("consent", "grant", "bc-service-bc:SBC-7", "cra-individual", "AddressChanged"),
        ("audit", "checkpoint"),
    ):
        assert run(*args, env=env).returncode == 0, args
    return env


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("split", [True, False], ids=["as-words", "quoted"])
def test_prove_accepts_the_reference_a_report_prints(
    signed_store: dict[str, str], lang: str, split: bool
) -> None:
    """`audit prove` takes the report's proof column as printed (English or French, quoted or
    not) and proves that leaf in the checkpoint of that tree size."""
    reference = proof_reference(1, 3, lang)  # type: ignore[arg-type]
    words = reference.split() if split else [reference]
    result = run("audit", "prove", *words, env=signed_store)
    assert result.returncode == 0, result.stderr
    proof = json.loads(result.stdout)
    assert (proof["leaf_index"], proof["tree_size"], proof["checkpoint"]) == (1, 3, 1)


def test_prove_with_a_tree_size_no_checkpoint_has(signed_store: dict[str, str]) -> None:
    """A reference to a checkpoint size that was never signed exits 2 naming the newest."""
    result = run("audit", "prove", "leaf 1 @ checkpoint 40", env=signed_store)
    message = one_message(result, 2)
    assert "no signed checkpoint has tree size 40" in message
    assert "the newest is checkpoint 1 of tree size 3" in message


def test_prove_with_text_that_is_no_reference(signed_store: dict[str, str]) -> None:
    """Anything else exits 2 showing the two accepted forms."""
    message = one_message(run("audit", "prove", "latest", env=signed_store), 2)
    assert "give the leaf index (41) or the report's proof column" in message


# -- Ctrl-C on the demo ------------------------------------------------------------------------


def _delivered_file(folder: Path) -> bool:
    return any((folder / "dropbox").glob("*/*.json"))


@pytest.mark.parametrize(
    "ready",
    [lambda folder: (folder / "tellonce.db").exists(), _delivered_file],
    ids=["while-starting", "mid-flow"],
)
def test_ctrl_c_on_the_demo_exits_130_with_one_line(
    tmp_path: Path, ready: Callable[[Path], bool]
) -> None:
    """Ctrl-C in a terminal (SIGINT to the demo and its embedded broker alike) stops the demo
    with exit 130 and one line: no traceback, no flood of Kafka client errors."""
    env = full_env()
    folder = tmp_path / "demo"
    demo = subprocess.Popen(
        [TELLONCE, "demo", "--keep", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        process_group=0,  # its own group, as a terminal's foreground job
        # A shell's background job ignores SIGINT and children inherit that; a terminal's
        # foreground job does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:

        def far_enough() -> bool:
            assert demo.poll() is None, demo.communicate()
            return ready(folder)

        wait_until(far_enough, 60, "the demo never got that far")
        os.killpg(demo.pid, signal.SIGINT)
        out, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 130, out + err
    assert err == "tellonce: interrupted\n"
