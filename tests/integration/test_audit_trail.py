"""The signed audit trail on a real flow: it verifies and reconciles, names tampering, fails
closed while it cannot be signed or written, and records each delivery once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import structlog
from psycopg import sql
from sqlalchemy import delete, text

from hub.adapters.sql.tables import audit_checkpoints
from hub.audit.bundle import export_bundle
from hub.audit.oversight import Reconciliation, reconcile, verify_store
from hub.audit.verification import Verdict
from hub.bootstrap import App
from hub.processing.worker import Totals
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.publishing import event_message
from hub.wire.topics import LIFEEVENTS_TOPIC, RECEIPTS_TOPIC, notify_topic
from tests.watchdog import wait_until

from .conftest import POSTGRES_SERVER
from .harness import (
    BOUND_IDLE_S,
    EVENT_TYPE,
    PUBLISHER,
    Harness,
    address,
    address_payload,
    tuned,
    watchdog,
)

pytestmark = pytest.mark.integration

TELLONCE = shutil.which("tellonce", path=str(Path(sys.executable).parent)) or "tellonce"
UNAVAILABLE = "audit log unavailable; not accepting events until it recovers"
CORRUPT_KEY = b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
RECEIPT_SCHEMA = "ca.tellonce.receipts.Receipt"

Logs = list[MutableMapping[str, Any]]  # as structlog.testing.capture_logs collects them


# -- helpers ---------------------------------------------------------------------------------


def verify(app: App) -> Verdict:
    """``tellonce audit verify`` on the live store, trusting the app's own key."""
    signer = app.signer()
    return verify_store(app.store, App.signature_check(signer.public_key_pem()), signer.key_id)


def tallies(result: Reconciliation) -> dict[str, tuple[int, int]]:
    return {t.fact: (t.leaves, t.facts) for t in result.tallies}


def leaf_count(app: App) -> int:
    return len(app.store.leaf_hashes())


def leaf_kinds(app: App) -> Counter[str]:
    return Counter(record.kind for record in app.store.audit_records())


def stored_offsets(app: App, topic: str) -> dict[int, int]:
    with app.store.transaction() as tx:
        return tx.offsets(app.settings.hub.group_id, topic)


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    wait_until(condition, timeout_s, f"no {what} within {timeout_s}s")


def unavailable_errors(logs: Logs) -> Logs:
    return [e for e in list(logs) if e["event"] == UNAVAILABLE and e["log_level"] == "error"]


def run_worker_beside(
    harness: Harness, records: int, control: Callable[[Logs], None]
) -> tuple[Totals, Logs]:
    """Run the hub worker until it accepted ``records`` events while ``control`` (another
    thread, given the captured logs) breaks and repairs what it depends on."""
    worker = harness.app.hub_worker(harness.kafka)
    stop = threading.Event()
    failures: list[BaseException] = []

    def on_batch(totals: Totals) -> None:
        if totals.accepted >= records:
            stop.set()

    with structlog.testing.capture_logs() as logs:

        def controller() -> None:
            try:
                control(logs)
            except BaseException as exc:  # re-raised in the test's thread
                failures.append(exc)
                stop.set()

        thread = threading.Thread(target=controller, name="audit-trail-control")
        thread.start()
        try:
            with watchdog(stop, "the hub worker"):
                totals = worker.run(stop, idle_exit_s=BOUND_IDLE_S, on_batch=on_batch)
        finally:
            stop.set()
            thread.join(timeout=30)
            worker.close()
    if failures:
        raise failures[0]
    return totals, logs


def assert_accepted_once(app: App, published: list[str]) -> None:
    """Each published event stored once, with one decision per recipient."""
    assert sorted(e.event_id for e in app.store.events()) == sorted(published)
    recipients = Counter(p.id for p in app.directory.recipients_of(EVENT_TYPE, origin=PUBLISHER))
    per_event: dict[str, Counter[str]] = {}
    for decision in app.store.decisions():
        per_event.setdefault(decision.event_id, Counter())[decision.recipient] += 1
    assert set(per_event) == set(published)
    assert all(counts == recipients for counts in per_event.values())


