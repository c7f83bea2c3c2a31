"""The Kafka ACLs of each tellonce role, as data: what the README's threat model lists
("Threat model: who may write where"), applied with kafka-python's ``create_acls``.

Every binding is an ALLOW for one principal, from any host, on a topic or consumer group,
named exactly (LITERAL) or by prefix (PREFIXED: a family, such as every recipient's notify
topic). Nothing is denied explicitly: the authorizer refuses whatever no binding allows
(``allow.everyone.if.no.acl.found=false``). READ and WRITE imply DESCRIBE, so a role sees
(lists, reads offsets of) the topics it reads or writes and no others.

What each role does on the wire, read from the code:

- **hub** (``tellonce hub run``, ``tellonce dlq replay``): creates the wire's topics and each
  subscriber's notify and dead-letter topics (``App.ensure_topics``, ``ensure_claim_topic``);
  joins its group (``TELLONCE_HUB__GROUP_ID``) on life events, receipts and consent changes;
  writes rejections, notices (the relay) and its store claims on ``tellonce.hub.v1``, which
  it also reads without a group (the fence); ``dlq replay`` reads a dead-letter topic and
  writes the notices back onto the notify topic.
- **publisher** of program P: writes life events; reads the shared rejected topic (its own
  rejections carry its ``ce_source`` as key) in groups named after its principal.
- **connector** of recipient R (``tellonce connector run``): its group
  ``tellonce-connector-R`` on ``tellonce.notify.R.v1``; writes receipts and its own dead
  letters.
- **portal** P: writes consent changes; reads rejections as a publisher does.
- **operator** (``tellonce dlq list``, ``tellonce connector status``): reads the dead letters
  and the rejections; reads the connectors' committed offsets and the notify topics' end
  offsets (DESCRIBE only, never the notices). ``tellonce audit`` and ``consent notices``
  touch no broker. ``dlq replay`` writes a notify topic, so it runs as the hub.

No role needs a cluster permission: idempotent producers are allowed by WRITE on a topic
(Kafka 3.0+, KIP-679), and no role uses transactions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourceType,
)

from hub.wire.topics import (
    CONSENT_TOPIC,
    HUB_TOPIC,
    LIFEEVENTS_TOPIC,
    NOTIFY_PREFIX,
    RECEIPTS_TOPIC,
    REJECTED_TOPIC,
    connector_group,
    dlq_topic,
    notify_topic,
)

CONNECTOR_GROUP_PREFIX = connector_group("")
HUB_GROUP = "tellonce-hub"  # TELLONCE_HUB__GROUP_ID's default


@dataclass(frozen=True, order=True)
class Grant:
    """An ALLOW of ``operation`` on the topic or group ``name`` (a prefix if ``prefixed``)."""

    operation: str  # READ, WRITE, CREATE or DESCRIBE
    resource: str  # topic or group
    name: str
    prefixed: bool = False


def _topics(operation: str, *names: str, prefixed: bool = False) -> list[Grant]:
    return [Grant(operation, "topic", name, prefixed) for name in names]


@dataclass(frozen=True)
class Role:
    """A principal and everything it may do; ``kind`` is the README table's row."""

    kind: str
    principal: str
    grants: tuple[Grant, ...]


def hub(principal: str = "hub", group: str = HUB_GROUP) -> Role:
    wire = (LIFEEVENTS_TOPIC, REJECTED_TOPIC, RECEIPTS_TOPIC, CONSENT_TOPIC, HUB_TOPIC)
    return Role(
        "hub",
        principal,
        (
            *_topics("CREATE", *wire),
            *_topics("CREATE", NOTIFY_PREFIX, prefixed=True),
            *_topics("READ", LIFEEVENTS_TOPIC, RECEIPTS_TOPIC, CONSENT_TOPIC, HUB_TOPIC),
            *_topics("READ", NOTIFY_PREFIX, prefixed=True),  # dlq replay reads dead letters
            *_topics("WRITE", REJECTED_TOPIC, HUB_TOPIC),
            *_topics("WRITE", NOTIFY_PREFIX, prefixed=True),
            Grant("READ", "group", group),
        ),
    )


def publisher(program: str) -> Role:
    principal = f"publisher-{program}"
    return Role(
        "publisher",
        principal,
        (
            *_topics("WRITE", LIFEEVENTS_TOPIC),
            *_topics("READ", REJECTED_TOPIC),
            Grant("READ", "group", principal, prefixed=True),
        ),
    )


def connector(recipient: str) -> Role:
    return Role(
        "connector",
        f"connector-{recipient}",
        (
            *_topics("READ", notify_topic(recipient)),
            *_topics("WRITE", RECEIPTS_TOPIC, dlq_topic(recipient)),
            Grant("READ", "group", connector_group(recipient)),
        ),
    )


def portal(program: str) -> Role:
    principal = f"portal-{program}"
    return Role(
        "portal",
        principal,
        (
            *_topics("WRITE", CONSENT_TOPIC),
            *_topics("READ", REJECTED_TOPIC),
            Grant("READ", "group", principal, prefixed=True),
        ),
    )


def operator(recipients: Iterable[str], principal: str = "operator") -> Role:
    """Dead letters are per recipient: a prefix would also cover the notify topics."""
    return Role(
        "operator",
        principal,
        (
            *_topics("READ", REJECTED_TOPIC, *(dlq_topic(r) for r in recipients)),
            *_topics("DESCRIBE", NOTIFY_PREFIX, prefixed=True),
            Grant("DESCRIBE", "group", CONNECTOR_GROUP_PREFIX, prefixed=True),
        ),
    )


def bindings(role: Role) -> list[ACL]:
    """The role's grants as kafka-python ACL bindings."""
    kinds = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
    return [
        ACL(
            principal=f"User:{role.principal}",
            host="*",
            operation=ACLOperation[g.operation],
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(
                kinds[g.resource],
                g.name,
                ACLResourcePatternType.PREFIXED if g.prefixed else ACLResourcePatternType.LITERAL,
            ),
        )
        for g in sorted(role.grants)
    ]


def apply(admin: KafkaAdminClient, roles: Iterable[Role]) -> int:
    """Create every role's bindings (as a super user); the number created. Creating a
    binding that exists already is a no-op for Kafka."""
    acls = [acl for role in roles for acl in bindings(role)]
    result = admin.create_acls(acls)
    if result["failed"]:
        raise RuntimeError(f"the broker refused ACL bindings: {result['failed']}")
    return len(result["succeeded"])
