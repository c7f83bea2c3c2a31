"""The README's threat model on a real broker: each role may do exactly what its ACLs allow
and is refused the rest; unauthenticated and wrongly authenticated clients get nowhere.

One secured node for the module (SASL_SSL with SCRAM-SHA-512, mutual TLS, StandardAuthorizer,
no PLAINTEXT listener), every role's ACLs from ``acls.py``, and each topic of the wire holding
one record. The expected outcomes below are written out by hand from the threat model, not
derived from ``acls.py``, so a wrong binding there fails here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaTimeoutError

from hub.wire.topics import (
    CONSENT_TOPIC,
    HUB_TOPIC,
    LIFEEVENTS_TOPIC,
    RECEIPTS_TOPIC,
    REJECTED_TOPIC,
    connector_group,
    dlq_topic,
    notify_topic,
)

from .cluster import KafkaCluster
from .pki import TestCA, write_client
from .probe import Check, Probe
from .secured import secured_kafka, tier_roles  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

R, S = "cra-individual", "bc-msp"  # the connector under test, and another recipient
# The roles under test, among those of the tier's secured cluster (tier_roles()).
_BY_PRINCIPAL = {role.principal: role for role in tier_roles()}
ROLES = {
    "hub": _BY_PRINCIPAL["hub"],
    "publisher": _BY_PRINCIPAL["publisher-bc-service-bc"],
    "connector": _BY_PRINCIPAL[f"connector-{R}"],
    "other connector": _BY_PRINCIPAL[f"connector-{S}"],
    "portal": _BY_PRINCIPAL["portal-canada-ca-portal"],
    "operator": _BY_PRINCIPAL["operator"],
}
PUBLISHER_GROUP = "publisher-bc-service-bc-rejections"
PORTAL_GROUP = "portal-canada-ca-portal-rejections"
TOPICS = [
    LIFEEVENTS_TOPIC,
    REJECTED_TOPIC,
    RECEIPTS_TOPIC,
    CONSENT_TOPIC,
    HUB_TOPIC,
    notify_topic(R),
    notify_topic(S),
    dlq_topic(R),
    dlq_topic(S),
]
NEW_NOTIFY = notify_topic("newcomer")
CHECKS: list[Check] = [
    *(("write", t) for t in TOPICS),
    *(("read", t) for t in TOPICS),
    ("commit", "tellonce-hub", LIFEEVENTS_TOPIC),
    ("commit", connector_group(R), notify_topic(R)),
    ("commit", connector_group(R), notify_topic(S)),
    ("commit", connector_group(S), notify_topic(S)),
    ("commit", PUBLISHER_GROUP, REJECTED_TOPIC),
    ("commit", PORTAL_GROUP, REJECTED_TOPIC),
    ("lag", connector_group(R), notify_topic(R)),
    ("lag", connector_group(R), dlq_topic(R)),
    ("create", NEW_NOTIFY),
    ("create", "elsewhere.v1"),
]
# What each role may do; every other check of CHECKS must be refused.
ALLOWED: dict[str, set[Check]] = {
    "hub": {
        *(("write", t) for t in (REJECTED_TOPIC, HUB_TOPIC, notify_topic(R), notify_topic(S))),
        ("write", dlq_topic(R)),  # the notify prefix covers dead-letter topics too (README)
        ("write", dlq_topic(S)),
        *(("read", t) for t in TOPICS if t != REJECTED_TOPIC),
        ("commit", "tellonce-hub", LIFEEVENTS_TOPIC),
        ("create", NEW_NOTIFY),
    },
    "publisher": {
        ("write", LIFEEVENTS_TOPIC),
        ("read", REJECTED_TOPIC),
        ("commit", PUBLISHER_GROUP, REJECTED_TOPIC),
    },
    "connector": {
        ("write", RECEIPTS_TOPIC),
        ("write", dlq_topic(R)),
        ("read", notify_topic(R)),
        ("commit", connector_group(R), notify_topic(R)),
        ("lag", connector_group(R), notify_topic(R)),
        ("lag", connector_group(R), dlq_topic(R)),
    },
    "other connector": {
        ("write", RECEIPTS_TOPIC),
        ("write", dlq_topic(S)),
        ("read", notify_topic(S)),
        ("commit", connector_group(S), notify_topic(S)),
    },
    "portal": {
        ("write", CONSENT_TOPIC),
        ("read", REJECTED_TOPIC),
        ("commit", PORTAL_GROUP, REJECTED_TOPIC),
    },
    "operator": {
        ("read", REJECTED_TOPIC),
        ("read", dlq_topic(R)),
        ("read", dlq_topic(S)),
        ("lag", connector_group(R), notify_topic(R)),
        ("lag", connector_group(R), dlq_topic(R)),
    },
}


@pytest.fixture(scope="module")
def secured(request: pytest.FixtureRequest) -> KafkaCluster:
    """The secured node of the tier's roles (``secured_kafka``), each topic of the wire
    holding one record (created and written by the admin, a super user)."""
    cluster: KafkaCluster = request.getfixturevalue("secured_kafka")
    assert cluster.security is not None
    admin = cluster.admin()
    try:
        admin.create_topics([NewTopic(t, 1, 1) for t in TOPICS])
    finally:
        admin.close()
    producer = KafkaProducer(
        bootstrap_servers=cluster.bootstrap, acks="all", **cluster.security.sasl_client("admin")
    )
    try:
        for topic in TOPICS:
            producer.send(topic, b"seed").get(timeout=30)
    finally:
        producer.close(timeout=5)
    return cluster


def outcomes(
    cluster: KafkaCluster, role: str, checks: list[Check], *, mutual_tls: bool = False
) -> dict[Check, bool]:
    probe = Probe(cluster, ROLES[role].principal, mutual_tls=mutual_tls)
    try:
        return {check: probe.run(check) for check in checks}
    finally:
        probe.close()


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_may_do_what_the_threat_model_says_and_nothing_else(
    secured: KafkaCluster, role: str
) -> None:
    """Over SASL_SSL, every allowed check of the role succeeds and every other one is refused
    with an authorization error: among them, a connector of R neither reads another
    recipient's notify topic nor writes any; a publisher writes no notify topic, receipts or
    consent; a portal cannot write life events; only the hub reads life events."""
    found = outcomes(secured, role, CHECKS)
    assert found == {check: check in ALLOWED[role] for check in CHECKS}


MTLS_CHECKS: list[Check] = [
    ("read", notify_topic(R)),
    ("read", notify_topic(S)),
    ("write", RECEIPTS_TOPIC),
    ("write", notify_topic(R)),
    ("write", LIFEEVENTS_TOPIC),
    ("commit", connector_group(R), notify_topic(R)),
    ("join", connector_group(R), notify_topic(R)),
    ("join", connector_group(S), notify_topic(S)),
]
JOINED = {("join", connector_group(R), notify_topic(R))}  # a connector joins its own group


@pytest.mark.parametrize("role", ["connector", "publisher"])
def test_a_certificate_is_the_same_principal_as_its_scram_user(
    secured: KafkaCluster, role: str
) -> None:
    """Over mutual TLS, a client certificate whose CN is a role's name gets exactly that
    role's rights (``ssl.principal.mapping.rules``), down to joining its consumer group."""
    allowed = ALLOWED[role] | (JOINED if role == "connector" else set())
    found = outcomes(secured, role, MTLS_CHECKS, mutual_tls=True)
    assert found == {check: check in allowed for check in MTLS_CHECKS}