def cli_verify(harness: Harness, bundle: Path, public_key: Path) -> dict[str, Any]:
    """``tellonce audit verify BUNDLE --public-key PEM --json`` as a privacy officer runs it."""
    done = subprocess.run(
        [TELLONCE, "audit", "verify", str(bundle), "--public-key", str(public_key), "--json"],
        env=harness.env(),
        cwd=bundle.parent,
        capture_output=True,
        timeout=60,
        check=False,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == (0 if result["verified"] else 1), done.stderr.decode()
    return result


def set_leaf_data(app: App, index: int, data: dict[str, Any]) -> None:
    """What an insider with database access would do: rewrite a leaf in place, in SQL."""
    # Raw SQL on purpose: the ports only append, and the point is a change made behind them.
    cast = "CAST(:data AS JSON)" if app.store.engine.dialect.name == "postgresql" else ":data"
    statement = text(f"UPDATE audit_leaves SET data = {cast} WHERE leaf_index = :k")
    with app.store.engine.begin() as connection:
        changed = connection.execute(statement, {"data": json.dumps(data), "k": index})
    assert changed.rowcount == 1


def receipt(harness: Harness, original: dict[str, Any], status: str) -> None:
    """Send a receipt for the same notification as ``original``, as a connector would."""
    now = harness.now
    value = harness.app.codec.encode(
        RECEIPT_SCHEMA, {**original, "status": status, "recorded_at": now}
    )
    headers = cloudevent_headers(
        f"{original['notification_id']}:{status.lower()}",
        RECEIPT_SCHEMA,
        now,
        source=f"tellonce-connector/{original['recipient']}",
    )
    key = original["recipient"].encode()
    harness.send(RECEIPTS_TOPIC, *harness.signed_receipt((key, value, headers)))


# -- the signed log on a real flow -----------------------------------------------------------


def test_real_flow_verifies_reconciles_and_names_tampering(
    harness: Harness, tmp_path: Path
) -> None:
    """A real flow verifies, reconciles and exports a verifiable bundle; edits name their row."""
    app = harness.app
    harness.client(
        {PUBLISHER: "SBC-1", "cra-individual": "CRA-1", "bc-msp": "MSP-1"},
        consents=["cra-individual", "bc-msp"],
    )
    harness.publish([address_payload("SBC-1", new_address=address(f"{n} Main St")) for n in (1, 2)])
    key, value, headers, _ = event_message(
        app.codec,
        source=PUBLISHER,
        event_type=EVENT_TYPE,
        payload=address_payload("SBC-1"),
        at=harness.now,
    )
    harness.send_signed(LIFEEVENTS_TOPIC, key, value[:-3], headers)  # truncated Avro: rejected
    totals = harness.run_worker(records=3)
    assert (totals.accepted, totals.rejected, totals.disclosed) == (2, 1, 4)

    drop = tmp_path / "cra-drop"
    delivered = harness.run_connectors({"cra-individual": ("filedrop", {"directory": str(drop)})})
    assert delivered["cra-individual"].delivered == 2
    receipts = len(harness.read(RECEIPTS_TOPIC))
    harness.run_worker_until(lambda: harness.consumed(RECEIPTS_TOPIC) >= receipts)

    result = reconcile(app.store, app.pseudonyms())
    assert result.ok, (result.tallies, result.problems)
    withheld = 2 * len(app.directory.recipients_of(EVENT_TYPE, origin=PUBLISHER)) - 4
    counts = tallies(result)
    assert counts["accepted events"] == (2, 2)
    assert counts["rejected records"] == (1, 1)
    assert counts["disclosures"] == (4, 4)
    assert counts["withholdings"] == (withheld, withheld)
    assert counts["confirmed deliveries"] == (2, 2)  # cra-individual's; bc-msp has no connector
    assert {d.status for d in app.store.deliveries()} == {"delivered"}

    harness.checkpoint()  # sign the delivered leaves too, so the bundle holds every leaf
    checkpoints = app.store.checkpoints()
    size = leaf_count(app)
    assert len(checkpoints) >= 2  # the worker's first batch signed one
    assert checkpoints[-1].size == size
    verdict = verify(app)
    assert verdict.ok, verdict.problem
    assert (verdict.leaves, verdict.signed_size) == (size, size)

    signer = app.signer()
    bundle, public_key = tmp_path / "audit.jsonl", tmp_path / "hub-public.pem"
    public_key.write_text(signer.public_key_pem())
    with bundle.open("wb") as out:
        summary = export_bundle(
            app.store,
            out,
            public_key_pem=signer.public_key_pem(),
            key_id=signer.key_id,
            now=harness.now,
        )
    assert (summary.leaves, summary.unsigned) == (size, 0)
    checked = cli_verify(harness, bundle, public_key)
    assert checked["verified"] is True, checked["problem"]
    assert (checked["leaves"], checked["checkpoints"]) == (size, len(checkpoints))

    # Rewrite one signed leaf in place: the verifier names exactly that leaf.
    target = next(r for r in app.store.audit_records() if r.kind == "disclosed")
    set_leaf_data(app, target.index, {**target.data, "fields": []})
    verdict = verify(app)
    assert not verdict.ok
    assert str(verdict.problem).startswith(f"leaf {target.index}:"), verdict.problem
    set_leaf_data(app, target.index, target.data)
    assert verify(app).ok

    # Remove a signed checkpoint: the verifier names the checkpoint where the gap shows. Raw
    # SQL on purpose: no port deletes, and the point is a deletion made behind the hub's back.
    with app.store.engine.begin() as connection:
        connection.execute(delete(audit_checkpoints).where(audit_checkpoints.c.seq == 1))
    verdict = verify(app)
    assert not verdict.ok
    assert verdict.problem is not None
    assert verdict.problem.position.startswith("checkpoint "), verdict.problem


# -- fail closed -----------------------------------------------------------------------------


def test_unusable_signing_key_accepts_nothing_until_restored(harness: Harness) -> None:
    """With the key file gone, then corrupt, no event is accepted; once back, each is, once."""
    app = harness.app
    harness.client({PUBLISHER: "SBC-2", "cra-individual": "CRA-2"}, consents=["cra-individual"])
    assert harness.checkpoint() is not None  # the key works: the log so far is signed
    leaves, signed = leaf_count(app), len(app.store.checkpoints())
    key = app.settings.audit.signing_key
    away = key.with_name(key.name + ".away")
    key.rename(away)
    published = harness.publish([address_payload("SBC-2") for _ in range(3)])
    seen: list[tuple[int, int, int, dict[int, int]]] = []

    def nothing_written() -> tuple[int, int, int, dict[int, int]]:
        return (
            len(app.store.events()),
            leaf_count(app),
            len(app.store.checkpoints()),
            stored_offsets(app, LIFEEVENTS_TOPIC),
        )

    def control(logs: Logs) -> None:
        wait_for(lambda: len(unavailable_errors(logs)) >= 2, "'audit log unavailable' errors")
        seen.append(nothing_written())
        key.write_bytes(CORRUPT_KEY)
        wait_for(
            lambda: any("not an unencrypted PEM" in e["error"] for e in unavailable_errors(logs)),
            "error about the corrupt key",
        )
        seen.append(nothing_written())
        os.replace(away, key)

    totals, logs = run_worker_beside(harness, 3, control)

    assert seen == [(0, leaves, signed, {})] * 2  # no event, leaf, checkpoint or offset
    errors = [e["error"] for e in unavailable_errors(logs)]
    assert any("does not exist" in e for e in errors), errors
    assert any("not an unencrypted PEM" in e for e in errors), errors
    assert (totals.accepted, totals.duplicates) == (3, 0)
    assert_accepted_once(app, published)
    assert sum(stored_offsets(app, LIFEEVENTS_TOPIC).values()) == 3
    assert verify(app).ok
    result = reconcile(app.store, app.pseudonyms())
    assert result.ok, (result.tallies, result.problems)


@contextmanager
def connections_refused(database: str) -> Iterator[psycopg.Connection[Any]]:
    """Refuse new connections to ``database`` and end the open ones, except the one yielded
    (opened first, for looking at the data meanwhile); allow them again afterwards."""
    watcher = psycopg.connect(f"{POSTGRES_SERVER}/{database}", autocommit=True)
    admin = psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True)
    name = sql.Identifier(database)
    try:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(name))
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> %s",
            (database, watcher.info.backend_pid),
        )
        yield watcher
    finally:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(name))
        admin.close()
        watcher.close()


