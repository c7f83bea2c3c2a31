"""A hub killed with SIGKILL mid-stream loses nothing and duplicates no effect on restart."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from hub.bootstrap import App
from hub.model import DecisionOutcome
from hub.wire.topics import RECEIPTS_TOPIC, notify_topic
from tests.watchdog import wait_until

from .harness import EVENT_TYPE, PUBLISHER, Harness

pytestmark = pytest.mark.integration

TELLONCE = shutil.which("tellonce", path=str(Path(sys.executable).parent)) or "tellonce"
PEOPLE = 5
EVENTS = 400
BEFORE_KILL = 200  # published before the kill; the rest while the hub is down
KILL_AT = 60  # events in the store when the kill is sent: a few batches in, relay under way
START_BOUND_S = 60.0
EXIT_BOUND_S = 120.0
SINKS = ("cra-individual", "bc-msp")


def event_count(app: App) -> int:
    return len(app.store.events())


def start_hub(harness: Harness, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = harness.env(TELLONCE_HUB__BATCH_SIZE="20")
    with open(log, "ab") as out:
        return subprocess.Popen(
            [TELLONCE, "hub", "run", *extra],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_sigkill_mid_stream_then_restart_has_exactly_once_effect(
    harness: Harness, tmp_path: Path
) -> None:
    """After kill -9 and a restart: each event once, one decision each, one delivery each."""
    app = harness.app
    payloads = harness.address_stream(PEOPLE, EVENTS)
    log = tmp_path / "hub.log"

    hub = start_hub(harness, log)
    try:
        published = harness.publish(payloads[:BEFORE_KILL])

        def far_enough() -> bool:
            assert hub.poll() is None, f"the hub exited early: {log.read_text()[-2000:]}"
            return event_count(app) >= KILL_AT

        wait_until(
            far_enough, START_BOUND_S, "the hub processed nothing within the bound", every_s=0.005
        )
        os.kill(hub.pid, signal.SIGKILL)
        assert hub.wait(timeout=10) == -signal.SIGKILL
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait(timeout=10)
    at_kill = event_count(app)
    assert 0 < at_kill < EVENTS

    published += harness.publish(payloads[BEFORE_KILL:])
    hub = start_hub(harness, log, "--idle-exit", "5")
    try:
        code = hub.wait(timeout=EXIT_BOUND_S)
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait(timeout=10)
    assert code == 0, log.read_text()[-2000:]

    stored = app.store.events()
    assert len(stored) == len(published) == EVENTS
    assert {e.event_id for e in stored} == set(published)
    recipients = Counter(p.id for p in app.directory.recipients_of(EVENT_TYPE, origin=PUBLISHER))
    decisions = app.store.decisions()
    by_event: dict[str, Counter[str]] = {}
    for d in decisions:
        by_event.setdefault(d.event_id, Counter())[d.recipient] += 1
    assert set(by_event) == set(published)
    assert all(counts == recipients for counts in by_event.values())
    assert app.store.outbox_backlog() == 0
    assert app.verify_audit().ok

    disclosed = {
        r: {
            str(d.notification_id)
            for d in decisions
            if d.recipient == r and d.outcome is DecisionOutcome.DISCLOSED
        }
        for r in SINKS
    }
    assert len(disclosed["cra-individual"]) == EVENTS
    assert len(disclosed["bc-msp"]) == EVENTS * 3 // PEOPLE  # people 0, 2 and 4
    for recipient in SINKS:
        on_topic = {
            harness.decode(r.value)["notification_id"]
            for r in harness.read(notify_topic(recipient))
        }
        assert on_topic == disclosed[recipient]

    drops = {r: tmp_path / r for r in SINKS}
    harness.run_connectors({r: ("filedrop", {"directory": str(drops[r])}) for r in SINKS})
    receipts = [harness.decode(r.value) for r in harness.read(RECEIPTS_TOPIC)]
    for recipient in SINKS:
        files = {p.stem for p in drops[recipient].glob("*.json")}
        assert files == disclosed[recipient]
        delivered = [
            r["notification_id"]
            for r in receipts
            if r["recipient"] == recipient and r["status"] == "DELIVERED"
        ]
        assert sorted(delivered) == sorted(disclosed[recipient])
