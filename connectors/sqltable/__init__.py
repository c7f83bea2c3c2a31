"""Staging table: one row per notification in a table of the recipient's own database.

The back office reads rows where ``processed_at`` is null. The primary key on the notification
id makes redelivery a no-op (DUPLICATE) on every database.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from connectors.contract import DeliveryResult, Notification, Outcome

DEFAULT_TABLE = "tellonce_inbox"


def staging_table(name: str = DEFAULT_TABLE) -> Table:
    return Table(
        name,
        MetaData(),
        Column("notification_id", String(36), primary_key=True),
        Column("recipient", String(63), nullable=False),
        Column("event_type", String(32), nullable=False),
        Column("subject_id", String(64), nullable=False),
        Column("body", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=True),
    )


class StagingTableSink:
    name = "sqltable"

    def __init__(self, recipient: str, options: dict[str, str]) -> None:
        if "url" not in options:
            raise ValueError("the sqltable sink needs --option url=DATABASE_URL")
        url = options["url"]
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        self.recipient = recipient
        self.table = staging_table(options.get("table", DEFAULT_TABLE))
        self._engine = create_engine(url, pool_pre_ping=True)
        self.table.metadata.create_all(self._engine, checkfirst=True)

    def deliver(self, notification: Notification) -> DeliveryResult:
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(self.table).values(
                        notification_id=notification.notification_id,
                        recipient=notification.recipient,
                        event_type=notification.event_type,
                        subject_id=notification.subject_id,
                        body=notification.to_json(),
                        received_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            return DeliveryResult(Outcome.DUPLICATE)
        except DBAPIError as exc:
            return DeliveryResult(
                Outcome.RETRY, f"staging database error: {exc.orig.__class__.__name__}"
            )
        return DeliveryResult(Outcome.DELIVERED)

    def close(self) -> None:
        self._engine.dispose()
