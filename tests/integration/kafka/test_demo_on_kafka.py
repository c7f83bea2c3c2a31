"""``tellonce demo --bootstrap``: the demo's self-checking scenario on the tier's Kafka cluster,
twice on the same topics, as a user runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
