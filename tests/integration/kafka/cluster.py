"""Apache Kafka for the Kafka tier: KRaft nodes started from the jars of scripts/kafka-jars.sh.

``KafkaCluster(jars, workdir, nodes=1)`` is one combined broker+controller node; ``nodes=3``
is a cluster of three (replication factor 3, ``min.insync.replicas=2``, every node a voter),
the production shape. Each node gets free loopback ports, its own folder under ``workdir``
(``node-<id>/``: server.properties, data, ``server.log`` with the JVM's output), a small heap,
and is started with ``kafka.Kafka`` after ``kafka.tools.StorageTool format``. Start-up waits,
bounded, until an admin client sees every broker; stop sends SIGTERM to the node's own pid,
then SIGKILL after a bound. Nothing else is ever signalled. The folder stays on disk: pytest
keeps the temporary folders of its last runs, so a failed run's logs can be read.

Run by hand (prints the bootstrap address; Ctrl-C stops it and keeps the logs)::

    .venv/bin/python -m tests.integration.kafka.cluster [--nodes 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from .jars import KafkaUnavailable, jar_cache
from .security import ADMIN, ClusterSecurity

HOST = "127.0.0.1"
HEAP = "-Xmx384m"
FORMAT_LIMIT_S = 60.0
START_LIMIT_S = 120.0  # JVM start, KRaft election, first metadata on 2 busy cores
STOP_LIMIT_S = 30.0  # controlled shutdown before SIGKILL
LONE_NODE_S = 5.0  # the last node of a cluster being stopped, before SIGKILL (see stop)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cluster_id() -> str:
    """A KRaft cluster id as Kafka makes them: a random UUID in URL-safe base64, no padding."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids these: they read as command-line options
            return text


