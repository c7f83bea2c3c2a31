"""How each recipient's connector is doing, for ``tellonce connector status``: its lag on the
notification topic, deliveries, notices awaiting a receipt, and dead letters.

Lag is read through ``lag`` (a broker adapter: a consumer group's lag and record total on a
topic, without joining the group) so the connector is never disturbed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from hub.config.directory import Directory
from hub.delivery.dead_letters import replayed
from hub.errors import ConfigError
from hub.ports import Store
from hub.wire.topics import connector_group, dlq_topic

# (group, topic) -> (records the group has not committed, records on the topic)
LagReader = Callable[[str, str], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class ConnectorStatus:
    """One recipient's connector, as ``tellonce connector status`` prints it."""

    recipient: str
    lag: int
    notifications: int
    delivered: int
    last_delivery: datetime | None
    awaiting_receipt: int
    dead_letters: int
    dead_letters_replayed: int


def connector_status(
    directory: Directory,
    open_store: Callable[[], Store],
    lag: LagReader,
    recipients: Sequence[str] = (),
) -> list[ConnectorStatus]:
    """The status of each of ``recipients`` (default: every subscriber of the directory).

    Raises NotFoundError for an unknown program, ConfigError for one that subscribes to
    nothing (it has no connector). The store is opened only after that check, so a mistyped
    recipient is reported as such even where no database exists yet.
    """
    chosen = list(recipients) or [p.id for p in directory.subscribers()]
    for recipient in chosen:
        if not directory.program(recipient).subscriptions:
            raise ConfigError(f"program {recipient!r} subscribes to nothing; it has no connector")
    store = open_store()
    deliveries = store.deliveries()
    rows = []
    for recipient in chosen:
        program = directory.program(recipient)
        behind, total = lag(connector_group(recipient), program.notify_topic)
        _, dead = lag(connector_group(recipient), dlq_topic(recipient))
        delivered = [d for d in deliveries if d.recipient == recipient and d.status == "delivered"]
        rows.append(
            ConnectorStatus(
                recipient=recipient,
                lag=behind,
                notifications=total,
                delivered=len(delivered),
                last_delivery=max((d.recorded_at for d in delivered), default=None),
                awaiting_receipt=store.awaiting_receipt(recipient),
                dead_letters=dead,
                dead_letters_replayed=len(replayed(store, recipient)),
            )
        )
    return rows
