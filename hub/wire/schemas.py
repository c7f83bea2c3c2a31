"""Full names of the Avro schemas the hub itself writes or reads by name (``schemas/``)."""

from __future__ import annotations

REJECTION_SCHEMA = "ca.tellonce.lifeevents.Rejection"
