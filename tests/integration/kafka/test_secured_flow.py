"""tellonce itself on a secured Apache Kafka node: each role as its own principal, under the
ACLs of the README's threat model (``acls.py``), over SASL_SSL (SCRAM-SHA-512) or mutual TLS.

The ACL matrix (``test_acls.py``) probes each binding with raw clients; this module shows that
the real commands fit inside them: ``tellonce hub run`` as ``hub`` over SASL_SSL, ``tellonce
connector run`` as ``connector-cra-individual`` and ``tellonce publish`` as
``publisher-bc-service-bc`` over mutual TLS, ``tellonce dlq list`` as ``operator``. The store
is seeded in-process (no broker needed for that); every broker client is a tellonce process.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.bootstrap import App
from hub.model import DecisionOutcome

from ...keyring import connector_env, key_file
from ...watchdog import wait_until
from ..conftest import fresh_postgres_database
from ..harness import SIGNING_KEYS, Harness, address, address_payload, settings_for, signing
from ..test_crash_recovery import TELLONCE
from .cluster import KafkaCluster
from .faults import processes
from .secured import secured_kafka, tellonce_env  # noqa: F401  (the fixture, found by pytest)

pytestmark = [pytest.mark.integration, pytest.mark.kafka, pytest.mark.postgres]

PUBLISHER = "publisher-bc-service-bc"
RECIPIENT = "cra-individual"
CONNECTOR = f"connector-{RECIPIENT}"
EVENTS = 3
LIMIT_S = 90.0  # the hub's start (topics, fence), a connector's group join, on 2 busy cores


@pytest.fixture
def store_url() -> Iterator[str]:
    """PostgreSQL, the production store; the flow is the same on SQLite (see test_scenarios)."""
    with fresh_postgres_database("tellonce_secured") as url:
        yield url


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> KafkaCluster:
    """The module's secured node (``secured_kafka``, with every role's ACLs)."""
    secured: KafkaCluster = request.getfixturevalue("secured_kafka")
    return secured


@pytest.fixture
def harness(store_url: str, cluster: KafkaCluster, tmp_path: Path) -> Iterator[Harness]:
    """An App on the store only: it seeds people and consents and reads the outcome; its own
    broker settings are never used to connect (each process gets its role's)."""
    SIGNING_KEYS[store_url] = tmp_path / "audit-key.pem"
    app = signing(App.from_settings(settings_for(store_url, cluster.sasl_ssl_bootstrap)))
    try:
        yield Harness(app, app.kafka())
    finally:
        app.close()
        SIGNING_KEYS.pop(store_url, None)


def tellonce(harness: Harness, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``tellonce *args`` to its end, bounded, on the harness's store with a role's ``env``."""
    return subprocess.run(
        [TELLONCE, *args],
        env=harness.env(**env),
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        check=False,
    )


def publish_args(subject: str, n: int = 0) -> tuple[str, ...]:
    """``tellonce publish`` of one address change about ``subject``, signed with the
    publisher's key."""
    payload = address_payload(subject, new_address=address(f"{n} Secure St"))
    return (
        "publish",
        "bc-service-bc",
        "AddressChanged",
        "--json",
        json.dumps(payload, default=str),
        "--key",
        str(key_file("bc-service-bc")),
    )


def publish(harness: Harness, cluster: KafkaCluster, subject: str, n: int) -> str:
    """Publish as the publisher over mutual TLS; its ce_id."""
    result = tellonce(
        harness, tellonce_env(cluster, PUBLISHER, mutual_tls=True), *publish_args(subject, n)
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_each_role_runs_as_its_own_principal_within_its_acls(
    harness: Harness, cluster: KafkaCluster, tmp_path: Path
) -> None:
    """A connector started before the hub stops with one line saying to start the hub first;
    then the hub (SASL_SSL), the connector and the publisher (mutual TLS) deliver every event
    once with receipts, and the operator lists the (empty) dead letters."""
    for i in range(EVENTS):
        harness.client({"bc-service-bc": f"SBC-S{i}", RECIPIENT: f"CRA-S{i}"}, [RECIPIENT])
    drop = tmp_path / "drop"
    drop.mkdir()
    connector_args = ("connector", "run", RECIPIENT, "--sink", "filedrop")
    connector_args += ("--option", f"directory={drop}")
    as_connector = tellonce_env(cluster, CONNECTOR, mutual_tls=True) | connector_env(RECIPIENT)

    early = tellonce(harness, as_connector, *connector_args)
    assert early.returncode == 2, early.stderr
    assert "may not create them" in early.stderr
    assert "start 'tellonce hub run' first" in early.stderr
    assert "Traceback" not in early.stderr

    hub = processes.start(harness, tmp_path, "hub", "hub", "run", **tellonce_env(cluster, "hub"))
    connector = None
    try:
        # The hub creates every topic before it joins its group; the connector needs its own.
        wait_until(
            lambda: hub.check() and f"tellonce.notify.{RECIPIENT}.v1" in topics(cluster),
            LIMIT_S,
            f"the hub created no topics within {LIMIT_S:.0f} s:\n{hub.tail()}",
        )
        connector = processes.start(harness, tmp_path, "connector", *connector_args, **as_connector)
        ids = [publish(harness, cluster, f"SBC-S{i}", i) for i in range(EVENTS)]
        assert len(set(ids)) == EVENTS

        def delivered() -> int:
            assert connector is not None
            assert connector.check()
            assert hub.check()
            return sum(d.status == "delivered" for d in harness.app.store.deliveries())

        wait_until(
            lambda: delivered() == EVENTS,
            LIMIT_S,
            f"{delivered()} of {EVENTS} receipts within {LIMIT_S:.0f} s:\n"
            f"{hub.tail()}\n{connector.tail()}",
        )
        delivered_totals = connector.stop()
        hub_totals = hub.stop()
    finally:
        for process in (connector, hub):
            if process is not None:
                process.kill()
    assert delivered_totals["delivered"] == EVENTS
    assert hub_totals["hub"]["accepted"] == EVENTS
    disclosed = [
        d.event_id
        for d in harness.app.store.decisions()
        if d.recipient == RECIPIENT and d.outcome == DecisionOutcome.DISCLOSED
    ]
    assert sorted(disclosed) == sorted(ids)

    listed = tellonce(
        harness, tellonce_env(cluster, "operator"), "dlq", "list", RECIPIENT, "--json"
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_a_wrong_password_stops_a_command_with_one_line(
    harness: Harness, cluster: KafkaCluster
) -> None:
    """``tellonce publish`` with a wrong SCRAM password exits 2 with one line naming the user
    and the setting to check, and neither the password nor a traceback."""
    env = tellonce_env(cluster, PUBLISHER) | {
        "TELLONCE_BROKER__SASL_PASSWORD": "not-the-password-4a7f"
    }
    result = tellonce(harness, env, *publish_args("SBC-X"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"'{PUBLISHER}'" in lines[0]
    assert "SCRAM-SHA-512" in lines[0]
    assert "TELLONCE_BROKER__SASL_PASSWORD" in lines[0]
    assert "not-the-password-4a7f" not in result.stderr + result.stdout


def topics(cluster: KafkaCluster) -> set[str]:
    admin = cluster.admin()
    try:
        return set(admin.list_topics())
    finally:
        admin.close()
