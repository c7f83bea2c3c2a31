"""The hub's outbox keeps a notice until its receipt is older than the retention, no longer."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from structlog.testing import capture_logs

from hub.bootstrap import App
from hub.wire.topics import LIFEEVENTS_TOPIC

from .harness import Harness, signing, tuned

pytestmark = pytest.mark.integration


def outbox_topics(url: str) -> list[str]:
    """The topic of every row left in the store's outbox."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as db:
            return sorted(db.scalars(text("SELECT topic FROM outbox")))
    finally:
        engine.dispose()


def test_answered_notices_and_published_rejections_leave_the_outbox(
    harness: Harness, tmp_path: Path
) -> None:
    """With a retention of 0, the relay deletes the published rejection and, once their receipts
    are in, every notice (a hub started after them, at its first call), logging counts only."""
    app = signing(
        App.from_settings(tuned(harness.app.settings, privacy={"outbox_retention": timedelta(0)}))
    )
    try:
        hub = Harness(app, harness.kafka)
        hub.publish(hub.address_stream(people=2, events=2))  # 2 + 1 notices
        hub.send(LIFEEVENTS_TOPIC, b"SBC-0", b"not avro", [])  # rejected: missing headers
        hub.run_worker(3)
        url = app.settings.store.url
        assert len(outbox_topics(url)) == 4
        recipients = ("cra-individual", "bc-msp")
        sinks = {r: ("filedrop", {"directory": str(tmp_path / r)}) for r in recipients}
        hub.run_connectors(sinks)
        with capture_logs() as logs:
            hub.run_worker_until(lambda: len(app.store.deliveries()) >= 3)
            hub.run_worker(None)  # a relay's first call purges what is due by then
    finally:
        app.close()
    assert outbox_topics(url) == []
    purged = [e for e in logs if e["event"] == "outbox purged"]
    assert {key for e in purged for key in e} == {"event", "count", "log_level"}
    assert sum(e["count"] for e in purged) == 4
