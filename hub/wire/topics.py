"""Topic names of the wire contract (DESIGN.md section 3): the only place they are spelled.

Besides the topics, the names a connector shows the broker are here too: the ``ce_source`` of
its receipts (the hub reads receipts by it) and its consumer group (``connector status`` reads
the group's lag by it).
"""

from __future__ import annotations

from datetime import timedelta

LIFEEVENTS_TOPIC = "tellonce.lifeevents.v1"
REJECTED_TOPIC = "tellonce.lifeevents.rejected.v1"
RECEIPTS_TOPIC = "tellonce.receipts.v1"
CONSENT_TOPIC = "tellonce.consent.v1"  # consent changes from client-facing portals
HUB_TOPIC = "tellonce.hub.v1"  # compacted: which store each hub consumer group works with
HUB_SOURCE = "tellonce-hub"
# Every recipient's notices, and the notices its connector gave up on, share this prefix.
NOTIFY_PREFIX = "tellonce.notify."


def notify_topic(recipient: str) -> str:
    """The topic of ``recipient``'s notices: ``tellonce.notify.<id>.v1``."""
    return f"{NOTIFY_PREFIX}{recipient}.v1"


# Longest span of a segment of a notify or dead-letter topic: how long a notice may outlive
# TELLONCE_BROKER__NOTICE_RETENTION on the broker.
NOTICE_SEGMENT = timedelta(days=1)


def notice_topic_config(retention: timedelta) -> dict[str, str]:
    """The topic configs of a notify or dead-letter topic: notices are personal data, so the
    broker keeps them ``retention`` only."""
    # Kafka deletes whole segments, once their newest record is past retention.ms: a record
    # can outlive it by a segment's span (segment.ms, 7 days by default), so keep it short.
    segment = min(retention, NOTICE_SEGMENT)
    return {
        "retention.ms": str(retention // timedelta(milliseconds=1)),
        "segment.ms": str(segment // timedelta(milliseconds=1)),
    }


def dlq_topic(recipient: str) -> str:
    """The dead-letter topic of ``recipient``'s connector: ``tellonce.notify.<id>.dlq``."""
    return f"{NOTIFY_PREFIX}{recipient}.dlq"


def connector_source(recipient: str) -> str:
    """The ``ce_source`` of the receipts ``recipient``'s connector sends."""
    return f"tellonce-connector/{recipient}"


def connector_group(recipient: str) -> str:
    """The Kafka consumer group (and client id) of ``recipient``'s connector."""
    return f"tellonce-connector-{recipient}"


__all__ = [
    "CONSENT_TOPIC",
    "HUB_SOURCE",
    "HUB_TOPIC",
    "LIFEEVENTS_TOPIC",
    "NOTICE_SEGMENT",
    "NOTIFY_PREFIX",
    "RECEIPTS_TOPIC",
    "REJECTED_TOPIC",
    "connector_group",
    "connector_source",
    "dlq_topic",
    "notice_topic_config",
    "notify_topic",
]
