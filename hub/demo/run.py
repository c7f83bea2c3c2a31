"""`tellonce demo`: the whole flow on the embedded default, with a scenario that checks itself.

Synthetic people are linked and give consents; three publishers report events, among them one
the hub must reject, a corrupt message, an exact duplicate, one for a program without consent,
and a consent withdrawal between two events for the same person. The hub and one connector per
recipient run in threads; at the end every outcome is compared with what the scenario expects.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import structlog

from consent.model import ConsentState, Evidence
from hub.audit.oversight import reconcile
from hub.bootstrap import App, utc_now
from hub.config import logs
from hub.config.settings import Settings
from hub.delivery.runner import ConnectorRunner
from hub.errors import TellonceError
from hub.model import Outcome
from hub.processing.worker import HubWorker
from hub.wire.publishing import event_message
from hub.wire.topics import LIFEEVENTS_TOPIC

DEADLINE_S = 50.0
SHUTDOWN_S = 5.0  # after Ctrl-C, how long clients may take to close before the demo exits


@dataclass(frozen=True)
class Person:
    name: str
    links: dict[str, str]  # program -> local id
    consents: dict[str, tuple[str, ...]]  # recipient -> event types


PEOPLE = {
    "alex": Person(
        "Alex",
        {
            "bc-service-bc": "SBC-100234",
            "cra-individual": "CRA-A7F3K2",
            "esdc-cpp": "CPP-88120",
            "bc-msp": "MSP-9876543218",
            "bc-icbc-licensing": "DL-7731904",
            "vancouver-property-tax": "VAN-FOLIO-0231",
        },
        {
            "cra-individual": ("AddressChanged",),
            "esdc-cpp": ("AddressChanged", "NameChanged"),
            "bc-msp": ("AddressChanged",),
            "bc-icbc-licensing": ("AddressChanged",),
            # linked to the city, but never agreed to tell it: the demo's "no consent" case
        },
    ),
    "sam": Person(
        "Sam",
        {
            "bc-vital-statistics": "VS-2026-004417",
            "cra-individual": "CRA-Q2W8E1",
            "esdc-cpp": "CPP-30571",
            "bc-msp": "MSP-9123456784",
        },
        {
            "cra-individual": ("DeathReported",),
            "esdc-cpp": ("DeathReported",),
            "bc-msp": ("DeathReported",),
        },
    ),
    "jordan": Person(
        "Jordan",
        {
            "bc-service-bc": "SBC-100877",
            "cra-individual": "CRA-Z9X4C7",
            "bc-msp": "MSP-9345678129",
            "bc-icbc-licensing": "DL-5510277",
        },
        {
            "cra-individual": ("AddressChanged",),
            "bc-msp": ("AddressChanged",),
            "bc-icbc-licensing": ("AddressChanged",),
        },
    ),
    "priya": Person(
        "Priya",
        {
            "cra-individual": "CRA-P5L2M8",
            "esdc-cpp": "CPP-61904",
            "on-ohip": "OHIP-4402-118-207",
            "toronto-property-tax": "TOR-ROLL-1904-0031",
        },
        {
            "esdc-cpp": ("AddressChanged",),
            "on-ohip": ("AddressChanged",),
            "toronto-property-tax": ("AddressChanged",),
        },
    ),
}

# Provincial and territorial back offices take rows in a staging table; the others a file drop.
TABLE_JURISDICTIONS = {"bc", "on", "yt"}


def _address(lines: list[str], city: str, province: str, postal: str) -> dict[str, Any]:
    return {"lines": lines, "municipality": city, "province": province, "postal_code": postal}


@dataclass
class Step:
    label: str
    person: str
    source: str
    event_type: str
    payload: dict[str, Any] | None  # None: raw bytes (see `raw`)
    disclosed: set[str] = field(default_factory=set)
    withheld: dict[str, str] = field(default_factory=dict)  # others: no_identity_link
    rejected: str | None = None
    duplicate_of: int | None = None
    raw: bytes | None = None
    event_id: str | None = None


def scenario(today: date) -> tuple[list[Step], list[Step]]:
    alex_move = {
        "subject_id": "SBC-100234",
        "effective_date": today - timedelta(days=3),
        "new_address": _address(["1200 Main Street", "Unit 4"], "Vancouver", "BC", "V6A 2T2"),
        "mailing_address": None,
    }
    first = [
        Step(
            "address change",
            "alex",
            "bc-service-bc",
            "AddressChanged",
            alex_move,
            disclosed={"cra-individual", "esdc-cpp", "bc-msp", "bc-icbc-licensing"},
            withheld={"vancouver-property-tax": "no_consent"},
            event_id="sbc-2026-000101",
        ),
        Step(
            "same message again",
            "alex",
            "bc-service-bc",
            "AddressChanged",
            alex_move,
            duplicate_of=1,
            event_id="sbc-2026-000101",
        ),
        Step(
            "death reported",
            "sam",
            "bc-vital-statistics",
            "DeathReported",
            {
                "subject_id": "VS-2026-004417",
                "date_of_death": today - timedelta(days=6),
                "province_of_death": "BC",
                "death_registration_number": "2026-59-004417",
                "informant_relationship": "SPOUSE",
            },
            disclosed={"cra-individual", "esdc-cpp", "bc-msp"},
        ),
        Step(
            "postal code of another province",
            "jordan",
            "bc-service-bc",
            "AddressChanged",
            {
                "subject_id": "SBC-100877",
                "effective_date": today,
                "new_address": _address(["88 Bay Street"], "Toronto", "ON", "V5K 0A1"),
                "mailing_address": None,
            },
            rejected="invalid_event",
        ),
        Step(
            "corrupt bytes", "jordan", "bc-service-bc", "AddressChanged", None, rejected="truncated"
        ),
        Step(
            "address change",
            "jordan",
            "bc-service-bc",
            "AddressChanged",
            {
                "subject_id": "SBC-100877",
                "effective_date": today - timedelta(days=1),
                "new_address": _address(["455 Granville Street"], "Vancouver", "BC", "V6C 1T2"),
                "mailing_address": _address(["PO Box 2210 Stn Main"], "Vancouver", "BC", "V6B 3W5"),
            },
            disclosed={"cra-individual", "bc-msp", "bc-icbc-licensing"},
        ),
    ]
    second = [
        Step(
            "moved again after withdrawing",
            "jordan",
            "bc-service-bc",
            "AddressChanged",
            {
                "subject_id": "SBC-100877",
                "effective_date": today,
                "new_address": _address(["3100 Kingsway"], "Vancouver", "BC", "V5R 5J9"),
                "mailing_address": None,
            },
            disclosed={"cra-individual", "bc-msp"},
            withheld={"bc-icbc-licensing": "consent_withdrawn"},
        ),
        Step(
            "name change",
            "alex",
            "bc-service-bc",
            "NameChanged",
            {
                "subject_id": "SBC-100234",
                "effective_date": today - timedelta(days=10),
                "given_names": "Alex Jordan",
                "family_name": "Tremblay-Singh",
                "reason": "MARRIAGE",
            },
            disclosed={"esdc-cpp"},
        ),
        Step(
            "address change told to the CRA",
            "priya",
            "cra-individual",
            "AddressChanged",
            {
                "subject_id": "CRA-P5L2M8",
                "effective_date": today - timedelta(days=2),
                "new_address": _address(
                    ["220 King Street West", "Suite 1200"], "Toronto", "ON", "M5H 1K4"
                ),
                "mailing_address": _address(["PO Box 4410 Stn A"], "Toronto", "ON", "M5W 3K1"),
            },
            disclosed={"esdc-cpp", "on-ohip", "toronto-property-tax"},
        ),
    ]
    return first, second


def run_demo(*, as_json: bool, keep: Path | None, verbose: bool) -> int:
    logs.configure("info" if verbose else "error", "console")
    if not verbose:
        # The demo checks every outcome itself; kafka-python's connection errors are noise
        # here (a terminal's Ctrl-C stops the embedded broker before the clients).
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    workdir = keep or Path(tempfile.mkdtemp(prefix="tellonce-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    base = Settings()
    settings = base.model_copy(
        update={
            "store": base.store.model_copy(update={"url": f"sqlite:///{workdir / 'tellonce.db'}"}),
            "broker": base.broker.model_copy(update={"bootstrap_servers": None}),
            "hub": base.hub.model_copy(update={"poll_timeout_ms": 200}),
            "audit": base.audit.model_copy(
                update={"signing_key": workdir / "audit-key.pem", "create_key": True}
            ),
        }
    )
    app = App.from_settings(settings)
    started = time.monotonic()
    stop = threading.Event()
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def body(bootstrap: str) -> None:
        try:
            outcome["report"] = _run(app, bootstrap, workdir, started, stop)
        except _Interrupted:
            pass
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            done.set()

    try:
        with app.broker() as bootstrap:
            # The flow runs in a thread so that Ctrl-C always reaches this one: kafka-python
            # swallows a KeyboardInterrupt raised inside its own calls and would go on. Wait on
            # an Event, not Thread.join: a join that Ctrl-C interrupts marks the thread as
            # ended while it still runs (CPython 3.11).
            threading.Thread(target=body, args=(bootstrap,), name="demo", daemon=True).start()
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
        _print(report)
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


def _run(
    app: App, bootstrap: str, workdir: Path, started: float, stop: threading.Event
) -> dict[str, Any]:
    app.ensure_topics(bootstrap)
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
    worker = app.hub_worker(bootstrap)
    runners = []
    try:
        for subscriber in app.directory.subscribers():
            _check(stop)
            runners.append(
                _connector(app, bootstrap, subscriber.id, subscriber.jurisdiction, workdir)
            )
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
    producer = app.producer(bootstrap)
    wait = functools.partial(_wait, started=started, stop=stop)
    try:
        _publish(app, producer, first, stop)
        wait(lambda: _handled(worker) >= len(first), "the hub to process the first events")
        service.record(
            f"bc-service-bc:{PEOPLE['jordan'].links['bc-service-bc']}",
            "bc-icbc-licensing",
            ["AddressChanged"],
            ConsentState.WITHDRAWN,
            Evidence("online", "client", utc_now()),
        )
        _publish(app, producer, second, stop)
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
    return _report(app, steps, receipts, bootstrap, workdir, started)


def _delivered(app: App) -> set[str]:
    return {d.notification_id for d in app.store.deliveries() if d.status == "delivered"}


def _connector(
    app: App, bootstrap: str, recipient: str, jurisdiction: str, workdir: Path
) -> ConnectorRunner:
    if jurisdiction in TABLE_JURISDICTIONS:
        url = f"sqlite:///{workdir / f'backoffice-{recipient}.db'}"
        return app.connector(bootstrap, recipient, "sqltable", {"url": url})
    return app.connector(
        bootstrap, recipient, "filedrop", {"directory": str(workdir / "dropbox" / recipient)}
    )


def _publish(app: App, producer: Any, steps: list[Step], stop: threading.Event) -> None:
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
        step.event_id = ce_id
        producer.send(LIFEEVENTS_TOPIC, key, value, headers)
        producer.flush()  # one at a time: the table reads in publishing order


def _handled(worker: HubWorker) -> int:
    totals = worker.totals
    return totals.accepted + totals.rejected + totals.duplicates


def _wait(condition: Any, what: str, *, started: float, stop: threading.Event) -> None:
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


def _report(
    app: App,
    steps: list[Step],
    receipts: set[str],
    bootstrap: str,
    workdir: Path,
    started: float,
) -> dict[str, Any]:
    decisions: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    for d in app.store.decisions():
        decisions[(d.source, d.event_id)][d.recipient] = d
    rejections = {r.offset: r for r in app.store.rejections()}
    rejected_reasons = sorted(r.reason for r in rejections.values())
    mismatches: list[str] = []
    rows = []
    for number, step in enumerate(steps, start=1):
        row: dict[str, Any] = {
            "n": number,
            "label": step.label,
            "type": step.event_type,
            "source": step.source,
            "person": PEOPLE[step.person].name,
        }
        if step.rejected:
            row["rejected"] = step.rejected
            if step.rejected not in rejected_reasons:
                mismatches.append(f"#{number}: expected a rejection {step.rejected}")
            else:
                rejected_reasons.remove(step.rejected)
        elif step.duplicate_of:
            row["duplicate_of"] = step.duplicate_of
        else:
            got = decisions.get((step.source, step.event_id or ""), {})
            row["delivered"] = []
            row["withheld"] = []
            for recipient, decision in sorted(got.items()):
                if decision.outcome is Outcome.DISCLOSED:
                    delivered = decision.notification_id in receipts
                    row["delivered"].append((recipient, list(decision.fields), delivered))
                    if recipient not in step.disclosed:
                        mismatches.append(f"#{number}: {recipient} should not have been told")
                    if not delivered:
                        mismatches.append(f"#{number}: no delivery receipt from {recipient}")
                else:
                    row["withheld"].append((recipient, decision.reason))
                    want = step.withheld.get(recipient, "no_identity_link")
                    if recipient in step.disclosed or decision.reason != want:
                        mismatches.append(
                            f"#{number}: {recipient} withheld ({decision.reason}), expected "
                            f"{'disclosure' if recipient in step.disclosed else want}"
                        )
            if not got:
                mismatches.append(f"#{number}: the hub recorded no decisions")
        rows.append(row)
    if rejected_reasons:
        mismatches.append(f"unexpected rejections: {rejected_reasons}")
    all_decisions = [d for by in decisions.values() for d in by.values()]
    signer = app.signer()
    verdict = app.verify_audit()
    reconciled = reconcile(app.store, app.pseudonyms())
    checkpoints = app.store.checkpoints()
    summary = {
        "published": len(steps),
        "delivered": sum(1 for d in all_decisions if d.notification_id in receipts),
        "withheld": sum(1 for d in all_decisions if d.outcome is Outcome.WITHHELD),
        "rejected": len(rejections),
        "duplicates_ignored": sum(1 for s in steps if s.duplicate_of),
        "audit_leaves": verdict.leaves,
        "audit_checkpoints": len(checkpoints),
        "audit_root": checkpoints[-1].root if checkpoints else None,
        "audit_key_id": signer.key_id,
        "audit_verified": verdict.ok,
        "audit_problem": str(verdict.problem) if verdict.problem else None,
        "audit_reconciled": reconciled.ok,
        "matched": not mismatches and verdict.ok and reconciled.ok,
        "mismatches": mismatches,
        "seconds": round(time.monotonic() - started, 1),
    }
    return {
        "rows": rows,
        "summary": summary,
        "bootstrap": bootstrap,
        "workdir": str(workdir),
        "sinks": {
            r.id: ("staging table" if r.jurisdiction in TABLE_JURISDICTIONS else "file drop")
            for r in app.directory.subscribers()
        },
    }


def _print(report: dict[str, Any]) -> None:
    s = report["summary"]
    sinks = report["sinks"]
    print(
        f"tellonce demo: embedded Tansu broker at {report['bootstrap']}, "
        f"SQLite store in {report['workdir']}\n"
    )
    for row in report["rows"]:
        head = f"{row['n']:>2}. {row['type']:<15} from {row['source']:<20} {row['person']:<7}"
        if "rejected" in row:
            print(f"{head} REJECTED ({row['rejected']}): {row['label']}")
            continue
        if "duplicate_of" in row:
            print(f"{head} DUPLICATE of #{row['duplicate_of']}: ignored, nobody told twice")
            continue
        print(f"{head} {row['label']}")
        for recipient, fields, delivered in row["delivered"]:
            mark = "delivered" if delivered else "NOT delivered"
            print(
                f"      {mark:<10} {recipient:<24} {', '.join(fields):<48} "
                f"via {sinks.get(recipient, '?')}"
            )
        for recipient, reason in row["withheld"]:
            print(f"      {'withheld':<10} {recipient:<24} {reason.replace('_', ' ')}")
        if row["n"] == 6:
            print(
                "\n    -> Jordan withdraws consent to tell bc-icbc-licensing of address "
                "changes (online, by the client)\n"
            )
    print()
    print(
        f"published {s['published']}, delivered {s['delivered']}, withheld {s['withheld']}, "
        f"rejected {s['rejected']}, duplicates ignored {s['duplicates_ignored']} "
        f"({s['seconds']} s)"
    )
    verdict = "verified" if s["audit_verified"] else f"NOT VERIFIED ({s['audit_problem']})"
    print(
        f"audit log: {s['audit_leaves']} leaves, checkpoint {s['audit_checkpoints']} signed by "
        f"{s['audit_key_id']}, root {(s['audit_root'] or '')[:16]}…; {verdict}; "
        + ("reconciled with the store" if s["audit_reconciled"] else "NOT RECONCILED")
    )
    if s["matched"]:
        print("every outcome matched the scenario")
    else:
        print("MISMATCH with the scenario:")
        for line in s["mismatches"]:
            print(f"  - {line}")
