"""``tellonce connector status`` as a use-case: per recipient lag, deliveries and dead letters."""

from __future__ import annotations

import pytest

from hub.adapters.memory import MemoryStore
from hub.config.directory import Directory
from hub.delivery.status import connector_status
from hub.errors import NotFoundError
from hub.ports import Store
from hub.wire.topics import connector_group, dlq_topic, notify_topic


def no_store() -> Store:
    raise AssertionError("the store was opened")


def test_an_unknown_recipient_is_named_before_the_store_is_opened(directory: Directory) -> None:
    """A mistyped recipient is reported as such, even where no database exists yet."""
    with pytest.raises(NotFoundError, match="bc-msp"):
        connector_status(directory, no_store, lambda group, topic: (0, 0), ["bc-mps"])


def test_lag_and_dead_letters_come_from_the_connector_group(
    directory: Directory, store: MemoryStore
) -> None:
    """Lag is read on the recipient's topic and dead letters on its dlq, both for the
    connector's own group; every subscriber is listed when none is named."""
    asked: list[tuple[str, str]] = []

    def lag(group: str, topic: str) -> tuple[int, int]:
        asked.append((group, topic))
        return (3, 10) if topic.endswith(".v1") else (0, 2)

    rows = connector_status(directory, lambda: store, lag)
    assert [r.recipient for r in rows] == [p.id for p in directory.subscribers()]
    first = rows[0]
    assert (first.lag, first.notifications, first.dead_letters) == (3, 10, 2)
    assert (first.delivered, first.last_delivery, first.dead_letters_replayed) == (0, None, 0)
    group = connector_group(first.recipient)
    assert asked[:2] == [
        (group, notify_topic(first.recipient)),
        (group, dlq_topic(first.recipient)),
    ]
