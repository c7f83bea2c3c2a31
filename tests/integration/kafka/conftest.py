"""Fixtures of the Kafka tier: one Apache Kafka node (KRaft) for this folder's tests, stopped
after the last of them (not idling through the rest of the suite), emptied before each test,
and the integration tier's ``app`` and ``harness`` rebuilt on it.

The store fixtures (``store_url``, ``staging_url``) are the integration tier's, inherited from
its conftest: each test still gets a new SQLite file or PostgreSQL database.

A missing Java, Maven or jar cache fails the tier when CI=true and skips it with the reason
elsewhere (``unavailable``). ``KAFKA_TIER_NODES=3`` runs it on three nodes (replication factor
3, min.insync.replicas=2) instead of one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.bootstrap import App

from ..conftest import unavailable
from ..harness import SIGNING_KEYS, Harness, settings_for, signing, tuned
from .cluster import KafkaCluster
from .jars import KafkaUnavailable, jar_cache


@pytest.fixture(scope="package")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """The tier's Kafka cluster; its logs stay under pytest's temporary folder (kept for the
    last three runs), in ``kafka0/node-<id>/server.log``."""
    try:
        jars = jar_cache()
    except KafkaUnavailable as exc:
        unavailable(f"no Apache Kafka for the Kafka tier: {exc}")
    nodes = int(os.environ.get("KAFKA_TIER_NODES", "1"))
    with KafkaCluster(jars, tmp_path_factory.mktemp("kafka"), nodes=nodes) as cluster:
        yield cluster


@pytest.fixture
def kafka(kafka_cluster: KafkaCluster) -> KafkaCluster:
    """The tier's cluster with no topic and no consumer group left by an earlier test."""
    assert all(n.running for n in kafka_cluster.nodes), "a Kafka node died during the tier"
    kafka_cluster.reset()
    return kafka_cluster


@pytest.fixture
def app(store_url: str, kafka: KafkaCluster, tmp_path: Path) -> Iterator[App]:
    """The hub's composition root on the test's store and the Kafka cluster, with topics
    replicated as the cluster allows (the setting production sets)."""
    SIGNING_KEYS[store_url] = tmp_path / "audit-key.pem"
    settings = tuned(
        settings_for(store_url, kafka.bootstrap),
        broker={"replication_factor": kafka.replication_factor},
    )
    application = signing(App.from_settings(settings))
    try:
        application.ensure_topics(application.kafka())
        yield application
    finally:
        application.close()
        SIGNING_KEYS.pop(store_url, None)


@pytest.fixture
def harness(app: App, kafka: KafkaCluster) -> Harness:
    return Harness(app, app.kafka())


@pytest.fixture
def broker(kafka: KafkaCluster) -> KafkaCluster:
    """The Kafka cluster where a Tansu scenario asks for the integration tier's ``broker``; such
    scenarios read only its ``bootstrap`` (one that stops it stays on Tansu, see
    test_scenarios.py)."""
    return kafka
