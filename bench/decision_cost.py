"""What one decision costs as the consent store grows (``hub_bench.py``'s ``decisions`` part).

Per population (``--populations``, default 2,500 and 250,000 clients: 10,000 and 1,000,000
consents), a fresh PostgreSQL database is migrated by the hub itself (``App.store``), the
clients of ``population.seed_bulk`` are written into it by COPY and its tables analysed. Then,
in this process, the hub's ``BatchProcessor``, composed as ``App.hub_worker`` composes it,
processes batches of 200 AddressChanged events about clients drawn at random (the same seeded
draw pattern for every population), each batch in its own store transaction that is
committed, as the worker commits it. The populations take turns, one batch each per round, so
drift on a shared machine hits them alike; the first round warms connections and caches and is
not counted. Per batch: the time of the whole transaction (process and commit) per event, and
the part of it spent in the store's reads a decision depends on (``known_events``,
``persons_for``, ``links_of``, ``consent_history``), timed around those calls. The writes are
the same rows whatever the population, so the reads are what could grow with it.
"""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from databases import fresh_postgres
from population import CONSENTED, EVENT_TYPE, PUBLISHER, Say, address_payload, seed_bulk

from hub.adapters.sql import SqlStore
from hub.bootstrap import App
from hub.config.settings import AuditSettings, Settings, StoreSettings
from hub.model import InboundMessage
from hub.ports import Transaction
from hub.processing.life_events import BatchProcessor
from hub.wire.publishing import event_message
from hub.wire.topics import LIFEEVENTS_TOPIC

READS = frozenset({"known_events", "persons_for", "links_of", "consent_history"})
PARTITIONS = 3


class TimedReads:
    """A store transaction whose reads (``READS``) add their time to ``seconds``."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._tx, name)
        if name not in READS:
            return found

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return found(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return timed


@dataclass
class DecisionCost:
    """One population's measurement: per counted batch, ms per event, whole and reads only."""

    people: int
    seed_s: float = 0.0
    batch_ms: list[float] = field(default_factory=list)  # per event
    lookup_ms: list[float] = field(default_factory=list)  # per event
    disclosed: int = 0
    withheld: int = 0
    load_before: list[float] = field(default_factory=list)

    @property
    def consents(self) -> int:
        return self.people * len(CONSENTED)

    def as_dict(self) -> dict[str, Any]:
        def median(values: list[float]) -> float | None:
            return round(statistics.median(values), 3) if values else None

        return {
            "people": self.people,
            "consents": self.consents,
            "identity_links": self.people * (1 + len(CONSENTED)),
            "seed_s": round(self.seed_s, 1),
            "batches": len(self.batch_ms),
            "ms_per_event": median(self.batch_ms),
            "lookup_ms_per_event": median(self.lookup_ms),
            "ms_per_event_runs": [round(v, 3) for v in self.batch_ms],
            "lookup_ms_per_event_runs": [round(v, 3) for v in self.lookup_ms],
            "disclosed": self.disclosed,
            "withheld": self.withheld,
            "load_before": self.load_before,
        }


def batches_about(
    app: App, people: int, count: int, size: int, tag: str
) -> list[list[InboundMessage]]:
    """``count`` batches of ``size`` AddressChanged records about random clients."""
    draw = random.Random(20261129)  # the same pattern of draws for every population
    at = datetime.now(UTC)
    out: list[list[InboundMessage]] = []
    offset = 0
    for _ in range(count):
        batch = []
        for _ in range(size):
            key, value, headers, _ce_id = event_message(
                app.codec,
                source=PUBLISHER,
                event_type=EVENT_TYPE,
                payload=address_payload(offset, draw.randrange(people)),
                at=at,
                event_id=f"decide-{tag}-{offset}",
            )
            partition = offset % PARTITIONS
            batch.append(
                InboundMessage(
                    LIFEEVENTS_TOPIC, partition, offset // PARTITIONS, key, value, list(headers)
                )
            )
            offset += 1
        out.append(batch)
    return out


@dataclass
class Seeded:
    """One population's store, seeded, with the processor and the batches to decide on it."""

    cost: DecisionCost
    store: SqlStore
    processor: BatchProcessor
    work: list[list[InboundMessage]]

    def decide(self, batch: list[InboundMessage], *, counted: bool) -> None:
        """One batch in one committed transaction; its times kept when ``counted``."""
        started = time.perf_counter()
        with self.store.transaction() as tx:
            reads = TimedReads(tx)
            summary = self.processor.process(cast(Transaction, reads), batch)
        elapsed = time.perf_counter() - started
        if counted:
            self.cost.batch_ms.append(1000 * elapsed / len(batch))
            self.cost.lookup_ms.append(1000 * reads.seconds / len(batch))
            self.cost.disclosed += summary.disclosed
            self.cost.withheld += summary.withheld


