"""Dead letters and redelivery on the real broker and both stores: a notification the back
office refuses goes to the dead-letter topic, the hub records it, an operator replays it with
the CLI and it is delivered once; notifications a lost broker took with it are published again
and delivered exactly once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors import resolve_sink
from connectors.contract import DeliveryResult, Notification, Outcome
from hub.adapters.broker import EmbeddedBroker
from hub.adapters.topics import topic_lag
from hub.audit.oversight import reconcile, verify_store
from hub.bootstrap import App
from hub.config.settings import ConnectorSettings, HubSettings
from hub.delivery import dead_letters
from hub.delivery.dead_letters import dlq_topic
from hub.delivery.runner import DeliveryTotals, to_notification
from hub.errors import ConfigError
from hub.wire.topics import RECEIPTS_TOPIC, notify_topic

from ..keyring import signer
from .conftest import unavailable
from .harness import (
    BOUND_IDLE_S,
    PUBLISHER,
    Harness,
    address,
    address_payload,
    settings_for,
    signing,
    watchdog,
)

pytestmark = pytest.mark.integration

TELLONCE = shutil.which("tellonce", path=str(Path(sys.executable).parent)) or "tellonce"
RECIPIENT = "cra-individual"
GATED_SINK = f"{__name__}:GatedSink"
# Personal values of the two clients, looked for where they must not be.
KEPT = {"subject": "CRA-1", "street": "11 Kestrel Way"}
REFUSED = {"subject": "CRA-2", "street": "29 Ptarmigan Bend"}


class GatedSink:
    """A back office that refuses one client's records for good until a flag file exists.

    Options: ``directory`` (one JSON file per notification: the far side), ``refuse`` (the
    subject id it refuses), ``gate`` (once this file exists it accepts everything).
    """

    name = "gated"

    def __init__(self, recipient: str, options: dict[str, str]) -> None:
        self.recipient = recipient
        self.folder = Path(options["directory"])
        self.folder.mkdir(parents=True, exist_ok=True)
        self.refuse = options["refuse"]
        self.gate = Path(options["gate"])

    def deliver(self, notification: Notification) -> DeliveryResult:
        final = self.folder / f"{notification.notification_id}.json"
        if final.exists():
            return DeliveryResult(Outcome.DUPLICATE)
        if notification.subject_id == self.refuse and not self.gate.exists():
            return DeliveryResult(
                Outcome.FAILED, "the back office has no file for this client", "NoSuchClient"
            )
        temp = self.folder / f".{notification.notification_id}.tmp"
        temp.write_text(notification.to_json(), encoding="utf-8")
        os.replace(temp, final)
        return DeliveryResult(Outcome.DELIVERED)

    def close(self) -> None:
        """Nothing is buffered."""


class SlowBackOffice:
    """Always busy: asks to be called again after ``wait`` seconds (option, default 6)."""

    name = "slow"

    def __init__(self, recipient: str, options: dict[str, str]) -> None:
        self.wait = float(options.get("wait", "6"))

    def deliver(self, notification: Notification) -> DeliveryResult:
        return DeliveryResult(Outcome.RETRY, "busy, call again later", "HTTP503", self.wait)

    def close(self) -> None:
        """Nothing is held."""


# -- helpers ---------------------------------------------------------------------------------


def cli(harness: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    """The tellonce command on the test's store, broker and audit key."""
    return subprocess.run(
        [TELLONCE, *args],
        env=harness.env(),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def cli_json(harness: Harness, *args: str) -> Any:
    done = cli(harness, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run_connector(
    harness: Harness, sink: str, options: dict[str, str], records: int
) -> DeliveryTotals:
    """One connector run until it handled ``records`` notifications (from where its group
    committed), bounded by the idle exit."""
    runner = harness.app.connector(
        harness.kafka, RECIPIENT, sink, options, receipt_signer=signer(RECIPIENT)
    )
    stop = threading.Event()

    def on_batch(totals: DeliveryTotals) -> None:
        if totals.delivered + totals.duplicates + totals.failed >= records:
            stop.set()

    try:
        with watchdog(stop, "the connector"):
            return runner.run(stop, idle_exit_s=BOUND_IDLE_S, on_batch=on_batch)
    finally:
        runner.close()


def receipts_taken(harness: Harness) -> None:
    """Run the hub worker until it has consumed every receipt on the topic."""
    receipts = len(harness.read(RECEIPTS_TOPIC))
    harness.run_worker_until(lambda: harness.consumed(RECEIPTS_TOPIC) >= receipts)
    assert harness.consumed(RECEIPTS_TOPIC) == receipts


def far_side(folder: Path) -> Counter[str]:
    """Notification ids the back office sees in ``folder``, one count per record: JSON files
    (one notice each) and JSON-lines files (one per line); names with a dot are not shown."""
    seen: Counter[str] = Counter()
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            seen[json.loads(text)["notification_id"]] += 1
        elif path.suffix == ".jsonl":
            seen.update(json.loads(line)["notification_id"] for line in text.splitlines() if line)
    return seen


def kinds(harness: Harness) -> Counter[str]:
    return Counter(r.kind for r in harness.app.store.audit_records())


def two_clients(harness: Harness) -> dict[str, str]:
    """Two clients who consented to tell the recipient; one event each. Returns subject id
    at the recipient -> notification id."""
    harness.client({PUBLISHER: "SBC-1", RECIPIENT: KEPT["subject"]}, consents=[RECIPIENT])
    harness.client({PUBLISHER: "SBC-2", RECIPIENT: REFUSED["subject"]}, consents=[RECIPIENT])
    harness.publish(
        [
            address_payload("SBC-1", new_address=address(KEPT["street"])),
            address_payload("SBC-2", new_address=address(REFUSED["street"])),
        ]
    )
    totals = harness.run_worker(records=2)
    assert totals.accepted == 2
    notices = [harness.decode(r.value) for r in harness.read(notify_topic(RECIPIENT))]
    return {n["subject_id"]: n["notification_id"] for n in notices}


def verified(app: App) -> None:
    """Every leaf signed; the log verifies under the hub's key and reconciles with the store."""
    with app.store.transaction() as tx:
        app.notary().maybe_checkpoint(tx, datetime.now(UTC), force=True)
    signer = app.signer()
    verdict = verify_store(app.store, App.signature_check(signer.public_key_pem()), signer.key_id)
    assert verdict.ok, verdict.problem
    result = reconcile(app.store, app.pseudonyms())
    assert result.ok, (result.tallies, result.problems)


# -- the tests -------------------------------------------------------------------------------


def test_refused_notification_is_dead_lettered_replayed_and_delivered_once(
    harness: Harness, tmp_path: Path
) -> None:
    """FAILED -> DLQ with error headers and no personal data; the hub records dead_lettered;
    `tellonce dlq replay --all` re-publishes it; once the back office accepts, it is delivered
    exactly once; the trail has dlq_replayed, reconciles and verifies; status shows it all."""
    ids = two_clients(harness)
    kept, refused = ids[KEPT["subject"]], ids[REFUSED["subject"]]
    drop, gate = tmp_path / "back-office", tmp_path / "client-file-created"
    options = {"directory": str(drop), "refuse": REFUSED["subject"], "gate": str(gate)}

    first = run_connector(harness, GATED_SINK, options, records=2)
    assert (first.delivered, first.failed, first.retries) == (1, 1, 0)
    assert far_side(drop) == Counter({kept: 1})

    # The dead letter: the original record plus error headers, none carrying personal data.
    [original] = [
        r
        for r in harness.read(notify_topic(RECIPIENT))
        if harness.decode(r.value)["notification_id"] == refused
    ]
    [letter] = harness.read(dlq_topic(RECIPIENT))
    assert (letter.key, letter.value) == (original.key, original.value)
    errors = {k: v.decode() for k, v in letter.headers if k.startswith(dead_letters.PREFIX)}
    assert errors[dead_letters.CLASS] == "NoSuchClient"
    assert errors[dead_letters.ATTEMPTS] == "1"
    assert errors[dead_letters.TOPIC] == notify_topic(RECIPIENT)
    assert errors[dead_letters.PARTITION] == str(original.partition)
    assert errors[dead_letters.OFFSET] == str(original.offset)
    for personal in (*REFUSED.values(), *KEPT.values()):
        assert all(personal not in value for value in errors.values())

    listed = cli_json(harness, "dlq", "list", RECIPIENT)
    assert len(listed) == 1
    shown = listed[0]
    assert (shown["notification"], shown["error"], shown["attempts"]) == (
        refused,
        "NoSuchClient",
        1,
    )
    assert shown["reason"] == "the back office has no file for this client"
    assert shown["original"] == f"{notify_topic(RECIPIENT)}/{original.partition}/{original.offset}"
    assert shown["replayed"] is False
    readable = cli(harness, "dlq", "list", RECIPIENT)
    assert readable.returncode == 0, readable.stderr
    assert "1 dead letters, 0 replayed" in readable.stdout
    for personal in (*REFUSED.values(), *KEPT.values()):
        assert personal not in json.dumps(listed)
        assert personal not in readable.stdout

    # The hub records the dead letter from its receipt: status and one leaf.
    receipts_taken(harness)
    deliveries = {d.notification_id: d for d in harness.app.store.deliveries()}
    assert deliveries[refused].status == "dead_lettered"
    assert deliveries[refused].dead_lettered_at is not None
    assert deliveries[kept].status == "delivered"
    assert kinds(harness)["dead_lettered"] == 1

    # The operator replays it, once; replaying it again (by position) needs --force.
    replay = cli(harness, "dlq", "replay", RECIPIENT, "--all")
    assert replay.returncode == 0, replay.stderr
    assert "replayed 1 dead letters" in replay.stdout
    position = f"{letter.partition}/{letter.offset}"
    named = cli(harness, "dlq", "replay", RECIPIENT, "--offset", position)
    assert named.returncode == 0, named.stderr
    assert "nothing to replay" in named.stdout
    unknown = cli(harness, "dlq", "replay", RECIPIENT, "--offset", "99")
    assert unknown.returncode == 2
    assert "no dead letter at offset(s) 99" in unknown.stderr
    assert [r["replayed"] for r in cli_json(harness, "dlq", "list", RECIPIENT)] == [True]
    [replay_leaf] = [r for r in harness.app.store.audit_records() if r.kind == "dlq_replayed"]
    assert replay_leaf.data["notification"] == refused
    assert replay_leaf.data["recipient"] == RECIPIENT
    republished = harness.read(notify_topic(RECIPIENT))
    assert len(republished) == 3
    assert sum(1 for r in republished if r.value == original.value) == 2
    assert not any(k.startswith(dead_letters.PREFIX) for r in republished for k, _ in r.headers)

    # The back office now knows the client: the replay is delivered, exactly once.
    gate.touch()
    second = run_connector(harness, GATED_SINK, options, records=1)
    assert (second.delivered, second.failed) == (1, 0)
    assert far_side(drop) == Counter({kept: 1, refused: 1})

    receipts_taken(harness)
    delivery = {d.notification_id: d for d in harness.app.store.deliveries()}[refused]
    assert delivery.status == "delivered"
    assert delivery.dead_lettered_at == deliveries[refused].dead_lettered_at
    counts = kinds(harness)
    assert (counts["delivered"], counts["dead_lettered"], counts["dlq_replayed"]) == (2, 1, 1)
    verified(harness.app)

    [status] = cli_json(harness, "connector", "status", RECIPIENT)
    assert status["recipient"] == RECIPIENT
    assert status["dead_letters"] >= 1
    assert status["dead_letters_replayed"] == 1
    assert status["lag"] == 0
    assert status["delivered"] == 2
    assert status["awaiting_receipt"] == 0


def test_notifications_a_lost_broker_took_are_published_again_and_delivered_once(
    harness: Harness, broker: EmbeddedBroker, store_url: str, tmp_path: Path
) -> None:
    """The broker loses everything before the connector ran: the hub publishes notifications
    without a receipt again; each is delivered exactly once, and the one the back office
    already had (its receipt was lost) is absorbed as a DUPLICATE."""
    ids = two_clients(harness)
    kept, refused = ids[KEPT["subject"]], ids[REFUSED["subject"]]
    published_at = time.monotonic()
    drop = tmp_path / "drop"
    # The back office already has the first one; its receipt went down with the broker.
    [first] = [
        r
        for r in harness.read(notify_topic(RECIPIENT))
        if harness.decode(r.value)["notification_id"] == kept
    ]
    sink = resolve_sink("filedrop")(RECIPIENT, {"directory": str(drop)})
    try:
        notice = to_notification(harness.app.codec.decode(first.value))
        assert sink.deliver(notice).outcome is Outcome.DELIVERED
    finally:
        sink.close()
    assert far_side(drop) == Counter({kept: 1})

    broker.stop()  # memory only: topics, records and committed offsets are gone
    try:
        replacement = EmbeddedBroker()
    except ConfigError as exc:
        unavailable(f"no Tansu broker binary: {exc}")
    with replacement:
        settings = settings_for(store_url, replacement.bootstrap)
        # One republish each, however long the group join keeps this idle run going (the
        # worker looks again every few seconds and would republish again).
        settings = settings.model_copy(
            update={"hub": HubSettings(redeliver_after_s=1.0, redeliver_max=1)}
        )
        app = signing(App.from_settings(settings))
        try:
            app.ensure_topics(app.kafka())
            after = Harness(app, app.kafka())
            assert after.read(notify_topic(RECIPIENT)) == []
            # The point is that time passes: the hub republishes only what has waited longer
            # than redeliver_after_s for its receipt, and nothing else marks that moment.
            time.sleep(max(0.0, published_at + 1.2 - time.monotonic()))

            totals = after.run_worker(records=None)
            assert totals.republished == 2
            assert (totals.accepted, totals.published) == (0, 0)
            again = after.read(notify_topic(RECIPIENT))
            assert sorted(after.decode(r.value)["notification_id"] for r in again) == sorted(
                [kept, refused]
            )

            delivered = after.run_connectors({RECIPIENT: ("filedrop", {"directory": str(drop)})})
            assert (delivered[RECIPIENT].delivered, delivered[RECIPIENT].duplicates) == (1, 1)
            assert far_side(drop) == Counter({kept: 1, refused: 1})

            receipts_taken(after)
            statuses = {d.notification_id: d.status for d in app.store.deliveries()}
            assert statuses == {kept: "delivered", refused: "delivered"}
            assert app.store.awaiting_receipt(RECIPIENT) == 0
            assert kinds(after)["delivered"] == 2
            verified(app)
        finally:
            app.close()


def test_a_retry_wait_longer_than_the_poll_interval_keeps_the_group_membership(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Retrying in place for longer than max_poll_interval_ms still commits the batch: one
    dead letter, nothing left to redeliver."""
    settings = settings_for(
        f"sqlite:///{tmp_path / 'hub.db'}", broker.bootstrap, signing_key=tmp_path / "key.pem"
    )
    poll_interval_s = settings.broker.max_poll_interval_ms / 1000
    connector = ConnectorSettings(
        errors_retry_timeout_ms=int(poll_interval_s * 1000) + 2_000,
        errors_retry_delay_max_ms=int(poll_interval_s * 1000) * 2,
    )
    settings = settings.model_copy(update={"connector": connector})
    app = signing(App.from_settings(settings))
    try:
        app.ensure_topics(app.kafka())
        harness = Harness(app, app.kafka())
        harness.client({PUBLISHER: "SBC-1", RECIPIENT: KEPT["subject"]}, consents=[RECIPIENT])
        harness.publish([address_payload("SBC-1")])
        assert harness.run_worker(records=1).accepted == 1

        wait = {"wait": str(poll_interval_s + 1)}  # one wait, then the budget is spent
        totals = run_connector(harness, f"{__name__}:SlowBackOffice", wait, records=1)
        assert (totals.failed, totals.retries) == (1, 1)
        assert len(harness.read(dlq_topic(RECIPIENT))) == 1
        group = f"tellonce-connector-{RECIPIENT}"
        assert topic_lag(app.kafka(), group, notify_topic(RECIPIENT)) == (0, 1)
    finally:
        app.close()
