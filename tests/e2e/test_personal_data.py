"""Personal values through the whole flow, as a user runs it: never in the logs, never in what
the audit keeps.

Canary values (a subject id, a recipient's local id, a street, a postal code, a name, the
publisher's ce_ids) go through `tellonce hub run` and `tellonce connector run` at debug level,
on the real broker and a PostgreSQL store; the delivered file proves they did. Standard error
is one JSON object per line, kafka-python's records among them, without a single canary; the
exported audit bundle names events by the keyed hash `tellonce audit pseudonym` prints.

A second recipient's staging table refuses the notice with a rule whose error message quotes
the street: the connector dead-letters it, and neither `tellonce dlq list`, the receipt the hub
recorded, nor any log repeats the database's words.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import CheckConstraint, create_engine

from connectors.sqltable import staging_table
from consent.model import ConsentState, Evidence
from hub.adapters.broker import EmbeddedBroker
from hub.bootstrap import App, KafkaConnection
from hub.config.settings import AuditSettings, BrokerSettings, Settings, StoreSettings
from hub.errors import ConfigError
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.publishing import event_message, publish_event
from hub.wire.topics import LIFEEVENTS_TOPIC
from tests.e2e.conftest import run
from tests.integration.conftest import fresh_postgres_database, unavailable
from tests.keyring import connector_env, directory_file, hub_key, sign, signer

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PUBLISHER = "bc-service-bc"
SUBJECT = "SBC-CANARY-4417"  # the client's id at the publisher: key and ce_subject
LOCAL_ID = "MSP-CANARY-8823"  # the client's id at the recipient: the notice's key
STREET = "4417 Canarywood Crescent"
POSTAL_CODE = "V8W 4K7"
GIVEN_NAMES = "Zephyrine"
FAMILY_NAME = "Canarysmith"
EVENT_ID = "ce-CANARY-9921"  # the publisher's ce_id of the good event
REJECTED_ID = "ce-CANARY-REJECT-5"  # ce_id of an event refused for its ce_subject
CANARIES = (SUBJECT, LOCAL_ID, STREET, POSTAL_CODE, GIVEN_NAMES, FAMILY_NAME, EVENT_ID, REJECTED_ID)


@dataclass(frozen=True)
class Flow:
    env: dict[str, str]
    stderr: str  # of every command run at debug level
    inbox: Path


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    """One life of the canaries: link and consent, publish, hub, connector, hub (receipts)."""
    folder = tmp_path_factory.mktemp("logs")
    try:
        broker = EmbeddedBroker()
    except ConfigError as exc:
        unavailable(f"no Tansu broker binary: {exc}")
    with broker, fresh_postgres_database("tellonce_logs") as url:
        settings = Settings(
            store=StoreSettings(url=url),
            broker=BrokerSettings(bootstrap_servers=broker.bootstrap),
            audit=AuditSettings(signing_key=folder / "audit.pem", create_key=True),
        )
        app = App.from_settings(settings)
        try:
            _prepare(app, app.kafka())
        finally:
            app.close()
        env = {
            "TELLONCE_STORE__URL": url,
            "TELLONCE_BROKER__BOOTSTRAP_SERVERS": broker.bootstrap,
            "TELLONCE_AUDIT__SIGNING_KEY": str(folder / "audit.pem"),
            "TELLONCE_DIRECTORY_PATH": str(
                directory_file(folder / "directory.toml", hub_key(folder / "audit.pem"))
            ),
            "TELLONCE_LOG_LEVEL": "debug",
        }
        inbox = folder / "inbox"
        connector = ("connector", "run", "bc-msp", "--sink", "filedrop")
        refusing = ("connector", "run", "esdc-cpp", "--sink", "sqltable")
        staging = _refusing_staging_table(folder / "cpp.db")
        commands = [
            ("hub", "run", "--idle-exit", "2"),
            (*connector, "--option", f"directory={inbox}", "--idle-exit", "2"),
            (*refusing, "--option", f"url={staging}", "--idle-exit", "2"),
            ("hub", "run", "--idle-exit", "2"),  # records the receipts
        ]
        stderr = []
        for command in commands:
            # Each connector signs its receipts with its recipient's key.
            signing = connector_env(command[2]) if command[0] == "connector" else {}
            result = run(*command, env=env | signing)
            assert result.returncode == 0, (command, result.stderr[-3000:])
            stderr.append(result.stderr)
        yield Flow(env, "".join(stderr), inbox)


def _refusing_staging_table(path: Path) -> str:
    """A staging table with a rule of the back office's own that refuses any row holding the
    street; SQLite's error message quotes the rule, street included."""
    url = f"sqlite:///{path}"
    table = staging_table()
    table.append_constraint(CheckConstraint(f"body NOT LIKE '%{STREET}%'"))
    engine = create_engine(url)
    try:
        table.metadata.create_all(engine)
    finally:
        engine.dispose()
    return url