@contextlib.contextmanager
def seeded(
    pg_url: str, people: int, *, batches: int, size: int, deadline: float, say: Say
) -> Iterator[Seeded]:
    """``people`` clients on a fresh database on ``pg_url``, migrated by the hub and seeded,
    with ``batches`` batches of ``size`` events about them; the database is dropped after."""
    cost = DecisionCost(people)
    with tempfile.TemporaryDirectory(prefix="tellonce-dc-") as tmp, fresh_postgres(pg_url) as url:
        settings = Settings(
            store=StoreSettings(url=url),
            audit=AuditSettings(signing_key=Path(tmp) / "audit-key.pem", create_key=True),
        )
        app = App.from_settings(settings)
        try:
            store = app.store  # migrated by the hub, as ``tellonce db upgrade`` does
            say(f"  seeding {people:,} clients ({cost.consents:,} consents)")
            cost.seed_s = seed_bulk(store.engine, store.vault, people, say, deadline)
            say(f"  {people:,} clients seeded in {cost.seed_s:.1f} s")
            processor = BatchProcessor(  # as App.hub_worker composes it
                directory=app.directory,
                codec=app.codec,
                clock=lambda: datetime.now(UTC),
                group_id=settings.hub.group_id,
                pseudonyms=app.pseudonyms(),
                clock_skew=settings.limits.clock_skew,
            )
            work = batches_about(app, people, batches, size, str(people))
            yield Seeded(cost, store, processor, work)
        finally:
            app.close()


def run(
    pg_url: str,
    populations: list[int],
    *,
    batches: int,
    size: int,
    timeout_s: float,
    say: Say,
) -> dict[str, Any]:
    """Seed every population on its own database, then decide their batches in turns (one of
    each per round, after a warm-up round), so drift on a shared machine hits them alike; the
    headline keys compare the smallest and the largest. Raises TimeoutError after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    with contextlib.ExitStack() as stack:
        worlds = [
            stack.enter_context(
                seeded(pg_url, p, batches=batches + 1, size=size, deadline=deadline, say=say)
            )
            for p in sorted(populations)
        ]
        load = [round(v, 2) for v in os.getloadavg()]
        say(f"  deciding {batches} batches of {size} per population, in turns (load {load[0]})")
        for n in range(batches + 1):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the decisions part ran out of time at round {n}")
            for world in worlds:
                world.decide(world.work[n], counted=n > 0)  # round 0 warms up
        for world in worlds:
            cost = world.cost
            cost.load_before = load
            line = cost.as_dict()
            say(
                f"  {cost.consents:,} consents: {line['ms_per_event']:.3f} ms per event, of "
                f"which {line['lookup_ms_per_event']:.3f} ms in the reads"
            )
        return summary_of([w.cost for w in worlds])


def label(consents: int) -> str:
    """``10k``, ``100k``, ``1m``: the suffix of a population's keys."""
    if consents >= 1_000_000 and consents % 1_000_000 == 0:
        return f"{consents // 1_000_000}m"
    if consents >= 1_000 and consents % 1_000 == 0:
        return f"{consents // 1_000}k"
    return str(consents)


def summary_of(costs: list[DecisionCost]) -> dict[str, Any]:
    """``decision_ms_per_event_<n>``, ``decision_lookup_ms_per_event_<n>`` per population and
    ``decision_cost_ratio_<largest>_vs_<smallest>`` (whole and reads only) for the JSON."""
    out: dict[str, Any] = {}
    for cost in costs:
        line = cost.as_dict()
        out[f"decision_ms_per_event_{label(cost.consents)}"] = line["ms_per_event"]
        out[f"decision_lookup_ms_per_event_{label(cost.consents)}"] = line["lookup_ms_per_event"]
    if len(costs) >= 2:
        small, large = min(costs, key=lambda c: c.people), max(costs, key=lambda c: c.people)
        tail = f"{label(large.consents)}_vs_{label(small.consents)}"

        def ratio(key: str) -> float | None:
            big, few = large.as_dict()[key], small.as_dict()[key]
            return round(big / few, 3) if big and few else None

        out[f"decision_cost_ratio_{tail}"] = ratio("ms_per_event")
        out[f"decision_lookup_ratio_{tail}"] = ratio("lookup_ms_per_event")
    out["decisions"] = {label(c.consents): c.as_dict() for c in costs}
    return out
