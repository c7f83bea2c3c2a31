"""Topic names of the wire contract (DESIGN.md section 3): the only place they are spelled."""

from __future__ import annotations

# Topics of the wire contract (DESIGN.md section 3).
LIFEEVENTS_TOPIC = "tellonce.lifeevents.v1"
REJECTED_TOPIC = "tellonce.lifeevents.rejected.v1"
RECEIPTS_TOPIC = "tellonce.receipts.v1"
CONSENT_TOPIC = "tellonce.consent.v1"  # consent changes from client-facing portals
HUB_TOPIC = "tellonce.hub.v1"  # compacted: which store each hub consumer group works with
HUB_SOURCE = "tellonce-hub"


def notify_topic(recipient: str) -> str:
    return f"tellonce.notify.{recipient}.v1"


__all__ = [
    "CONSENT_TOPIC",
    "HUB_SOURCE",
    "HUB_TOPIC",
    "LIFEEVENTS_TOPIC",
    "RECEIPTS_TOPIC",
    "REJECTED_TOPIC",
    "notify_topic",
]
