"""``tellonce demo --bootstrap``: the demo's self-checking scenario on the tier's Kafka cluster,
twice on the same topics, as a user runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from kafka.errors import KafkaError

from hub.wire.topics import connector_group
from tests.watchdog import wait_until

from ..harness import Harness
from .cluster import KafkaCluster

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

TELLONCE = shutil.which("tellonce", path=str(Path(sys.executable).parent)) or "tellonce"
TOTALS = re.compile(
    r"published (\d+), delivered (\d+), withheld (\d+), rejected (\d+), duplicates ignored (\d+)"
)


def demo(kafka: KafkaCluster, *args: str) -> subprocess.CompletedProcess[str]:
    """The demo on the cluster, with topics replicated as the cluster requires and no other
    TELLONCE_* setting of this process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
    env["TELLONCE_BROKER__REPLICATION_FACTOR"] = str(kafka.replication_factor)
    return subprocess.run(
        [TELLONCE, "demo", "--bootstrap", kafka.bootstrap, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


# This test found kafka-python 3.0.12 losing a connector's group join now and then (README,
# "A lost group join is replaced"); hub.adapters.kafka_join is the remedy it checks here too.
def test_demo_runs_twice_on_one_cluster_and_every_outcome_matches(kafka: KafkaCluster) -> None:
    """Two demo runs on the same cluster each match the scenario: the second, on topics holding
    the first's events, notices and receipts, starts where they end and counts the same."""
    first = demo(kafka)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"Kafka cluster at {kafka.bootstrap}" in first.stdout
    assert "every outcome matched the scenario" in first.stdout
    totals = TOTALS.search(first.stdout)
    assert totals is not None, first.stdout

    second = demo(kafka, "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    summary = json.loads(second.stdout)
    assert summary["matched"] is True, summary["mismatches"]
    counted = ["published", "delivered", "withheld", "rejected", "duplicates_ignored"]
    assert [summary[c] for c in counted] == [int(n) for n in totals.groups()]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_demo_refuses_a_cluster_where_a_connector_of_its_recipients_runs(
    harness: Harness, kafka: KafkaCluster, tmp_path: Path
) -> None:
    """With a connector of one of its recipients in its group, the demo stops with one line
    naming the group, exit 1: moving that group's offsets would skip its notices."""
    group = connector_group("cra-individual")
    runner = harness.app.connector(
        harness.kafka, "cra-individual", "filedrop", {"directory": str(tmp_path / "drop")}
    )
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    admin = kafka.admin()
    try:

        def joined() -> bool:
            try:
                return bool(admin.describe_groups([group])[group]["members"])
            except KafkaError:  # the group's coordinator may not be there yet
                return False

        wait_until(joined, 60, f"the connector never joined {group}")
        done = demo(kafka)
    finally:
        stop.set()
        thread.join(timeout=30)
        runner.close()
        admin.close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"tellonce: cannot set where consumer group {group} starts (CommitFailedError); is one "
        "of its members running on this cluster?"
    ]