def _prepare(app: App, kafka: KafkaConnection) -> None:
    """The client, their consent, and three events: good, a repeat of it, and a refused one."""
    now = datetime.now(UTC)
    service = app.consent()
    evidence = Evidence("counter", "staff-1", now)
    person = service.link(PUBLISHER, SUBJECT, evidence)
    service.link("bc-msp", LOCAL_ID, evidence, to=person)
    service.link("esdc-cpp", "CPP-7", evidence, to=person)
    service.record(person, "bc-msp", ["AddressChanged"], ConsentState.GIVEN, evidence)
    service.record(person, "esdc-cpp", ["AddressChanged"], ConsentState.GIVEN, evidence)
    address = {
        "lines": [STREET],
        "municipality": "Victoria",
        "province": "BC",
        "postal_code": POSTAL_CODE,
    }
    moved: dict[str, Any] = {
        "subject_id": SUBJECT,
        "effective_date": date(2025, 1, 1),
        "new_address": address,
        "mailing_address": None,
    }
    renamed: dict[str, Any] = {
        "subject_id": SUBJECT,
        "effective_date": date(2025, 1, 1),
        "given_names": GIVEN_NAMES,
        "family_name": FAMILY_NAME,
        "reason": "MARRIAGE",
    }
    app.ensure_topics(kafka)
    producer = app.producer(kafka)
    try:
        for _ in range(2):  # the second one is a duplicate: ignored, and logged as such
            publish_event(
                producer,
                app.codec,
                source=PUBLISHER,
                event_type="AddressChanged",
                payload=moved,
                at=now,
                event_id=EVENT_ID,
                signer=signer(PUBLISHER),
            )
        publish_event(
            producer,
            app.codec,
            source=PUBLISHER,
            event_type="NameChanged",
            payload=renamed,
            at=now,
            signer=signer(PUBLISHER),
        )
        # Refused: ce_subject names another client than the key and the payload.
        key, value, _, _ = event_message(
            app.codec, source=PUBLISHER, event_type="AddressChanged", payload=moved, at=now
        )
        headers = cloudevent_headers(
            REJECTED_ID,
            "ca.tellonce.lifeevents.AddressChanged",
            now,
            subject="SBC-OTHER",
            source=PUBLISHER,
        )
        producer.send(LIFEEVENTS_TOPIC, key, value, sign(key, value, headers, PUBLISHER))
        producer.flush()
    finally:
        producer.close()


def _lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def test_canaries_went_through_the_flow(flow: Flow) -> None:
    """The delivered notice holds the canary address: the logs below saw real traffic."""
    (file,) = flow.inbox.glob("*.json")
    text = file.read_text()
    assert STREET in text
    assert POSTAL_CODE in text
    assert LOCAL_ID in text


def test_debug_logs_hold_no_canary(flow: Flow) -> None:
    """At debug level not one canary value appears on standard error."""
    hits = {canary: flow.stderr.count(canary) for canary in CANARIES}
    assert hits == dict.fromkeys(CANARIES, 0)


def test_every_stderr_line_is_one_json_object(flow: Flow) -> None:
    """Every line on standard error is a JSON object with level, logger, event and timestamp."""
    lines = flow.stderr.splitlines()
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert {"level", "logger", "event", "timestamp"} <= set(entry), line


def test_kafka_python_records_are_rendered_as_json(flow: Flow) -> None:
    """kafka-python's own log records come out as JSON lines, at info level at most."""
    loggers = Counter(
        (entry["logger"], entry["level"])
        for entry in _lines(flow.stderr)
        if entry["logger"].startswith("kafka")
    )
    assert loggers
    assert {level for _, level in loggers} <= {"info", "warning", "error"}


def test_the_audit_names_events_by_the_keyed_hash_the_pseudonym_command_prints(
    flow: Flow,
) -> None:
    """The bundle holds no canary; `audit pseudonym` gives the name its leaves use for the
    publisher's ce_id, and `audit reconcile` matches leaves with the store."""
    printed = run("audit", "pseudonym", EVENT_ID, "--source", PUBLISHER, env=flow.env)
    assert printed.returncode == 0, printed.stderr
    ref = printed.stdout.strip()
    assert ref.startswith(f"{PUBLISHER}/h:")
    assert run("audit", "checkpoint", env=flow.env).returncode == 0
    bundle = flow.inbox.parent / "bundle.jsonl"
    exported = run("audit", "export", str(bundle), env=flow.env)
    assert exported.returncode == 0, exported.stderr
    text = bundle.read_text()
    assert [canary for canary in CANARIES if canary in text] == []
    lines = [json.loads(line) for line in text.splitlines()]
    accepted = [e["data"]["event"] for e in lines if e.get("kind") == "accepted" and "data" in e]
    assert len(accepted) == 2  # the move and the name change; the repeat was ignored
    assert ref in accepted
    reconciled = run("audit", "reconcile", env=flow.env)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr


def test_a_sink_error_quoting_a_canary_goes_no_further(flow: Flow) -> None:
    """The staging table's refusal quoted the street: `dlq list` shows the notice's id and the
    error class only, the recorded receipt keeps the sink's fixed words, and no log repeats
    the database's."""
    listed = run("dlq", "list", "esdc-cpp", "--json", env=flow.env)
    assert listed.returncode == 0, listed.stderr
    (letter,) = json.loads(listed.stdout)
    assert letter["error"] == "IntegrityError"
    assert letter["reason"] == "a constraint of the staging table 'tellonce_inbox' refused the row"
    text = run("dlq", "list", "esdc-cpp", env=flow.env)
    assert text.returncode == 0, text.stderr
    assert letter["notification"] in text.stdout
    shown = listed.stdout + listed.stderr + text.stdout + text.stderr
    assert [canary for canary in CANARIES if canary in shown] == []
    with psycopg.connect(flow.env["TELLONCE_STORE__URL"]) as db:
        recorded = db.execute("SELECT recipient, status, detail FROM deliveries").fetchall()
    assert sorted(recorded) == [
        ("bc-msp", "delivered", None),
        ("esdc-cpp", "dead_lettered", letter["reason"]),
    ]
