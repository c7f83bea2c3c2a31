"""The tellonce command, driven as a user drives it."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import TELLONCE, run
from tests.keyring import write_directory

pytestmark = pytest.mark.e2e

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_demo_json_reports_every_count_and_passes() -> None:
    """`tellonce demo --json` exits 0 with the counts the scenario promises."""
    result = run("demo", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["published"] == 10
    assert report["delivered"] == 16
    assert report["withheld"] == 22
    assert report["rejected"] == 3
    assert report["duplicates_ignored"] == 1
    assert report["audit_verified"] is True


def test_demo_table_names_recipients_and_reasons() -> None:
    """The readable demo output shows who received each event and why others did not."""
    result = run("demo")
    assert result.returncode == 0, result.stderr
    assert "consent withdrawn" in result.stdout
    assert "no consent" in result.stdout
    assert "DUPLICATE of #1" in result.stdout
    assert "REJECTED (unsigned): death claimed by an unsigned client" in result.stdout
    assert "audit log:" in result.stdout
    assert "; verified; reconciled with the store" in result.stdout


def test_schemas_check_passes_on_the_shipped_catalog() -> None:
    """The shipped catalog is sound."""
    result = run("schemas", "check")
    assert result.returncode == 0, result.stdout + result.stderr


def _copy_schemas(tmp_path: Path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def test_schemas_check_fails_when_a_published_schema_is_edited(tmp_path: Path) -> None:
    """Editing a published .avsc in place is refused: a change must be a new version."""
    folder = _copy_schemas(tmp_path)
    path = folder / "ca.tellonce.lifeevents.DeathReported.v1.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append({"name": "cause", "type": "string"})
    path.write_text(json.dumps(schema))
    result = run("schemas", "check", "--dir", str(folder))
    assert result.returncode == 2
    assert "published schema changed" in result.stdout


def _add_version(folder: Path, extra_field: dict[str, object]) -> None:
    old = json.loads((folder / "ca.tellonce.lifeevents.DeathReported.v1.avsc").read_text())
    old["fields"].append(extra_field)
    (folder / "ca.tellonce.lifeevents.DeathReported.v2.avsc").write_text(json.dumps(old))
    catalog = json.loads((folder / "catalog.json").read_text())
    catalog["schemas"].append(
        {
            "id": 100,
            "name": "ca.tellonce.lifeevents.DeathReported",
            "version": 2,
            "file": "ca.tellonce.lifeevents.DeathReported.v2.avsc",
        }
    )
    (folder / "catalog.json").write_text(json.dumps(catalog))


def test_schemas_check_fails_on_an_incompatible_new_version(tmp_path: Path) -> None:
    """A new version adding a required field (no default) breaks FULL_TRANSITIVE."""
    folder = _copy_schemas(tmp_path)
    _add_version(folder, {"name": "cause", "type": "string"})
    result = run("schemas", "check", "--dir", str(folder))
    assert result.returncode == 2
    assert "not FULL_TRANSITIVE compatible with v1" in result.stdout


def test_schemas_check_accepts_a_compatible_new_version(tmp_path: Path) -> None:
    """A new version adding an optional field with a default is accepted as a draft."""
    folder = _copy_schemas(tmp_path)
    _add_version(folder, {"name": "cause", "type": ["null", "string"], "default": None})
    result = run("schemas", "check", "--dir", str(folder))
    assert result.returncode == 0, result.stdout
    assert "not published yet" in result.stdout


def test_consent_round_trip_and_history(sqlite_env: dict[str, str]) -> None:
    """Link, grant, withdraw and show work from the command line and keep the history."""
    person = run("consent", "link", "bc-service-bc", "SBC-1", env=sqlite_env)
    assert person.returncode == 0, person.stderr
    person_id = person.stdout.strip()
    linked = run("consent", "link", "bc-msp", "MSP-1", "--to", person_id, env=sqlite_env)
    assert linked.returncode == 0, linked.stderr
    grant = run(
        "consent",
        "grant",
        "bc-service-bc:SBC-1",
        "bc-msp",
        "AddressChanged",
        "--channel",
        "online",
        "--actor",
        "client",
        env=sqlite_env,
    )
    assert grant.returncode == 0, grant.stderr
    withdraw = run("consent", "withdraw", person_id, "bc-msp", "AddressChanged", env=sqlite_env)
    assert withdraw.returncode == 0, withdraw.stderr
    shown = run("consent", "show", person_id, "--json", env=sqlite_env)
    view = json.loads(shown.stdout)
    assert view["links"] == {"bc-service-bc": "SBC-1", "bc-msp": "MSP-1"}
    (consent,) = view["consents"]
    assert consent["state"] == "withdrawn"
    assert [r["state"] for r in consent["revisions"]] == ["given", "withdrawn"]
    assert consent["revisions"][0]["channel"] == "online"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("consent", "link", "bc-msq", "X-1"), "did you mean 'bc-msp'"),
        (("consent", "grant", "nobody", "bc-msp", "AddressChanged"), "no person 'nobody'"),
        (("consent", "grant", "bc-msp:NOPE", "bc-msp", "AddressChanged"), "no client is linked"),
        (("consent", "show", "bc-msp:NOPE"), "no client is linked"),
    ],
)
def test_consent_errors_are_clear(
    sqlite_env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    """Unknown programs and people exit 2 with a message that says what to do."""
    # The hub's database exists: 'consent show' only reads and never creates it.
    assert run("db", "upgrade", env=sqlite_env).returncode == 0
    result = run(*args, env=sqlite_env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_consent_unknown_event_type_is_refused(sqlite_env: dict[str, str]) -> None:
    """Granting for an event type that does not exist names the known ones."""
    person = run("consent", "link", "bc-service-bc", "SBC-9", env=sqlite_env).stdout.strip()
    result = run("consent", "grant", person, "bc-msp", "AdressChanged", env=sqlite_env)
    assert result.returncode == 2
    assert "did you mean 'AddressChanged'" in result.stderr


def test_withdrawing_without_consent_is_refused(sqlite_env: dict[str, str]) -> None:
    """A withdrawal of a consent never given is a conflict, not a silent no-op."""
    person = run("consent", "link", "bc-service-bc", "SBC-7", env=sqlite_env).stdout.strip()
    result = run("consent", "withdraw", person, "bc-msp", "AddressChanged", env=sqlite_env)
    assert result.returncode == 2
    assert "no consent in force" in result.stderr


def test_hub_run_without_broker_says_how_to_start_one(sqlite_env: dict[str, str]) -> None:
    """With no broker configured, the hub exits 2 and points at 'tellonce broker'."""
    result = run("hub", "run", env=sqlite_env)
    assert result.returncode == 2
    assert "tellonce broker" in result.stderr


def test_invalid_setting_is_named(sqlite_env: dict[str, str]) -> None:
    """A bad environment setting exits 2 naming the variable."""
    result = run("directory", "show", env={**sqlite_env, "TELLONCE_HUB__BATCH_SIZE": "zero"})
    assert result.returncode == 2
    assert "TELLONCE_HUB__BATCH_SIZE" in result.stderr


def test_full_flow_through_separate_commands(tmp_path: Path, sqlite_env: dict[str, str]) -> None:
    """broker, consent, publish, hub run and connector run cooperate as separate processes, with
    the keys set up as README says: the publisher's and the connector's keys from `keys new`
    and the hub's from `keys hub-entry` added to a directory file, `publish --key`, and the
    connector's key file in TELLONCE_CONNECTOR__SIGNING_KEY; the signed receipt is recorded."""
    broker = subprocess.Popen(
        [TELLONCE, "broker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert broker.stdout is not None
        first = broker.stdout.readline()
        assert "listening on 127.0.0.1:" in first
        bootstrap = first.rsplit(" ", 1)[1].strip()
        env = {**sqlite_env, "TELLONCE_BROKER__BOOTSTRAP_SERVERS": bootstrap}
        person = run("consent", "link", "bc-service-bc", "SBC-42", env=env).stdout.strip()
        assert run("consent", "link", "bc-msp", "MSP-42", "--to", person, env=env).returncode == 0
        assert run("consent", "grant", person, "bc-msp", "AddressChanged", env=env).returncode == 0
        key = tmp_path / "service-bc.pem"
        made = run("keys", "new", "bc-service-bc", "--out", str(key), env=env)
        assert made.returncode == 0, made.stderr
        msp_key = tmp_path / "msp-connector.pem"
        msp = run("keys", "new", "bc-msp", "--out", str(msp_key), env=env)
        assert msp.returncode == 0, msp.stderr
        assert run("audit", "keygen", env=env).returncode == 0
        hub_entry = run("keys", "hub-entry", env=env)
        assert hub_entry.returncode == 0, hub_entry.stderr
        # What `keys new` printed after each program's table, `keys hub-entry`'s at the end.
        entries = {"bc-service-bc": made.stdout, "bc-msp": msp.stdout}
        directory = write_directory(tmp_path / "directory.toml", entries, hub_entry.stdout)
        env["TELLONCE_DIRECTORY_PATH"] = str(directory)
        payload = {
            "subject_id": "SBC-42",
            "effective_date": "2026-11-01",
            "new_address": {
                "lines": ["1 Water Street"],
                "municipality": "Victoria",
                "province": "BC",
                "postal_code": "V8W 1A1",
            },
            "mailing_address": None,
        }
        event = ("publish", "bc-service-bc", "AddressChanged", "--json", json.dumps(payload))
        unsigned = run(*event, env=env)
        assert unsigned.returncode == 2
        assert "(unsigned)" in unsigned.stderr
        assert "tellonce keys new" in unsigned.stderr
        assert "--key" in unsigned.stderr
        published = run(*event, "--key", str(key), env=env)
        assert published.returncode == 0, published.stderr
        hub = run("hub", "run", "--idle-exit", "3", env=env)
        assert hub.returncode == 0, hub.stderr
        totals = json.loads(hub.stdout)["hub"]
        assert totals["accepted"] == 1
        assert totals["disclosed"] == 1
        inbox = tmp_path / "inbox"
        delivered = run(
            "connector",
            "run",
            "bc-msp",
            "--sink",
            "filedrop",
            "--option",
            f"directory={inbox}",
            "--idle-exit",
            "3",
            env=env | {"TELLONCE_CONNECTOR__SIGNING_KEY": str(msp_key)},
        )
        assert delivered.returncode == 0, delivered.stderr
        assert "receipts go unsigned" not in delivered.stderr
        (file,) = inbox.glob("*.json")
        body = json.loads(file.read_text())
        assert body["subject_id"] == "MSP-42"
        assert set(body["fields"]) == {"effective_date", "new_address"}
        assert body["fields"]["new_address"]["postal_code"] == "V8W 1A1"
        # The hub takes the connector's signed receipt (signed receipts are required).
        assert run("hub", "run", "--idle-exit", "3", env=env).returncode == 0
        status = run("connector", "status", "bc-msp", "--json", env=env)
        assert status.returncode == 0, status.stderr
        (row,) = json.loads(status.stdout)
        assert (row["delivered"], row["awaiting_receipt"]) == (1, 0)
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.communicate(timeout=10)  # also closes the pipes
    assert broker.returncode == 0


def test_connector_unknown_sink_suggests_a_name(sqlite_env: dict[str, str]) -> None:
    """A misspelt sink name exits 2 with a suggestion."""
    env = {**sqlite_env, "TELLONCE_BROKER__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = run("connector", "run", "bc-msp", "--sink", "filedorp", env=env)
    assert result.returncode == 2
    assert "Did you mean 'filedrop'" in result.stderr
