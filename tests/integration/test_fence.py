"""The store fence on the real broker and stores: claims on tellonce.hub.v1, start races,
untrusted records, and a running hub that stops when its group works with another store."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaProducer

from hub.adapters.broker import EmbeddedBroker
from hub.adapters.claims import KafkaClaimLog, ensure_claim_topic
from hub.adapters.sql import SqlStore
from hub.bootstrap import App, KafkaConnection
from hub.errors import FenceError
from hub.processing.fence import StoreFence
from hub.testing.vaults import throwaway_vault
from hub.wire.topics import HUB_TOPIC

from .harness import RUN_LIMIT_S, settings_for, tuned, watchdog

pytestmark = pytest.mark.integration

GROUP = "tellonce-hub"


def now() -> datetime:
    return datetime.now(UTC)


def fence(bootstrap: str, store_id: str) -> StoreFence:
    return StoreFence(
        KafkaClaimLog(KafkaConnection.plaintext(bootstrap)),
        group_id=GROUP,
        store_id=store_id,
        audit_key_id=None,
        host="it",
        clock=now,
    )


def in_force(bootstrap: str) -> list[tuple[str, str]]:
    claims = KafkaClaimLog(KafkaConnection.plaintext(bootstrap))
    try:
        return [(c.group_id, c.store_id) for _, c in claims.read()]
    finally:
        claims.close()


def test_store_id_is_made_once_with_the_schema(store_url: str, tmp_path: Path) -> None:
    """A database keeps its store id across openings; another database has another."""
    vault = throwaway_vault(tmp_path / "keks")
    first = SqlStore.open(store_url, vault=vault)
    store_id = first.store_id()
    first.close()
    again = SqlStore.open(store_url, vault=vault)
    other = SqlStore.open(f"sqlite:///{tmp_path / 'other.db'}", vault=vault)
    try:
        assert again.store_id() == store_id
        assert other.store_id() != store_id
    finally:
        again.close()
        other.close()


def test_hubs_starting_at_once_on_different_stores_let_exactly_one_in(
    broker: EmbeddedBroker,
) -> None:
    """Four hubs on four stores enter at the same moment: one passes, three are refused, and
    only the winner's claim stays in force."""
    ensure_claim_topic(KafkaConnection.plaintext(broker.bootstrap))
    fences = [fence(broker.bootstrap, f"store-{n}") for n in range(4)]
    start = threading.Barrier(len(fences))

    def enter(f: StoreFence) -> bool:
        start.wait()
        try:
            f.enter()
        except FenceError:
            return False
        finally:
            f.close()
        return True

    with ThreadPoolExecutor(max_workers=len(fences)) as pool:
        passed = list(pool.map(enter, fences))
    assert passed.count(True) == 1
    winner = f"store-{passed.index(True)}"
    assert in_force(broker.bootstrap) == [(GROUP, winner)]


def test_records_that_are_not_claims_do_not_stop_the_fence(broker: EmbeddedBroker) -> None:
    """Garbage on tellonce.hub.v1 (no key, not JSON, a forged key) is skipped: the group is
    claimed by the first real claim, and a hub on another store is still refused."""
    ensure_claim_topic(KafkaConnection.plaintext(broker.bootstrap))
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        for key, value in [
            (None, b"no key"),
            (f"{GROUP}/x".encode(), b"\x00\xff not json"),
            (f"{GROUP}/forged".encode(), b'{"group_id": "tellonce-hub", "store_id": "x"}'),
            (b"k", None),
        ]:
            producer.send(HUB_TOPIC, key=key, value=value, partition=0).get(timeout=30)
    finally:
        producer.close()
    first = fence(broker.bootstrap, "store-a")
    first.enter()
    first.close()
    second = fence(broker.bootstrap, "store-b")
    with pytest.raises(FenceError, match="store store-a"):
        second.enter()
    second.close()
    assert in_force(broker.bootstrap) == [(GROUP, "store-a")]


def test_running_hub_stops_when_another_store_takes_its_group(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """A running worker whose claim vanished, and whose group another store then claimed,
    stops with FenceError at its next check instead of deciding events beside that store."""
    settings = tuned(
        settings_for(f"sqlite:///{tmp_path / 'hub.db'}", broker.bootstrap),
        hub={"fence_check_every_s": 0.5},
        audit={"signing_key": tmp_path / "key.pem"},
    )
    app = App.from_settings(settings)
    try:
        worker = app.hub_worker(app.kafka())
        mine = app.store.store_id()
        claims = KafkaClaimLog(app.kafka())
        try:
            ((_, claim),) = claims.read()
            claims.withdraw(claim)  # as if the broker had lost the topic
        finally:
            claims.close()
        intruder = fence(broker.bootstrap, "store-b")
        intruder.enter()  # the group has no claim in force now: store-b takes it
        intruder.close()
        stop = threading.Event()
        try:
            with watchdog(stop, "the hub worker"), pytest.raises(FenceError) as stopped:
                worker.run(stop, idle_exit_s=RUN_LIMIT_S)
        finally:
            worker.close()
    finally:
        app.close()
    assert "now works with another store: store store-b" in str(stopped.value)
    assert mine in str(stopped.value)