def test_each_role_sees_only_the_topics_it_may_use(secured: KafkaCluster) -> None:
    """The broker's metadata lists a role only the topics it reads, writes or describes:
    a connector does not learn the other recipients' topics exist."""
    seen: dict[str, set[str]] = {}
    for role in ROLES:
        probe = Probe(secured, ROLES[role].principal)
        try:
            seen[role] = probe.visible() & set(TOPICS)
        finally:
            probe.close()
    assert seen["connector"] == {notify_topic(R), dlq_topic(R), RECEIPTS_TOPIC}
    assert seen["publisher"] == {LIFEEVENTS_TOPIC, REJECTED_TOPIC}
    assert seen["portal"] == {CONSENT_TOPIC, REJECTED_TOPIC}
    assert seen["operator"] == {
        REJECTED_TOPIC,
        *(t for t in TOPICS if t.startswith("tellonce.notify.")),
    }
    assert seen["hub"] == set(TOPICS)


def refusal(settings: dict[str, Any], caplog: pytest.LogCaptureFixture) -> str:
    """Try to connect; the reason kafka-python logged for each failed attempt (it retries
    until its bootstrap timeout, then raises KafkaTimeoutError)."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kafka"), pytest.raises(KafkaTimeoutError):
        KafkaAdminClient(bootstrap_timeout_ms=2_500, request_timeout_ms=2_000, **settings)
    return "\n".join(r.getMessage() for r in caplog.records)


def test_a_wrong_password_is_refused(
    secured: KafkaCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """A SCRAM login with the hub's name and a wrong password gets no connection: the broker
    answers that authentication failed, or hangs up on the login (Apache Kafka 4.4 does either,
    about as often)."""
    assert secured.security is not None
    settings = secured.security.sasl_client("hub", password="not-the-password")
    reason = refusal({"bootstrap_servers": secured.sasl_ssl_bootstrap, **settings}, caplog)
    assert "SaslAuthenticationFailedError" in reason or "disconnected" in reason, reason


def test_a_certificate_of_another_ca_is_refused(
    secured: KafkaCluster, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """A client certificate for CN=hub issued by another CA gets no TLS session."""
    assert secured.security is not None
    forged = write_client(tmp_path, "hub", TestCA("another CA"))
    settings = secured.security.tls_client("hub", forged)
    reason = refusal({"bootstrap_servers": secured.mtls_bootstrap, **settings}, caplog)
    assert "CERTIFICATE_UNKNOWN" in reason, reason  # the broker's TLS alert


@pytest.mark.parametrize("listener", ["mtls", "sasl_ssl"])
def test_plaintext_gets_nothing_from_a_tls_listener(
    secured: KafkaCluster, caplog: pytest.LogCaptureFixture, listener: str
) -> None:
    """A PLAINTEXT client on either TLS listener never gets a Kafka answer: what comes back is
    a TLS alert record (0x15 0x03 0x03...), which kafka-python reads as a frame length."""
    address = secured.mtls_bootstrap if listener == "mtls" else secured.sasl_ssl_bootstrap
    reason = refusal({"bootstrap_servers": address}, caplog)
    assert f"Invalid frame length: {0x15030300}" in reason, reason
