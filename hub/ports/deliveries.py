"""The deliveries role: what the connectors' receipts said about each notification."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from hub.model import Decision, Delivery


class DeliveryRecorder(Protocol):
    """One delivery per notification, updated as later receipts arrive."""

    def decisions_by_notification(self, notification_ids: Iterable[str]) -> dict[str, Decision]:
        """Notification id to the decision that minted it, for the ids that one did."""

    def deliveries_of(self, notification_ids: Iterable[str]) -> dict[str, Delivery]:
        """Notification id to its recorded delivery, for the ids that have one."""

    def undelivered_notifications(self, person_id: str) -> list[str]:
        """Notification ids of the disclosures about ``person_id`` that no receipt settled yet
        (neither delivered nor dead-lettered), oldest first: what erasing them would strand."""

    def save_deliveries(self, deliveries: Sequence[Delivery], *, new: bool) -> None:
        """Insert (``new``) or replace, in one write, the deliveries of notifications decisions
        minted, one per notification; RecordStoreError when a notification is unknown or a new
        one exists already."""
