"""A secured cluster ready for tellonce's roles: TLS and SCRAM listeners (``security.py``),
every role's ACLs applied (``acls.py``), and the settings a tellonce process of a role needs.

    with secured_cluster(jars, folder, tier_roles()) as cluster:
        env = tellonce_env(cluster, "hub")                   # SASL_SSL, SCRAM-SHA-512
        env = tellonce_env(cluster, "hub", mutual_tls=True)  # SSL with the hub's certificate

or, in a test module of the tier, the module-scoped fixture (imported, pytest finds it)::

    from .secured import secured_kafka  # noqa: F401

By hand (prints each role's environment; Ctrl-C stops the nodes and keeps their logs)::

    .venv/bin/python -m tests.integration.kafka.secured [--nodes 3] [--role hub] [--mtls]

The ``TELLONCE_BROKER__*`` names are those of the broker settings for secured clusters
(issue 13, item 1).
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kafka.admin import (
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePatternFilter,
    ResourceType,
)

from hub.config.directory import load_directory

from ..conftest import unavailable
from . import acls
from .cluster import KafkaCluster
from .jars import KafkaUnavailable, jar_cache
from .security import MECHANISM, ClusterSecurity

ACL_LIMIT_S = 10.0

EVERY_ACL = ACLFilter(
    principal=None,
    host="*",
    operation=ACLOperation.ANY,
    permission_type=ACLPermissionType.ANY,
    resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
)


def tier_roles() -> list[acls.Role]:
    """A principal per role of the shipped directory: the hub, each publisher, each
    subscriber's connector, each consent portal, and an operator."""
    programs = load_directory().programs
    recipients = [p.id for p in programs if p.subscriptions]
    return [
        acls.hub(),
        *(acls.publisher(p.id) for p in programs if p.publishes),
        *(acls.connector(r) for r in recipients),
        *(acls.portal(p.id) for p in programs if p.consent_portal),
        acls.operator(recipients),
    ]


@pytest.fixture(scope="module")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A secured node with the ACLs of ``tier_roles()``, for one test module."""
    try:
        jars = jar_cache()
    except KafkaUnavailable as exc:
        unavailable(f"no Apache Kafka for the Kafka tier: {exc}")
    with secured_cluster(jars, tmp_path_factory.mktemp("kafka-secured"), tier_roles()) as cluster:
        yield cluster


@contextmanager
def secured_cluster(
    jars: Path, folder: Path, roles: list[acls.Role], *, nodes: int = 1
) -> Iterator[KafkaCluster]:
    """Nodes with SASL_SSL and mutual-TLS listeners only, a SCRAM user and a certificate per
    role under ``folder``, and the roles' ACLs in force."""
    security = ClusterSecurity.create(folder / "pki", [role.principal for role in roles])
    with KafkaCluster(jars, folder, nodes=nodes, security=security) as cluster:
        expected = apply_acls(cluster, roles)
        wait_for_acls(cluster, expected)
        yield cluster


def apply_acls(cluster: KafkaCluster, roles: list[acls.Role]) -> int:
    admin = cluster.admin()
    try:
        return acls.apply(admin, roles)
    finally:
        admin.close()


def wait_for_acls(cluster: KafkaCluster, count: int, limit_s: float = ACL_LIMIT_S) -> None:
    """Until the brokers' authorizer lists ``count`` bindings (a new binding takes effect once
    the node has applied the metadata record that carries it)."""
    deadline = time.monotonic() + limit_s
    admin = cluster.admin()
    try:
        while True:
            found, _error = admin.describe_acls(EVERY_ACL)
            if len(found) >= count:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(found)} of {count} ACL bindings after {limit_s:.0f} s")
            time.sleep(0.1)
    finally:
        admin.close()


def tellonce_env(
    cluster: KafkaCluster, principal: str, *, mutual_tls: bool = False
) -> dict[str, str]:
    """The environment a tellonce process needs to reach ``cluster`` as ``principal``."""
    security = cluster.security
    if security is None:
        return {"TELLONCE_BROKER__BOOTSTRAP_SERVERS": cluster.bootstrap}
    common = {"TELLONCE_BROKER__SSL_CAFILE": str(security.ca_file)}
    if mutual_tls:
        cert, key = security.client_files(principal)
        return {
            "TELLONCE_BROKER__BOOTSTRAP_SERVERS": cluster.mtls_bootstrap,
            "TELLONCE_BROKER__SECURITY_PROTOCOL": "SSL",
            **common,
            "TELLONCE_BROKER__SSL_CERTFILE": str(cert),
            "TELLONCE_BROKER__SSL_KEYFILE": str(key),
        }
    return {
        "TELLONCE_BROKER__BOOTSTRAP_SERVERS": cluster.sasl_ssl_bootstrap,
        "TELLONCE_BROKER__SECURITY_PROTOCOL": "SASL_SSL",
        **common,
        "TELLONCE_BROKER__SASL_MECHANISM": MECHANISM,
        "TELLONCE_BROKER__SASL_USERNAME": principal,
        "TELLONCE_BROKER__SASL_PASSWORD": security.password(principal),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--role", action="append", help="principal(s) to print (default: all)")
    parser.add_argument("--mtls", action="store_true", help="print mutual-TLS settings")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tellonce-kafka-secured-"))
    try:
        jars = jar_cache()
    except KafkaUnavailable as exc:
        print(f"kafka tier: {exc}", file=sys.stderr)
        return 2
    roles = tier_roles()
    started = time.monotonic()
    with secured_cluster(jars, folder, roles, nodes=args.nodes) as cluster:
        print(f"# {args.nodes} secured node(s) ready in {time.monotonic() - started:.1f} s")
        print(f"# logs, certificates and keys in {folder}")
        for role in roles:
            if args.role and role.principal not in args.role:
                continue
            env = tellonce_env(cluster, role.principal, mutual_tls=args.mtls)
            print(f"# {role.kind} {role.principal}")
            print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items()), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    raise SystemExit(main())
