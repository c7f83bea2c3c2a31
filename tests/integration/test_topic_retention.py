"""Topics holding notices are created with a retention: the broker says so when asked.

Tansu accepts topic configs on CreateTopics and reports them through DescribeConfigs (as
DEFAULT_CONFIG, so they are asked for with ``config_filter="all"``); whether its memory-only
store ever deletes records by them is not checked here."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from hub.adapters.broker import EmbeddedBroker
from hub.bootstrap import App
from hub.wire.topics import (
    CONSENT_TOPIC,
    LIFEEVENTS_TOPIC,
    RECEIPTS_TOPIC,
    REJECTED_TOPIC,
    dlq_topic,
    notify_topic,
)

from .harness import settings_for, tuned

pytestmark = pytest.mark.integration


def described(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    """retention.ms and segment.ms of each topic as the broker describes it (absent: not set
    on the topic)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tellonce-it-admin")
    try:
        answer = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics],
            config_filter="all",
        )
    finally:
        admin.close()
    return {
        topic: {
            name: entry["value"]
            for name, entry in answer["topic"][topic].items()
            if name in ("retention.ms", "segment.ms")
        }
        for topic in topics
    }


def test_notify_and_dead_letter_topics_keep_notices_for_the_retention_only(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Created by tellonce, every notify and dead-letter topic has retention.ms set from
    TELLONCE_BROKER__NOTICE_RETENTION; the topics without notices keep the broker's default."""
    settings = settings_for(f"sqlite:///{tmp_path / 'hub.db'}", broker.bootstrap)
    settings = tuned(settings, broker={"notice_retention": timedelta(days=2, hours=1)})
    app = App.from_settings(settings)
    try:
        app.ensure_topics(app.kafka())
        recipients = [p.id for p in app.directory.subscribers()]
    finally:
        app.close()
    notices = [notify_topic(r) for r in recipients] + [dlq_topic(r) for r in recipients]
    others = [LIFEEVENTS_TOPIC, REJECTED_TOPIC, RECEIPTS_TOPIC, CONSENT_TOPIC]
    configs = described(broker.bootstrap, notices + others)
    expected = {"retention.ms": str(49 * 3600 * 1000), "segment.ms": str(24 * 3600 * 1000)}
    assert {t: configs[t] for t in notices} == dict.fromkeys(notices, expected)
    assert {t: configs[t] for t in others} == {t: {} for t in others}


def test_a_retention_shorter_than_a_day_is_the_segment_span_too(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """With a retention under a day, segments span no more than the retention."""
    settings = settings_for(f"sqlite:///{tmp_path / 'hub.db'}", broker.bootstrap)
    settings = tuned(settings, broker={"notice_retention": timedelta(hours=6)})
    app = App.from_settings(settings)
    try:
        app.ensure_topics(app.kafka())
    finally:
        app.close()
    six_hours = str(6 * 3600 * 1000)
    topic = notify_topic("bc-msp")
    assert described(broker.bootstrap, [topic]) == {
        topic: {"retention.ms": six_hours, "segment.ms": six_hours}
    }