def _die_with_parent() -> Callable[[], None] | None:
    """SIGKILL the node when the thread that started it ends (Linux), so a killed test run
    leaves no JVM behind; its data stays on disk."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return preexec


LOG4J2 = """\
appender.file.type = File
appender.file.name = file
appender.file.fileName = {path}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka_request.name = kafka.request.logger
logger.kafka_request.level = WARN
"""


@dataclass
class Node:
    """One KRaft node: its id, ports, folder and (while running) process."""

    node_id: int
    port: int
    controller_port: int
    folder: Path
    tls_port: int = 0  # the mutual-TLS listener of a secured cluster (``port``: SASL_SSL)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"


class KafkaCluster:
    """``nodes`` combined broker+controller KRaft nodes on loopback; a context manager."""

    def __init__(
        self,
        jars: Path,
        workdir: Path,
        *,
        nodes: int = 1,
        heap: str = HEAP,
        start_limit_s: float = START_LIMIT_S,
        security: ClusterSecurity | None = None,
    ) -> None:
        self.jars = jars
        self.workdir = workdir
        self.heap = heap
        self.start_limit_s = start_limit_s
        self.security = security  # None: PLAINTEXT, no authorizer (see security.py)
        self.cluster_id = cluster_id()
        self.nodes = [
            Node(i, free_port(), free_port(), workdir / f"node-{i}", free_port() if security else 0)
            for i in range(1, nodes + 1)
        ]
        self.replication_factor = min(nodes, 3)
        self.min_insync_replicas = 2 if nodes >= 3 else 1

    @property
    def bootstrap(self) -> str:
        """Where clients connect: PLAINTEXT, or SASL_SSL on a secured cluster."""
        return ",".join(n.address for n in self.nodes)

    @property
    def sasl_ssl_bootstrap(self) -> str:
        assert self.security is not None, "a plain cluster has no SASL_SSL listener"
        return self.bootstrap

    @property
    def mtls_bootstrap(self) -> str:
        assert self.security is not None, "a plain cluster has no mutual-TLS listener"
        return ",".join(f"{HOST}:{n.tls_port}" for n in self.nodes)

    def properties(self, node: Node) -> str:
        voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in self.nodes)
        rf, isr = self.replication_factor, self.min_insync_replicas
        settings = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{HOST}:{node.port},CONTROLLER://{HOST}:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": node.folder / "data",
            # Production shape: topics exist because tellonce created them, with its settings.
            "auto.create.topics.enable": "false",
            "default.replication.factor": rf,
            "min.insync.replicas": isr,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": isr,
            "unclean.leader.election.enable": "false",
            # Small machine: fewer internal partitions, no delay before the first rebalance.
            "offsets.topic.num.partitions": 5,
            "transaction.state.log.num.partitions": 5,
            "group.initial.rebalance.delay.ms": 0,
            # Tests that kill -9 a member keep its session short (2 s) so that its partitions
            # move on quickly; Kafka's floor is 6 s, Tansu has none.
            "group.min.session.timeout.ms": 1000,
            "num.network.threads": 2,
            "num.io.threads": 2,
            "num.recovery.threads.per.data.dir": 1,
        }
        if self.security is not None:
            settings.update(
                self.security.broker_properties(node.port, node.tls_port, node.controller_port)
            )
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _java(self, node: Node, main: str, *args: str) -> list[str]:
        java = shutil.which("java") or "java"
        return [
            java,
            self.heap,
            "-Xms64m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # C1 only: a faster start, less CPU for the JIT
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={node.folder / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={node.folder}",
            "-cp",
            f"{self.jars}/*",
            main,
            *args,
        ]

    def format(self, node: Node) -> None:
        """Write the node's configuration and format its KRaft storage (once; kept on restart)."""
        node.folder.mkdir(parents=True, exist_ok=True)
        config = node.folder / "server.properties"
        config.write_text(self.properties(node), encoding="utf-8")
        (node.folder / "log4j2.properties").write_text(
            LOG4J2.format(path=node.log), encoding="utf-8"
        )
        done = subprocess.run(
            self._java(
                node,
                "kafka.tools.StorageTool",
                "format",
                *("-t", self.cluster_id, "-c", str(config)),
                *(self.security.format_args() if self.security else ()),
            ),
            capture_output=True,
            text=True,
            timeout=FORMAT_LIMIT_S,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"StorageTool format of node {node.node_id} failed ({done.returncode}): "
                f"{(done.stdout + done.stderr).strip()[-2000:]}"
            )

    def start_node(self, node: Node) -> None:
        """Start one node on its existing storage (formatting it the first time)."""
        if not (node.folder / "data" / "meta.properties").exists():
            self.format(node)
        with open(node.log, "ab") as out:
            node.process = subprocess.Popen(
                [
                    "nice",
                    *self._java(node, "kafka.Kafka", str(node.folder / "server.properties")),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent(),
            )

    def start(self) -> KafkaCluster:
        """Start every node; return once an admin client sees them all (bounded)."""
        try:
            for node in self.nodes:
                self.start_node(node)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, limit_s: float | None = None) -> None:
        """Until an admin client lists topics and sees every running node as a broker."""
        deadline = time.monotonic() + (limit_s or self.start_limit_s)
        expected = {n.node_id for n in self.nodes if n.process is not None}
        last = "no answer yet"
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise RuntimeError(
                        f"Kafka node {node.node_id} exited with {node.process.returncode} "
                        f"at start-up; log {node.log}:\n{node.tail()}"
                    )
            if not all(self._accepts(n) for n in self.nodes if n.process is not None):
                last = "a port is not open yet"
                time.sleep(0.2)
                continue
            try:
                admin = self.admin()
            except KafkaError as exc:
                last = repr(exc)
                time.sleep(0.5)
                continue
            try:
                admin.list_topics()
                seen = {b["broker_id"] for b in admin.describe_cluster()["brokers"]}
                if expected <= seen:
                    return
                last = f"brokers seen: {sorted(seen)}"
            except KafkaError as exc:
                last = repr(exc)
            finally:
                admin.close()
            time.sleep(0.5)
        logs = "\n".join(f"--- node {n.node_id}: {n.log}\n{n.tail(1500)}" for n in self.nodes)
        raise RuntimeError(
            f"Kafka at {self.bootstrap} not ready within {limit_s or self.start_limit_s:.0f} s "
            f"({last})\n{logs}"
        )

    @staticmethod
    def _accepts(node: Node) -> bool:
        """The node's client port takes connections (before that, kafka-python backs off for
        seconds at a time)."""
        try:
            socket.create_connection((HOST, node.port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def admin(self) -> KafkaAdminClient:
        """An admin client; on a secured cluster, the super user ``admin`` over SASL_SSL."""
        secured = self.security.sasl_client(ADMIN) if self.security else {}
        return KafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id="tellonce-kafka-tier",
            request_timeout_ms=10000,
            **secured,
        )

    def reset(self, limit_s: float = 30.0) -> None:
        """Delete every topic but Kafka's internal ones and every consumer group, so that a
        test meets the cluster as new (what a fresh Tansu per test gives the Tansu tier)."""
        deadline = time.monotonic() + limit_s
        admin = self.admin()
        try:
            while True:
                topics = [t for t in admin.list_topics() if not t.startswith("__")]
                groups = [g["group_id"] for g in admin.list_groups()]
                if not topics and not groups:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"could not empty the cluster: {topics=} {groups=}")
                if topics:
                    admin.delete_topics(topics, raise_errors=False)
                if groups:
                    # A group whose last member has not left yet refuses; the next round retries.
                    admin.delete_groups(groups)
                time.sleep(0.2)
        finally:
            admin.close()

    def stop_node(self, node: Node, *, kill: bool = False) -> None:
        """SIGTERM (controlled shutdown) or, with ``kill``, SIGKILL the node's own process."""
        process, node.process = node.process, None
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=STOP_LIMIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        """Stop every node: SIGTERM to each at once, then SIGKILL to those still up after
        the bound. In a cluster, the last node up has lost its quorum and waits for it
        forever (measured: the whole 30 s), so it gets LONE_NODE_S once the others are gone."""
        running = [n.process for n in self.nodes if n.process is not None]
        for node in self.nodes:
            node.process = None
        for process in running:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_LIMIT_S
        alone_since: float | None = None
        while time.monotonic() < deadline:
            up = [p for p in running if p.poll() is None]
            if not up:
                return
            if len(running) > 1 and len(up) == 1:
                alone_since = alone_since or time.monotonic()
                if time.monotonic() - alone_since > LONE_NODE_S:
                    break
            time.sleep(0.1)
        for process in running:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    def restart(self) -> None:
        """Stop every node (``stop``: in a cluster the last one is killed, and recovers its
        log on start) and start them again on the same ports and storage; return once they
        are ready."""
        self.stop()
        self.start()

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="folder for the nodes (default: a new temp dir)")
    args = parser.parse_args()
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="tellonce-kafka-"))
    try:
        jars = jar_cache()
    except KafkaUnavailable as exc:
        print(f"kafka tier: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    with KafkaCluster(jars, workdir, nodes=args.nodes) as cluster:
        print(
            f"# {args.nodes} node(s) ready in {time.monotonic() - started:.1f} s; logs in {workdir}"
        )
        print(f"export TELLONCE_BROKER__BOOTSTRAP_SERVERS={cluster.bootstrap}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    raise SystemExit(main())
