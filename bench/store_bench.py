"""What one micro-batch of life events costs the store, without a broker.

Runs ``BatchProcessor.process`` on the real ``SqlStore`` (a SQLite file and/or a PostgreSQL
database it creates), one transaction per batch as the worker does, on synthetic AddressChanged
events each fanning out to the shipped directory's 8 recipients: 4 disclosures (consent given)
and 4 withholdings. Reports events/s (median of ``--runs``, each on a fresh database) and the
SQL statements per batch (``before_cursor_execute`` calls; an executemany counts once), with
the load average before each store. Removes what it created.

Run: ``.venv/bin/python bench/store_bench.py --store both`` (``--json`` prints one object).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from databases import fresh_postgres
from sqlalchemy import event

from consent.model import ConsentState, Evidence
from hub.adapters.avro import AvroCodec
from hub.adapters.sql import SqlStore
from hub.audit.pseudonyms import Pseudonyms
from hub.config.directory import load_directory
from hub.consents.service import ConsentService
from hub.model import InboundMessage
from hub.processing.life_events import BatchProcessor
from hub.testing.vaults import throwaway_vault
from hub.wire.catalog import load_catalog
from hub.wire.publishing import event_message
from hub.wire.topics import LIFEEVENTS_TOPIC

PUBLISHER = "bc-service-bc"
NOW = datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)
PERSONS = 100  # clients the events are about, each linked everywhere
CONSENTING = 4  # of the 8 recipients, those with consent given: the rest are withheld
PARTITIONS = 3


def messages(codec: AvroCodec, count: int) -> list[InboundMessage]:
    """``count`` AddressChanged records on the life-events topic, round-robin over partitions."""
    out = []
    for n in range(count):
        payload = {
            "subject_id": f"SBC-{n % PERSONS}",
            "effective_date": NOW.date(),
            "new_address": {
                "lines": [f"{n} Oak St"],
                "municipality": "Vancouver",
                "province": "BC",
                "postal_code": "V5K 0A1",
            },
            "mailing_address": None,
        }
        key, value, headers, _ = event_message(
            codec,
            source=PUBLISHER,
            event_type="AddressChanged",
            payload=payload,
            at=NOW - timedelta(minutes=1),
            event_id=f"evt-{n:08d}",
        )
        partition = n % PARTITIONS
        out.append(
            InboundMessage(LIFEEVENTS_TOPIC, partition, n // PARTITIONS, key, value, headers)
        )
    return out


def seed(store: SqlStore) -> None:
    """Link every client at the publisher and at each recipient; consent to the first four."""
    directory = load_directory()
    recipients = [p.id for p in directory.recipients_of("AddressChanged", origin=PUBLISHER)]
    service = ConsentService(store, directory, clock=lambda: NOW)
    evidence = Evidence("counter", "staff-1", NOW - timedelta(days=1))
    for n in range(PERSONS):
        person = service.link(PUBLISHER, f"SBC-{n}", evidence)
        for recipient in recipients:
            service.link(recipient, f"{recipient[:8]}-{n}", evidence, to=person)
        for recipient in recipients[:CONSENTING]:
            service.record(person, recipient, ["AddressChanged"], ConsentState.GIVEN, evidence)


def run_once(url: str, batch: list[list[InboundMessage]]) -> tuple[float, float, int]:
    """(events/s, statements per batch, disclosures) over the batches, on a fresh store."""
    keys = tempfile.TemporaryDirectory()
    store = SqlStore.open(url, vault=throwaway_vault(Path(keys.name)))
    try:
        seed(store)
        codec = AvroCodec(load_catalog())
        processor = BatchProcessor(
            directory=load_directory(),
            codec=codec,
            clock=lambda: NOW,
            group_id="bench",
            pseudonyms=Pseudonyms(bytes(range(32))),
        )
        statements = 0

        def count(*_: Any) -> None:
            nonlocal statements
            statements += 1

        event.listen(store.engine, "before_cursor_execute", count)
        disclosed = 0
        started = time.perf_counter()
        for messages_ in batch:
            with store.transaction() as tx:
                disclosed += processor.process(tx, messages_).disclosed
        elapsed = time.perf_counter() - started
        event.remove(store.engine, "before_cursor_execute", count)
        events = sum(len(b) for b in batch)
        return events / elapsed, statements / len(batch), disclosed
    finally:
        store.close()
        keys.cleanup()


@contextlib.contextmanager
def database(kind: str, server: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
    else:
        with fresh_postgres(server) as url:
            yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    codec = AvroCodec(load_catalog())
    records = messages(codec, args.events)
    batches = [records[i : i + args.batch] for i in range(0, len(records), args.batch)]
    kinds = ("sqlite", "postgres") if args.store == "both" else (args.store,)
    result: dict[str, Any] = {"events": args.events, "batch": args.batch, "runs": args.runs}
    for kind in kinds:
        load = os.getloadavg()
        rates, statements = [], []
        for _ in range(args.runs):
            with database(kind, args.postgres) as url:
                rate, per_batch, disclosed = run_once(url, batches)
            rates.append(rate)
            statements.append(per_batch)
        result[kind] = {
            "load_before": [round(x, 2) for x in load],
            "eps_median": round(statistics.median(rates), 1),
            "eps_runs": [round(r, 1) for r in rates],
            "statements_per_batch": statistics.median(statements),
            "disclosed": disclosed,
        }
        if not args.json:
            print(f"{kind}: {result[kind]}", flush=True)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
