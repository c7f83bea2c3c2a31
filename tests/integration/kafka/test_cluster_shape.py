"""The launcher's configuration, checked without starting a JVM: one node is its own quorum,
three nodes are the production shape (replication factor 3, min.insync.replicas=2)."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

from .cluster import KafkaCluster, cluster_id
from .security import ClusterSecurity


def configs(cluster: KafkaCluster) -> list[dict[str, str]]:
    """Each node's server.properties as a dict."""
    return [
        dict(line.split("=", 1) for line in cluster.properties(node).splitlines())
        for node in cluster.nodes
    ]


def test_three_nodes_are_three_voters_replicating_three_ways(tmp_path: Path) -> None:
    """With three nodes every node votes, topics replicate 3 ways and writes need 2 in sync."""
    cluster = KafkaCluster(tmp_path / "jars", tmp_path, nodes=3)
    nodes = configs(cluster)
    voters = {f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in cluster.nodes}
    assert [set(c["controller.quorum.voters"].split(",")) for c in nodes] == [voters] * 3
    assert [c["node.id"] for c in nodes] == ["1", "2", "3"]
    for key, value in {
        "default.replication.factor": "3",
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "min.insync.replicas": "2",
        "transaction.state.log.min.isr": "2",
        "unclean.leader.election.enable": "false",
        "auto.create.topics.enable": "false",
    }.items():
        assert {c[key] for c in nodes} == {value}, key
    ports = [n.port for n in cluster.nodes] + [n.controller_port for n in cluster.nodes]
    assert len(set(ports)) == 6
    assert len({c["log.dirs"] for c in nodes}) == 3
    assert all(c["log.dirs"].startswith(str(tmp_path)) for c in nodes)
    assert cluster.bootstrap == ",".join(f"127.0.0.1:{n.port}" for n in cluster.nodes)


def test_one_node_is_its_own_quorum_without_replication(tmp_path: Path) -> None:
    """A single node votes for itself, and topics have one replica needing one in sync."""
    cluster = KafkaCluster(tmp_path / "jars", tmp_path, nodes=1)
    (config,) = configs(cluster)
    (node,) = cluster.nodes
    assert config["controller.quorum.voters"] == f"1@127.0.0.1:{node.controller_port}"
    assert config["listeners"] == (
        f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
    )
    assert (config["default.replication.factor"], config["min.insync.replicas"]) == ("1", "1")


def test_cluster_ids_are_kafka_uuids() -> None:
    """A cluster id is 16 random bytes in URL-safe base64 without padding, never led by '-'."""
    ids = {cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for text in ids:
        assert len(text) == 22
        assert not text.startswith("-")
        assert len(base64.urlsafe_b64decode(text + "==")) == 16


def test_a_secured_cluster_has_no_plaintext_listener_and_denies_by_default(
    tmp_path: Path,
) -> None:
    """Secured nodes listen with SASL_SSL and mutual TLS only, talk to each other and to the
    quorum over mutual TLS, refuse what no ACL allows, and keep their private key 0600."""
    security = ClusterSecurity.create(tmp_path / "pki", ["hub"])
    cluster = KafkaCluster(tmp_path / "jars", tmp_path, nodes=3, security=security)
    for config, node in zip(configs(cluster), cluster.nodes, strict=True):
        assert config["listener.security.protocol.map"] == "SCRAM:SASL_SSL,MTLS:SSL,CONTROLLER:SSL"
        assert config["listeners"] == (
            f"SCRAM://127.0.0.1:{node.port},MTLS://127.0.0.1:{node.tls_port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}"
        )
        assert config["inter.broker.listener.name"] == "MTLS"
        assert config["ssl.client.auth"] == "required"
        assert config["allow.everyone.if.no.acl.found"] == "false"
        assert config["super.users"] == "User:broker;User:admin"
    assert cluster.sasl_ssl_bootstrap == cluster.bootstrap
    assert len({n.tls_port for n in cluster.nodes} | {n.port for n in cluster.nodes}) == 6
    keys = [security.pki.broker_keystore, security.client_files("hub")[1]]
    assert {stat.S_IMODE(k.stat().st_mode) for k in keys} == {0o600}
    users = security.format_args()[1::2]
    assert [u.split("=[name=")[1].split(",")[0] for u in users] == ["admin", "hub"]