@pytest.mark.parametrize(
    "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_database_outage_accepts_nothing_until_it_returns(harness: Harness) -> None:
    """While PostgreSQL refuses the hub, no event is accepted; afterwards each is, once."""
    app = harness.app
    harness.client({PUBLISHER: "SBC-3", "cra-individual": "CRA-3"}, consents=["cra-individual"])
    database = app.store.engine.url.database  # whose connections the server will refuse
    assert database is not None
    published: list[str] = []
    seen: list[tuple[int, int]] = []

    def control(logs: Logs) -> None:
        wait_for(lambda: any(e["event"] == "partition positioned" for e in logs), "group join")
        with connections_refused(database) as watcher:
            published.extend(harness.publish([address_payload("SBC-3") for _ in range(3)]))
            wait_for(lambda: len(unavailable_errors(logs)) >= 3, "'audit log unavailable' errors")
            events = watcher.execute("SELECT count(*) FROM events").fetchone()
            offsets = watcher.execute(
                "SELECT count(*) FROM consumer_offsets WHERE topic = %s", (LIFEEVENTS_TOPIC,)
            ).fetchone()
            assert events is not None
            assert offsets is not None
            seen.append((events[0], offsets[0]))

    totals, logs = run_worker_beside(harness, 3, control)

    assert seen == [(0, 0)]
    assert any("database error" in e["error"] for e in unavailable_errors(logs))
    assert (totals.accepted, totals.duplicates) == (3, 0)
    assert_accepted_once(app, published)
    assert verify(app).ok
    assert reconcile(app.store, app.pseudonyms()).ok


# -- receipts --------------------------------------------------------------------------------


def test_repeated_receipts_add_no_second_delivered_leaf(harness: Harness, tmp_path: Path) -> None:
    """A receipt sent again, a DUPLICATE and a late FAILED leave one delivered leaf."""
    app = harness.app
    harness.client({PUBLISHER: "SBC-4", "cra-individual": "CRA-4"}, consents=["cra-individual"])
    harness.publish([address_payload("SBC-4")])
    assert harness.run_worker(records=1).disclosed == 1
    drop = tmp_path / "cra-drop"
    harness.run_connectors({"cra-individual": ("filedrop", {"directory": str(drop)})})

    # The connector redelivers: the same record again, then what its sink says the second
    # time (DUPLICATE), then a stale failure report.
    (first,) = harness.read(RECEIPTS_TOPIC)
    harness.send(RECEIPTS_TOPIC, first.key, first.value, list(first.headers))
    original = harness.decode(first.value)
    receipt(harness, original, "DUPLICATE")
    receipt(harness, original, "FAILED")
    # Two per batch: repeats inside one batch, and across batches.
    app.settings = tuned(app.settings, hub={"batch_size": 2})
    harness.run_worker_until(lambda: harness.consumed(RECEIPTS_TOPIC) >= 4)

    assert leaf_kinds(app)["delivered"] == 1
    assert leaf_kinds(app)["delivery_failed"] == 0
    (delivery,) = app.store.deliveries()
    assert (delivery.notification_id, delivery.status) == (original["notification_id"], "delivered")
    assert len(list(drop.glob("*.json"))) == 1
    assert harness.read(notify_topic("cra-individual"))
    result = reconcile(app.store, app.pseudonyms())
    assert result.ok, (result.tallies, result.problems)
    assert tallies(result)["confirmed deliveries"] == (1, 1)
    assert verify(app).ok
