"""What only a real Kafka cluster shows: topics as tellonce's settings create them, and records
and topics that outlive a broker restart (Tansu, memory only, loses both)."""

from __future__ import annotations

import pytest

from hub.adapters.claims import ensure_claim_topic
from hub.wire.topics import HUB_TOPIC, LIFEEVENTS_TOPIC, notify_topic
from tests.watchdog import wait_until

from ..harness import PUBLISHER, Harness, address, address_payload
from .cluster import KafkaCluster

pytestmark = [pytest.mark.integration, pytest.mark.kafka]


def test_topics_have_the_configured_partitions_and_replication(
    harness: Harness, kafka: KafkaCluster
) -> None:
    """Every topic tellonce creates has the replication factor of its settings, and the
    partitions of its settings (the store fence's claim topic: one)."""
    broker = harness.app.settings.broker
    ensure_claim_topic(harness.kafka, broker.replication_factor)  # as a hub worker does
    required = {LIFEEVENTS_TOPIC, notify_topic("cra-individual"), HUB_TOPIC}

    def shapes() -> dict[str, tuple[int, set[int]]]:
        """Topic -> (partitions, replica counts), once the broker lists every required topic
        (a topic just created reaches the broker's metadata a moment later); empty before."""
        admin = kafka.admin()
        try:
            found = {
                t["name"]: (
                    len(t["partitions"]),
                    {len(p["replica_nodes"]) for p in t["partitions"]},
                )
                for t in admin.describe_topics()
                if not t["is_internal"]
            }
        finally:
            admin.close()
        return found if required <= set(found) else {}

    created = wait_until(shapes, 10, f"the broker does not list all of {sorted(required)}")
    expected = {t: (broker.topic_partitions, {broker.replication_factor}) for t in created}
    expected[HUB_TOPIC] = (1, {broker.replication_factor})
    assert created == expected


def test_records_and_offsets_survive_a_broker_restart(
    harness: Harness, kafka: KafkaCluster
) -> None:
    """After the cluster restarts on its storage, the notices sent before are still there and
    the hub decides the events published before and after it once each."""
    harness.client({PUBLISHER: "SBC-7", "cra-individual": "CRA-7"}, consents=["cra-individual"])
    handled = harness.publish(
        [address_payload("SBC-7", new_address=address(f"{n} Oak St")) for n in range(3)]
    )
    assert harness.run_worker(records=3).accepted == 3
    pending = harness.publish([address_payload("SBC-7", new_address=address("9 Oak St"))])

    kafka.restart()

    later = harness.publish([address_payload("SBC-7", new_address=address("10 Oak St"))])
    totals = harness.run_worker(records=2)
    assert (totals.accepted, totals.duplicates, totals.rejected) == (2, 0, 0)
    published = handled + pending + later
    assert [e.event_id for e in harness.app.store.events()] == published
    notices = [harness.decode(r.value) for r in harness.read(notify_topic("cra-individual"))]
    assert sorted(n["event_id"] for n in notices) == sorted(published)
