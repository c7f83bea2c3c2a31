"""Fixtures of the fault tests: always three Kafka nodes (replication factor 3,
min.insync.replicas=2), whatever KAFKA_TIER_NODES says, started once for this folder.

``kafka_cluster`` overrides the tier's: its ``kafka``, ``app`` and ``harness`` fixtures then run
on these three nodes. A test may kill and restart nodes; the next one starts from a cluster
whose nodes all run again (``kafka`` checks).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ...conftest import unavailable
from ..cluster import KafkaCluster
from ..jars import KafkaUnavailable, jar_cache

NODES = 3


@pytest.fixture(scope="package")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three nodes for the fault tests; their logs stay in pytest's temporary folder
    (``faults0/node-<id>/server.log``)."""
    try:
        jars = jar_cache()
    except KafkaUnavailable as exc:
        unavailable(f"no Apache Kafka for the Kafka tier: {exc}")
    with KafkaCluster(jars, tmp_path_factory.mktemp("faults"), nodes=NODES) as cluster:
        yield cluster
