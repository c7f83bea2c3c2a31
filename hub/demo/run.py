"""`tellonce demo`: the whole flow on the embedded default, with a scenario that checks itself.

The scenario (``hub.demo.scenario``) links synthetic people and records their consents; three
publishers report its events. The hub and one connector per recipient run in threads; at the end
``hub.demo.report`` compares every outcome with what the scenario expects and prints it.

With ``--bootstrap`` it runs on an existing Kafka cluster instead of an embedded Tansu. That
cluster's topics may hold earlier runs' records, which this run's new store knows nothing of, so
the run starts every consumer where the topics end before it publishes (``_start_at_the_end``),
and its hub joins a consumer group of its own: the fence keeps a group to the one store that
first claimed it, and an earlier run's store is gone.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog

from consent.model import ConsentState, Evidence
from hub.adapters import topics
from hub.adapters.record_keys import RecordKey
from hub.bootstrap import App, KafkaConnection, utc_now
from hub.config import logs
from hub.config.directory import Program
from hub.config.settings import Settings
from hub.delivery.runner import ConnectorRunner
from hub.demo.report import build_report, print_report
from hub.demo.scenario import PEOPLE, TABLE_JURISDICTIONS, WITHDRAWAL, Step, scenario
from hub.errors import TellonceError
from hub.ports import Producer
from hub.processing.worker import HubWorker
from hub.wire.publishing import event_message
from hub.wire.signatures import signed
from hub.wire.topics import LIFEEVENTS_TOPIC, connector_group

# The scenario takes seconds; this leaves room for a connector whose group join was lost to be
# replaced (22 s with the default settings, see hub.adapters.kafka_join) twice over.
DEADLINE_S = 90.0
SHUTDOWN_S = 5.0  # after Ctrl-C, how long clients may take to close before the demo exits


def run_demo(
    *, as_json: bool, keep: Path | None, verbose: bool, bootstrap: str | None = None
) -> int:
    """Play the scenario in a fresh folder (``keep`` keeps it), print what happened (its JSON
    summary with ``as_json``), and return 0 when every outcome matched the scenario. On an
    embedded Tansu, or on the Kafka cluster at ``bootstrap`` (topics made with the broker
    settings' partitions and replication factor)."""
    logs.configure("info" if verbose else "error", "console")
    if not verbose:
        # The demo checks every outcome itself; kafka-python's connection errors are noise
        # here (a terminal's Ctrl-C stops the embedded broker before the clients).
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    base = Settings()
    # The demo's publishers and connectors sign with keys it makes for the run, and the hub
    # requires it.
    hub_update: dict[str, Any] = {
        "poll_timeout_ms": 200,
        "require_signatures": True,
        "require_signed_receipts": True,
    }
    if bootstrap:
        # A cluster that does not answer (or refuses the TELLONCE_BROKER__ security settings):
        # one line, before any file is made.
        topics.probe(KafkaConnection.from_settings(base.broker, bootstrap))
        hub_update["group_id"] = f"tellonce-demo-{uuid.uuid4().hex[:12]}"
    workdir = keep or Path(tempfile.mkdtemp(prefix="tellonce-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    settings = base.model_copy(
        update={
            "store": base.store.model_copy(update={"url": f"sqlite:///{workdir / 'tellonce.db'}"}),
            "broker": base.broker.model_copy(update={"bootstrap_servers": bootstrap}),
            "hub": base.hub.model_copy(update=hub_update),
            "audit": base.audit.model_copy(
                update={"signing_key": workdir / "audit-key.pem", "create_key": True}
            ),
            "connector": base.connector.model_copy(update={"require_signed_notices": True}),
        }
    )
    app = App.from_settings(settings)
    keys = _program_keys(app)
    started = time.monotonic()
    stop = threading.Event()
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def body(kafka: KafkaConnection) -> None:
        try:
            outcome["report"] = _run(app, kafka, keys, workdir, started, stop)
        except _Interrupted:
            pass
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            done.set()

    try:
        with app.broker() as kafka:
            # The flow runs in a thread so that Ctrl-C always reaches this one: kafka-python
            # swallows a KeyboardInterrupt raised inside its own calls and would go on. Wait on
            # an Event, not Thread.join: a join that Ctrl-C interrupts marks the thread as
            # ended while it still runs (CPython 3.11).
            threading.Thread(target=body, args=(kafka,), name="demo", daemon=True).start()
            try:
                while not done.wait(0.2):
                    pass
            except KeyboardInterrupt:
                _quiet()
                stop.set()
                # Clients close while the broker still answers; one stuck is abandoned.
                done.wait(SHUTDOWN_S)
                raise
    finally:
        app.close()
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if "error" in outcome:
        raise outcome["error"]
    report: dict[str, Any] = outcome["report"]
    if as_json:
        print(json.dumps(report["summary"]))
    else:
        print_report(report)
    return 0 if report["summary"]["matched"] else 1


class _Interrupted(Exception):
    """Ctrl-C: the flow stops where it is and closes its clients."""


def _quiet() -> None:
    """Silence everything but the final line once Ctrl-C is pressed. A terminal sends the
    signal to the embedded broker too, so the clients still closing would log a flood of
    connection errors (and a thread's end a traceback); none of it matters any more."""
    logging.getLogger("kafka").setLevel(logging.CRITICAL + 1)
    structlog.configure(processors=[_drop])
    threading.excepthook = lambda _args: None


def _drop(_logger: Any, _method: str, _event: Any) -> Any:
    raise structlog.DropEvent


@dataclass(frozen=True, slots=True)
class _Keys:
    publishers: dict[str, RecordKey]  # sign life events
    connectors: dict[str, RecordKey]  # sign receipts


def _program_keys(app: App) -> _Keys:
    """A key for each publishing program and one for each recipient's connector, made for this
    run and listed in the app's directory (in memory: the directory file is left as it is),
    with the hub's own key, which signs the notices the connectors check."""
    keys = _Keys({}, {})
    since = utc_now() - timedelta(minutes=1)
    app.directory = app.directory.with_hub_keys(app.hub_key_entry(since))
    for program in app.directory.programs:
        made = []
        if program.publishes:
            keys.publishers[program.id] = RecordKey.generate()
            made.append(keys.publishers[program.id])
        if program.subscriptions:
            keys.connectors[program.id] = RecordKey.generate()
            made.append(keys.connectors[program.id])
        if made:
            signed = program.with_keys(*(key.directory_entry(since) for key in made))
            app.directory = app.directory.with_program(signed)
    return keys


def _run(
    app: App,
    kafka: KafkaConnection,
    keys: _Keys,
    workdir: Path,
    started: float,
    stop: threading.Event,
) -> dict[str, Any]:
    app.ensure_topics(kafka)
    if app.settings.broker.bootstrap_servers:
        _start_at_the_end(app, kafka)
    service = app.consent()
    seeded = utc_now() - timedelta(days=30)
    for person in PEOPLE.values():
        evidence = Evidence("counter", "staff-demo", seeded)
        programs = list(person.links.items())
        person_id = service.link(programs[0][0], programs[0][1], evidence)
        for program, local_id in programs[1:]:
            service.link(program, local_id, evidence, to=person_id)
        for recipient, event_types in person.consents.items():
            service.record(person_id, recipient, list(event_types), ConsentState.GIVEN, evidence)

    _check(stop)
    worker = app.hub_worker(kafka)
    runners = []
    try:
        for subscriber in app.directory.subscribers():
            _check(stop)
            signer = keys.connectors[subscriber.id]
            runners.append(_connector(app, kafka, subscriber, signer, workdir))
    except BaseException:
        worker.close()
        for runner in runners:
            runner.close()
        raise
    threads = [threading.Thread(target=worker.run, args=(stop,), daemon=True)]
    threads += [threading.Thread(target=r.run, args=(stop,), daemon=True) for r in runners]
    for thread in threads:
        thread.start()

    first, second = scenario(utc_now().date())
    producer = app.producer(kafka)
    wait = functools.partial(_wait, started=started, stop=stop)
    try:
        _publish(app, producer, keys.publishers, first, stop)
        wait(lambda: _handled(worker) >= len(first), "the hub to process the first events")
        withdrawer, recipient, event_type = WITHDRAWAL
        service.record(
            f"bc-service-bc:{PEOPLE[withdrawer].links['bc-service-bc']}",
            recipient,
            [event_type],
            ConsentState.WITHDRAWN,
            Evidence("online", "client", utc_now()),
        )
        _publish(app, producer, keys.publishers, second, stop)
        steps = first + second
        wait(lambda: _handled(worker) >= len(steps), "the hub to process every event")
        expected_deliveries = sum(len(s.disclosed) for s in steps)
        # The hub consumes the connectors' receipts: the loop is closed when it recorded them.
        wait(
            lambda: len(_delivered(app)) >= expected_deliveries,
            "connectors to deliver every notification and the hub to record their receipts",
        )
        receipts = _delivered(app)
    finally:
        stop.set()
        deadline = time.monotonic() + 10
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        worker.close()
        for runner in runners:
            runner.close()
        producer.close()
    with app.store.transaction() as tx:  # sign whatever the last batches left unsigned
        app.notary().maybe_checkpoint(tx, utc_now(), force=True)
    return build_report(app, steps, receipts, kafka.bootstrap, workdir, started)


def _start_at_the_end(app: App, kafka: KafkaConnection) -> None:
    """Start this run's hub and connectors where the topics end now, before it publishes: the
    records already there are earlier runs' (or another hub's), unknown to this new store. The
    hub's positions live in its store, so they are saved there; the connectors' are committed
    to their groups, which Kafka refuses while a connector of the same recipient runs."""
    group = app.settings.hub.group_id
    hub_topics = [LIFEEVENTS_TOPIC, *(intake.topic for intake in app.intakes())]
    with app.store.transaction() as tx:
        for topic, hub_ends in topics.end_offsets(kafka, hub_topics).items():
            tx.save_offsets(group, topic, hub_ends)
    for subscriber in app.directory.subscribers():
        notify_ends = topics.end_offsets(kafka, [subscriber.notify_topic])
        topics.commit_start(kafka, connector_group(subscriber.id), notify_ends)


def _delivered(app: App) -> set[str]:
    return {d.notification_id for d in app.store.deliveries() if d.status == "delivered"}


def _connector(
    app: App, kafka: KafkaConnection, recipient: Program, signer: RecordKey, workdir: Path
) -> ConnectorRunner:
    if recipient.jurisdiction in TABLE_JURISDICTIONS:
        table = workdir / f"backoffice-{recipient.id}.db"
        sink, options = "sqltable", {"url": f"sqlite:///{table}"}
    else:
        sink, options = "filedrop", {"directory": str(workdir / "dropbox" / recipient.id)}
    return app.connector(kafka, recipient.id, sink, options, receipt_signer=signer)


def _publish(
    app: App,
    producer: Producer,
    keys: dict[str, RecordKey],
    steps: list[Step],
    stop: threading.Event,
) -> None:
    for step in steps:
        _check(stop)
        # The corrupt step sends a good event cut short, as a broken client might.
        payload = step.payload or scenario(utc_now().date())[0][0].payload
        assert payload is not None
        key, value, headers, ce_id = event_message(
            app.codec,
            source=step.source,
            event_type=step.event_type,
            payload=payload,
            at=utc_now(),
            event_id=step.event_id,
        )
        if step.payload is None:
            value = value[: len(value) // 2]
        if not step.unsigned:  # signed as sent: the cut record is refused for what it is
            headers = signed(key, value, headers, keys[step.source])
        step.event_id = ce_id
        producer.send(LIFEEVENTS_TOPIC, key, value, headers)
        producer.flush()  # one at a time: the table reads in publishing order


def _handled(worker: HubWorker) -> int:
    totals = worker.totals
    return totals.accepted + totals.rejected + totals.duplicates


def _wait(
    condition: Callable[[], bool], what: str, *, started: float, stop: threading.Event
) -> None:
    while not condition():
        if time.monotonic() - started > DEADLINE_S:
            raise TellonceError(
                f"the demo gave up waiting for {what} after {DEADLINE_S:.0f} s; run "
                "'tellonce demo --verbose' to see the hub's and connectors' logs"
            )
        if stop.wait(0.2):
            raise _Interrupted


def _check(stop: threading.Event) -> None:
    if stop.is_set():
        raise _Interrupted
