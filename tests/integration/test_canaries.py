"""The canary test (issue 11): personal values go through the hub and three connectors, and
come out only where they are delivered.

One client, known at five programs under canary ids, moves (a canary street and postal code),
changes name (canary names) and is reported dead (a canary registration number); the same
values come again in three events the hub refuses. The hub runs on PostgreSQL and the embedded
broker; a file drop, a staging table (SQLite, with a rule that refuses the death notice in
words quoting the number) and a webhook (which refuses the name change in an answer quoting
the name) deliver, all in this process with every log at debug, captured. Then no form of any
canary (as text, hex or base64) may be found in a `pg_dump` of the hub's database, in any log
line (the hub's, the connectors', the commands'), in any record of the rejected topic, in the
audit bundle, or in `tellonce dlq list`. The back offices' files, rows and request bodies hold
them: that is delivery.

Then `tellonce person erase` (forced): the person's ciphertexts in a dump taken before it no
longer open with any key the hub holds, another client's still do, and `audit verify` and
`audit reconcile` pass.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import CheckConstraint, create_engine

from connectors.sqltable import staging_table
from consent.model import ConsentState, Evidence
from hub.adapters.broker import EmbeddedBroker
from hub.adapters.sql.sealing import link_aad, outbox_aad
from hub.bootstrap import App
from hub.config import logs
from hub.errors import ConfigError, DecryptionError
from hub.model import WrappedKey
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.publishing import event_message
from hub.wire.topics import LIFEEVENTS_TOPIC, REJECTED_TOPIC
from tests.logstate import logging_restored

from .conftest import POSTGRES_SERVER, fresh_postgres_database, unavailable
from .harness import SIGNING_KEYS, Harness, read_topic, settings_for, signing
from .http_server import LocalHTTPServer, Reply, Request
from .plaintext import NULL, PG_DUMP, Dump, byte_hits, bytea, hits, pg_dump

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

TELLONCE = shutil.which("tellonce", path=str(Path(sys.executable).parent)) or "tellonce"

# The client's ids at five programs, and what the events say about them.
SBC_ID = "SBC-CANARY-3141"  # Service BC (publishes the move and the name change)
VS_ID = "VS-CANARY-2718"  # BC Vital Statistics (publishes the death)
CRA_ID = "CRA-CANARY-1618"  # CRA: file drop
MSP_ID = "MSP-CANARY-1732"  # BC MSP: staging table
CPP_ID = "CPP-CANARY-1414"  # CPP: webhook
STREET = "4471 Canaryvale Crescent"
POSTAL_CODE = "V9X 7K3"
GIVEN_NAMES = "Zephyrine"
FAMILY_NAME = "Canarysmith-Oyelaran"
DEATH_NUMBER = "DRN-CANARY-2026-004417"
CANARIES = (
    SBC_ID,
    VS_ID,
    CRA_ID,
    MSP_ID,
    CPP_ID,
    STREET,
    POSTAL_CODE,
    GIVEN_NAMES,
    FAMILY_NAME,
    DEATH_NUMBER,
)
WEBHOOK_SECRET = "canary-test-webhook-secret-0123456789abcdef"
# Every notice the consents below allow: CRA 2, MSP 2, CPP 3; of which two are refused.
NOTICES = 7
INBOUND = 6  # three events accepted, three refused


@dataclass
class Flow:
    """What one run of the canaries left behind, for the tests to search."""

    harness: Harness
    person: str
    bystander: str  # another client, never erased: their data must still open afterwards
    folder: Path
    logs: io.StringIO
    command_output: list[str] = field(default_factory=list)
    webhook_bodies: list[bytes] = field(default_factory=list)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A tellonce command on the flow's store and broker, logging at debug; its standard
        error joins the captured logs."""
        done = subprocess.run(
            [TELLONCE, *args],
            env=self.harness.env(TELLONCE_LOG_LEVEL="debug"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.command_output.append(done.stderr)
        return done

    def captured_logs(self) -> str:
        return self.logs.getvalue() + "".join(self.command_output)

    def dump(self) -> Dump:
        return pg_dump(POSTGRES_SERVER, self.harness.app.settings.store.url.rsplit("/", 1)[1])


@pytest.fixture(scope="module")
def debug_logs() -> Iterator[io.StringIO]:
    """Every log record of this process at debug, ours and the libraries', into a buffer; the
    process-wide logging state restored afterwards."""
    buffer = io.StringIO()
    with logging_restored():
        logs.configure("debug", "json", stream=buffer)
        yield buffer


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory, debug_logs: io.StringIO) -> Iterator[Flow]:
    """The canaries' whole life: links and consents, six events, the hub, three connectors,
    the hub again for their receipts."""
    folder = tmp_path_factory.mktemp("canaries")
    if not Path(PG_DUMP).exists():
        unavailable(f"{PG_DUMP} is missing: install PostgreSQL's client (scripts/services.sh)")
    try:
        broker = EmbeddedBroker()
    except ConfigError as exc:
        unavailable(f"no Tansu broker binary: {exc}")
    with broker, fresh_postgres_database("tellonce_canary") as url:
        SIGNING_KEYS[url] = folder / "audit-key.pem"
        app = signing(App.from_settings(settings_for(url, broker.bootstrap)))
        try:
            app.ensure_topics(app.kafka())
            harness = Harness(app, app.kafka())
            person = _client(harness)
            bystander = harness.client(
                {"bc-service-bc": "SBC-BYSTANDER-1", "cra-individual": "CRA-BYSTANDER-1"}
            )
            _publish(harness)
            flow = Flow(harness, person, bystander, folder, debug_logs)
            with LocalHTTPServer(_receiver(flow)) as server:
                _run(flow, server.url)
            yield flow
        finally:
            app.close()
            SIGNING_KEYS.pop(url, None)


def _client(harness: Harness) -> str:
    """The client at five programs, consenting to tell the CRA, MSP and CPP."""
    service = harness.app.consent()
    evidence = Evidence("counter", "staff-1", datetime.now(UTC))
    person = service.link("bc-service-bc", SBC_ID, evidence)
    ids = {"bc-vital-statistics": VS_ID, "cra-individual": CRA_ID, "bc-msp": MSP_ID}
    for program, local_id in (*ids.items(), ("esdc-cpp", CPP_ID)):
        service.link(program, local_id, evidence, to=person)
    given = ConsentState.GIVEN
    service.record(person, "cra-individual", ["AddressChanged", "DeathReported"], given, evidence)
    service.record(person, "bc-msp", ["AddressChanged", "DeathReported"], given, evidence)
    everything = ["AddressChanged", "DeathReported", "NameChanged"]
    service.record(person, "esdc-cpp", everything, given, evidence)
    return person


def _publish(harness: Harness) -> None:
    """Three good events and three the hub refuses, carrying the same canaries."""
    now, codec = datetime.now(UTC), harness.app.codec
    address = {
        "lines": [STREET],
        "municipality": "Victoria",
        "province": "BC",
        "postal_code": POSTAL_CODE,
    }
    moved = {
        "subject_id": SBC_ID,
        "effective_date": date(2026, 1, 1),
        "new_address": address,
        "mailing_address": None,
    }
    renamed = {
        "subject_id": SBC_ID,
        "effective_date": date(2026, 1, 1),
        "given_names": GIVEN_NAMES,
        "family_name": FAMILY_NAME,
        "reason": "MARRIAGE",
    }
    died = {
        "subject_id": VS_ID,
        "date_of_death": date(2026, 2, 1),
        "province_of_death": "BC",
        "death_registration_number": DEATH_NUMBER,
        "informant_relationship": "SPOUSE",
    }

    good = [
        ("bc-service-bc", "AddressChanged", moved),
        ("bc-service-bc", "NameChanged", renamed),
        ("bc-vital-statistics", "DeathReported", died),
    ]
    for source, event_type, payload in good:
        key, value, headers, _ = event_message(
            codec, source=source, event_type=event_type, payload=payload, at=now
        )
        harness.send_signed(LIFEEVENTS_TOPIC, key, value, headers)
    # Refused: a byte too many; a death in the future; ce_subject naming another client.
    key, value, headers, _ = event_message(
        codec, source="bc-service-bc", event_type="AddressChanged", payload=moved, at=now
    )
    harness.send_signed(LIFEEVENTS_TOPIC, key, value + b"\x00", headers)
    future = died | {"date_of_death": date(2099, 1, 1)}
    key, value, headers, _ = event_message(
        codec, source="bc-vital-statistics", event_type="DeathReported", payload=future, at=now
    )
    harness.send_signed(LIFEEVENTS_TOPIC, key, value, headers)
    key, value, _, _ = event_message(
        codec, source="bc-service-bc", event_type="NameChanged", payload=renamed, at=now
    )
    ce_type = "ca.tellonce.lifeevents.NameChanged"
    mismatched = cloudevent_headers(
        "ce-refused-3", ce_type, now, subject=MSP_ID, source="bc-service-bc"
    )
    harness.send_signed(LIFEEVENTS_TOPIC, key, value, mismatched)


def _receiver(flow: Flow) -> Any:
    """CPP's endpoint: stores every notice but the name change, which it refuses in words
    that quote the name."""

    def respond(request: Request) -> Reply:
        if json.loads(request.body)["event_type"] == "NameChanged":
            said = f"family_name {FAMILY_NAME} does not match our records"
            return Reply(422, body=said.encode())
        flow.webhook_bodies.append(request.body)
        return Reply(201)

    return respond


def _staging_database(path: Path) -> str:
    """MSP's staging table, with a rule of its own that refuses the death notice; SQLite's
    error quotes the rule, canary included."""
    url = f"sqlite:///{path}"
    table = staging_table()
    table.append_constraint(CheckConstraint(f"body NOT LIKE '%{DEATH_NUMBER}%'"))
    engine = create_engine(url)
    try:
        table.metadata.create_all(engine)
    finally:
        engine.dispose()
    return url


def _run(flow: Flow, webhook_url: str) -> None:
    harness = flow.harness
    totals = harness.run_worker(INBOUND)
    assert (totals.accepted, totals.rejected) == (3, 3)
    sinks = {
        "cra-individual": ("filedrop", {"directory": str(flow.folder / "cra-inbox")}),
        "bc-msp": ("sqltable", {"url": _staging_database(flow.folder / "msp.db")}),
        "esdc-cpp": ("webhook", {"url": webhook_url, "secret": WEBHOOK_SECRET}),
    }
    delivered = harness.run_connectors(sinks)
    assert {r: (t.delivered, t.failed) for r, t in delivered.items()} == {
        "cra-individual": (2, 0),
        "bc-msp": (1, 1),
        "esdc-cpp": (2, 1),
    }
    harness.run_worker_until(lambda: len(harness.app.store.deliveries()) >= NOTICES)
    assert len(harness.app.store.deliveries()) == NOTICES


# -- delivery: the back offices hold the values ------------------------------------------------


def test_the_canaries_reached_the_three_back_offices(flow: Flow) -> None:
    """The file drop, the staging table and the webhook hold the canaries: real traffic."""
    files = "".join(f.read_text() for f in (flow.folder / "cra-inbox").glob("*.json"))
    assert [c for c in (STREET, DEATH_NUMBER, CRA_ID) if c not in files] == []
    with sqlite3.connect(flow.folder / "msp.db") as db:
        rows = db.execute("SELECT subject_id, body FROM tellonce_inbox").fetchall()
    assert [(subject, POSTAL_CODE in body) for subject, body in rows] == [(MSP_ID, True)]
    bodies = b"".join(flow.webhook_bodies).decode()
    assert [c for c in (STREET, DEATH_NUMBER, CPP_ID) if c not in bodies] == []


# -- nowhere else ----------------------------------------------------------------------------


def test_the_hub_database_holds_no_canary(flow: Flow) -> None:
    """A pg_dump of the hub's database: no canary in any table, as text, hex or base64."""
    dump = flow.dump()
    assert dump.tables["outbox"]  # the notices are kept (sealed) for their retention
    assert dump.hits_by_table(CANARIES) == {}


def test_the_rejected_topic_holds_no_canary(flow: Flow) -> None:
    """The three refusals went out on the rejected topic without a canary in key, value or
    headers."""
    records = read_topic(flow.harness.kafka, REJECTED_TOPIC)
    assert len(records) == 3
    found = sum(
        byte_hits(r.key, CANARIES)
        + byte_hits(r.value, CANARIES)
        + sum(byte_hits(v, CANARIES) for _, v in r.headers)
        for r in records
    )
    assert found == 0


def test_the_audit_bundle_holds_no_canary(flow: Flow) -> None:
    """The exported audit bundle, every leaf signed, holds no canary."""
    assert flow.cli("audit", "checkpoint").returncode == 0
    bundle = flow.folder / "bundle.jsonl"
    exported = flow.cli("audit", "export", str(bundle))
    assert exported.returncode == 0, exported.stderr
    text = bundle.read_text()
    kinds = {json.loads(line).get("kind") for line in text.splitlines()}
    assert {"accepted", "rejected", "disclosed", "delivered"} <= kinds
    assert hits(text, CANARIES) == 0


def test_dlq_list_shows_ids_and_errors_but_no_canary(flow: Flow) -> None:
    """`dlq list` names each refused notice and the error class, never what the back office
    said about it (which quoted a canary) nor the notice itself."""
    shown = []
    for recipient, error in (("bc-msp", "IntegrityError"), ("esdc-cpp", "HTTP422")):
        listed = flow.cli("dlq", "list", recipient, "--json")
        assert listed.returncode == 0, listed.stderr
        (letter,) = json.loads(listed.stdout)
        assert letter["error"] == error
        text = flow.cli("dlq", "list", recipient)
        assert text.returncode == 0, text.stderr
        shown += [listed.stdout, text.stdout]
    assert hits("".join(shown), CANARIES) == 0


def sealed_of(dump: Dump, person: str) -> list[tuple[bytes, bytes]]:
    """Every value the dump holds sealed for ``person``: (ciphertext, associated data)."""
    found = [
        (bytea(row["local_id_sealed"]), link_aad(person, row["program"]))
        for row in dump.tables["identity_links"]
        if row["person_id"] == person and row["local_id_sealed"] != NULL
    ]
    for row in dump.tables["outbox"]:
        if row["person_id"] == person:
            found.append((bytea(row["value"]), outbox_aad(row["message_id"], "value")))
            found.append((bytea(row["key"]), outbox_aad(row["message_id"], "key")))
    return found


def data_keys(dump: Dump) -> dict[str, WrappedKey]:
    """The wrapped data key of every person the dump still holds one for."""
    return {
        row["person_id"]: WrappedKey(row["kek_id"], bytea(row["wrapped_key"]))
        for row in dump.tables["persons"]
        if row["wrapped_key"] != NULL
    }


def test_erasure_leaves_nothing_of_the_person_that_opens_and_the_audit_whole(
    flow: Flow,
) -> None:
    """Before `person erase`, the person's sealed local ids and notices in a dump open with the
    hub's keys; after it, not one opens with any key the hub holds (a fresh vault, the KEKs,
    every data key left in the store), the other client's still do, the dump still holds no
    canary, and `audit verify` and `audit reconcile` pass with an `erased` leaf in the log."""
    app = flow.harness.app
    before = flow.dump()
    sealed = sealed_of(before, flow.person)
    assert len(sealed) == 5 + 2 * NOTICES  # five local ids; each notice's key and value
    key = data_keys(before)[flow.person]
    opened = b"".join(app.vault().open(flow.person, key, data, aad) for data, aad in sealed)
    assert byte_hits(opened, CANARIES) > 0  # they were the canaries, and the keys opened them

    erased = flow.cli("person", "erase", f"bc-service-bc:{SBC_ID}", "--force", "--json")
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["links"] == 5
    assert hits(erased.stdout, CANARIES) == 0

    after = flow.dump()
    left = data_keys(after)
    assert flow.person not in left
    assert sealed_of(after, flow.person) == []  # blanked and deleted, not just unreadable
    assert after.hits_by_table(CANARIES) == {}
    fresh = App.from_settings(app.settings)  # nothing cached from before the erasure
    try:
        vault = fresh.vault()
        for data, aad in sealed:
            for candidate in [None, *left.values()]:
                with pytest.raises(DecryptionError):
                    vault.open(flow.person, candidate, data, aad)
        bystander = sealed_of(after, flow.bystander)
        assert [vault.open(flow.bystander, left[flow.bystander], d, a) for d, a in bystander] == [
            b"SBC-BYSTANDER-1",
            b"CRA-BYSTANDER-1",
        ]
    finally:
        fresh.close()

    verified = flow.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    reconciled = flow.cli("audit", "reconcile")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert flow.cli("audit", "checkpoint").returncode == 0
    bundle = flow.folder / "bundle-after-erasure.jsonl"
    assert flow.cli("audit", "export", str(bundle)).returncode == 0
    text = bundle.read_text()
    assert "erased" in {json.loads(line).get("kind") for line in text.splitlines()}
    assert hits(text, CANARIES) == 0


def test_no_log_line_holds_a_canary(flow: Flow) -> None:
    """Hub, connectors and commands at debug: not one canary in any log line."""
    text = flow.captured_logs()
    events = [json.loads(line)["event"] for line in text.splitlines()]
    assert "notification dead-lettered" in events  # the refusals were logged
    assert hits(text, CANARIES) == 0
