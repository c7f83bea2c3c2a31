"""Full names of the Avro schemas the hub itself writes or reads by name (``schemas/``).

The life-event and notice schemas are named with their event types in ``hub.wire.events``.
"""

from __future__ import annotations

REJECTION_SCHEMA = "ca.tellonce.lifeevents.Rejection"
RECEIPT_SCHEMA = "ca.tellonce.receipts.Receipt"
CONSENT_SCHEMA = "ca.tellonce.consent.ConsentChanged"
ERASURE_SCHEMA = "ca.tellonce.consent.ErasureRequested"  # on the consent topic, from a portal
