"""Two hub workers in one consumer group on Apache Kafka: the integration tier's race, with its
own fixtures (PostgreSQL only, since SQLite serializes writers), collected again here so that
``harness`` is the Kafka tier's.
"""

from __future__ import annotations

import pytest

from ..test_two_workers import (
    store_url,
    test_two_workers_decide_and_notify_each_event_once,
    test_workers_queued_for_the_audit_head_stay_in_the_group,
    workers,
)

pytestmark = [pytest.mark.integration, pytest.mark.kafka]

__all__ = [
    "store_url",
    "test_two_workers_decide_and_notify_each_event_once",
    "test_workers_queued_for_the_audit_head_stay_in_the_group",
    "workers",
]
