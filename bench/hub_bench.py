"""What the hub costs next to a raw Kafka pass-through, its latency under load, and how it scales.

Everything runs in this process tree, on the embedded Tansu broker (``hub.bootstrap``), each
part on a fresh broker and a fresh store: a PostgreSQL database ``tellonce_bench_<random>``
created on ``--pg-url`` and dropped afterwards, or an SQLite file in a temporary directory.
The parts (``--parts``, in this order):

- ``raw``: the baseline. A kafka-python consumer in a group (a child process) reads the life
  events topic and produces 4 messages per event (the record as it came, to the 4 notify
  topics), flushing the producer and committing offsets per poll; no database.
- ``pg`` and ``sqlite``: one hub worker (``tellonce hub run``, a child process) on the same N
  events (``--events``). The directory is the shipped one; ``--people`` clients are linked
  through ``ConsentService`` to the publisher and to 4 subscribers they consent to, so every
  event is disclosed to 4 recipients and withheld from the other 4 (no identity link). As in
  production, every event is signed by the publisher's key, which a copy of the shipped
  directory lists, and the workers require signatures (the default); so in every part but
  ``signatures``' unsigned baseline.
  With ``--plain-hub TELLONCE`` (another installation's command, e.g. the code before
  sealing in its own venv), part ``pg`` runs that installation too, on the same events in the
  same repetition (the two swap order every other repetition); its store is migrated and
  seeded by its own python (``population.py --link``). Reported: ``hub_eps_pg_plain`` and
  ``sealing_cost_ratio`` (plain events/s over this hub's, paired by repetition).
- ``signatures``: what signed life events cost. One hub worker on PostgreSQL, twice on the
  same N events: unsigned, with ``TELLONCE_HUB__REQUIRE_SIGNATURES`` false (the baseline), and
  each signed by the publisher's key (``RecordKey.generate()``, made once per bench run and
  listed for the publisher in a copy of the shipped directory the workers read), with it true
  (the default), so the worker verifies every signature; the two swap order every other
  repetition. Then, in this process, the publisher's cost (``RecordKey.sign(event_digest(...))``
  per event) and the verifier's (``verify_ed25519``), median of 5 passes over the N events
  (``signing_cost.py``).
  Reported: ``hub_eps_unsigned``, ``hub_eps_signed``, ``signed_ratio`` (signed events/s over
  unsigned, paired by repetition), ``sign_per_s``, ``verify_per_s``, ``digest_per_s``.
- ``latency``: one hub worker on PostgreSQL; events offered at each of ``--rates`` per second
  for ``--duration`` s; latency is the notice's record timestamp on the notify topic (set by
  the relay's producer) minus the moment its event was sent. Notices still missing
  ``--drain-s`` after the last send count with the time waited so far (a lower bound) and
  are reported as ``undelivered``.
- ``workers``: 1, 2 and 3 hub workers (``--workers``; separate processes in one group) on
  PostgreSQL, N events each; the run with 1 worker is the ``pg`` part's when both run.
- ``rss``: one hub worker on PostgreSQL over ``--rss-events`` events (default 100,000),
  encoded and published 5,000 at a time and never more than 10,000 ahead of the notices, so
  the bench's own memory stays bounded; the worker's VmRSS after the first tenth of the
  notices (the warm-up), at every further tenth, at the end, and its peak.
- ``decisions``: the decision cost against the size of the consent store, in this process
  (``decision_cost.py``): the worker's ``BatchProcessor`` on PostgreSQL stores seeded by COPY
  with ``--populations`` clients (default 2,500 and 250,000: 10k and 1M consents).

The first six are run ``--repeat`` times (default 3), interleaved (repetition 1: raw, pg,
signatures, sqlite, latency, workers; repetition 2: the same again...), so the medians come
from one run; ``rss`` and ``decisions`` run once, after them. ``hub_report.py`` builds the
JSON and the table: headline keys are medians with every value in ``<key>_runs``, ratios the
median of each repetition's hub over the same repetition's raw.

Throughput is N over the time from the first publish until every notice is on the notify topics
(each event decided: disclosures and withholdings commit with the notices). Per hub run it
counts ``duplicate_notices`` (records on the notify topics with a notification id seen before),
``aborted_batches`` (the worker's "batch failed; will retry" and "audit log unavailable" log
lines), ``rebalances`` (group joins: the worker's "partitions revoked" lines, one per join;
``rebalances_after_join``: those after every worker had joined, during the measurement),
the hub worker's RSS growth (VmRSS from /proc, from its join to the end of the run; in part
rss from the warm-up), and the load average before each part; the counts are summed over all
runs.

Run: ``.venv/bin/python bench/hub_bench.py`` (``--json`` prints one JSON object); a short run:
``--repeat 1 --events 2000 --duration 10 --rates 50,100 --rss-events 5000 --populations
2500,25000``. Progress goes to standard error. Every child process is ended by its pid; temp
files and databases are removed. Loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import decision_cost
from databases import fresh_postgres
from hub_report import HubRun, fmt, rep_key, summarise, table
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from population import (
    CONSENTED,
    EVENT_TYPE,
    FANOUT,
    PUBLISHER,
    address_payload,
    link_clients,
)
from signing_cost import in_process, publisher_key, signed_directory
from sqlalchemy import create_engine, text

from hub.adapters.kafka import ConsumerTuning
from hub.adapters.record_keys import RecordKey
from hub.bootstrap import App, embedded_broker
from hub.config import logs
from hub.config.settings import AuditSettings, BrokerSettings, Settings, StoreSettings
from hub.model import notification_id
from hub.wire.publishing import event_message
from hub.wire.topics import LIFEEVENTS_TOPIC, notify_topic

PARTS = ("raw", "pg", "signatures", "sqlite", "latency", "workers", "rss", "decisions")
ONCE = ("rss", "decisions")  # not repeated: each is long, and its figure is its own
ABORT_LINES = ("batch failed; will retry", "audit log unavailable; not accepting events")
JOIN_LINE = "partitions revoked"  # logged by the hub's rebalance listener at every join
READY_LINE = "partition positioned"
POLL_S = 0.1
JOIN_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
SETTLE_S = 2.0  # joined: every worker has partitions and no assignment changed for this long
LATE_S = 1.0  # after the last notice: read on until the topics are quiet this long
REDELIVER_AFTER_S = 86_400
THIS_HUB = Path(sys.executable).with_name("tellonce")  # the installation this bench runs in
DECISION_BATCH = 200  # events per timed batch in part decisions, the worker's batch size
RSS_CHUNK = 5_000  # events the rss part encodes and publishes at a time
RSS_WINDOW = 10_000  # most events it publishes ahead of the notices


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# -- arguments ------------------------------------------------------------------------------


def int_list(text_: str) -> list[int]:
    values = [int(v) for v in text_.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--events", type=int, default=20_000, help="events per throughput run")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated parts to run, of {','.join(PARTS)}",
    )
    parser.add_argument("--rates", type=int_list, default=[100, 300, 500], help="events/s offered")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per offered rate")
    parser.add_argument(
        "--drain-s", type=float, default=30.0, help="most seconds to wait for late notices"
    )
    parser.add_argument("--workers", type=int_list, default=[1, 2, 3], help="worker counts")
    parser.add_argument("--people", type=int, default=200, help="clients the events are about")
    parser.add_argument(
        "--run-timeout-s",
        type=float,
        default=None,
        help="most seconds a throughput run may take (default: 120 + events / 10)",
    )
    parser.add_argument(
        "--stall-s",
        type=float,
        default=120.0,
        help="give a throughput run up when no notice came for this long",
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server; each run creates a database tellonce_bench_<random> and drops it",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="repetitions of raw, pg, sqlite, latency and workers, interleaved (medians of N)",
    )
    parser.add_argument(
        "--rss-events", type=int, default=100_000, help="events through the worker in part rss"
    )
    parser.add_argument(
        "--populations",
        type=int_list,
        default=[2_500, 250_000],
        help="clients seeded for part decisions (4 consents and 5 identity links each)",
    )
    parser.add_argument(
        "--decision-batches", type=int, default=20, help="timed batches per population"
    )
    parser.add_argument(
        "--decisions-timeout-s",
        type=float,
        default=1800.0,
        help="most seconds part decisions may take, seeding included",
    )
    parser.add_argument(
        "--keep-logs",
        type=Path,
        metavar="DIR",
        help="copy each child's log into DIR before the temp dir goes",
    )
    parser.add_argument(
        "--plain-hub",
        type=Path,
        metavar="TELLONCE",
        help="the tellonce command of another installation (e.g. the code before sealing, in "
        "its own venv): part pg runs it too, interleaved with this hub, and reports "
        "hub_eps_pg_plain and sealing_cost_ratio",
    )
    parser.add_argument("--raw-relay", metavar="BOOTSTRAP", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plain_hub is not None:
        args.plain_hub = args.plain_hub.expanduser().absolute()
        python = args.plain_hub.with_name("python")
        if not os.access(args.plain_hub, os.X_OK) or not os.access(python, os.X_OK):
            parser.error(
                f"--plain-hub {args.plain_hub}: give the tellonce command in the bin folder of "
                "a venv (with its python beside it), e.g. /tmp/tellonce-plain/.venv/bin/tellonce"
            )
        if "pg" not in args.parts:
            parser.error("--plain-hub is measured in part pg: add pg to --parts")
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PARTS)}")
    args.parts = [p for p in PARTS if p in parts]
    if args.events < 1 or args.people < 1 or args.duration <= 0 or args.drain_s < 0:
        parser.error("--events and --people must be at least 1, --duration above 0")
    if args.repeat < 1 or args.rss_events < 1 or args.decision_batches < 1:
        parser.error("--repeat, --rss-events and --decision-batches must be at least 1")
    if args.run_timeout_s is None:
        args.run_timeout_s = 120 + args.events / 10
    return args


# -- the raw pass-through (a child process) -------------------------------------------------


def raw_relay(bootstrap: str) -> int:
    """Consume life events; send each to the 4 notify topics; flush and commit per poll."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    topics = [notify_topic(r) for r in CONSENTED]

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            print(json.dumps({"event": JOIN_LINE, "count": len(revoked)}), file=sys.stderr)

        def on_partitions_assigned(self, assigned: Any) -> None:
            for tp in assigned:
                line = {"event": READY_LINE, "topic": tp.topic, "partition": tp.partition}
                print(json.dumps(line), file=sys.stderr, flush=True)

    tuning = ConsumerTuning()  # as the hub's KafkaSource: Tansu joins in about 3 s with it
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id="tellonce-bench-raw",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_interval_ms=tuning.max_poll_interval_ms,
        session_timeout_ms=tuning.session_timeout_ms,
        heartbeat_interval_ms=tuning.heartbeat_interval_ms,
        request_timeout_ms=tuning.request_timeout_ms,
    )
    consumer.subscribe([LIFEEVENTS_TOPIC], listener=Listener())
    # As the hub's KafkaSink publishes: acks=all, idempotent, linger 5 ms.
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    try:
        while not stop.is_set():
            batches = consumer.poll(timeout_ms=500, max_records=200)
            if not batches:
                continue
            for records in batches.values():
                for r in records:
                    for topic in topics:
                        producer.send(topic, key=r.key, value=r.value, headers=r.headers)
            producer.flush(timeout=30)
            consumer.commit()
    finally:
        producer.close(timeout=5)
        consumer.close()
    return 0


# -- one part's world: broker, store, clients, events ---------------------------------------


@dataclass
class World:
    bootstrap: str
    store_url: str
    workdir: Path
    settings: Settings
    keep_logs: Path | None = None
    tellonce: Path = THIS_HUB  # the hub workers' command: this installation's, or --plain-hub
    extra_env: dict[str, str] = field(default_factory=dict)  # the directory with the key
    signer: RecordKey | None = None  # the publisher's key: None only for the unsigned baseline

    def env(self) -> dict[str, str]:
        """A hub worker's environment: this store, broker and key; JSON logs at info; no
        redelivery for want of a receipt within a run."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELLONCE_")}
        return env | {
            "TELLONCE_STORE__URL": self.store_url,
            "TELLONCE_BROKER__BOOTSTRAP_SERVERS": self.bootstrap,
            "TELLONCE_AUDIT__SIGNING_KEY": str(self.settings.audit.signing_key),
            "TELLONCE_LOG_LEVEL": "info",
            "TELLONCE_LOG_FORMAT": "json",
            # No connector runs, so no receipt ever comes back: the relay's redelivery for want
            # of one (after 300 s by default) would republish every notice of a long run and
            # count as duplicates. Pushed out past any run here.
            "TELLONCE_HUB__REDELIVER_AFTER_S": str(REDELIVER_AFTER_S),
            **self.extra_env,
        }


@contextlib.contextmanager
def world(
    store: str,
    args: argparse.Namespace,
    *,
    clients: bool = True,
    plain: Path | None = None,
    signed_by: RecordKey | None,
) -> Iterator[World]:
    """A fresh broker and store (``pg`` or ``sqlite``) with the hub's topics and, when
    ``clients``, the linked and consenting clients (the raw part needs the topics only).
    With ``plain`` (another installation's ``tellonce``), that installation migrates the
    store and links the clients (``population.py --link``, its own schema) and runs the
    workers. With ``signed_by``, the workers read a directory listing that key for the
    publisher, and every life event is signed and its signature required, as in production;
    without (part signatures' unsigned baseline), signatures are not required."""
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tellonce-hb-")))
        if store == "pg":
            url = stack.enter_context(fresh_postgres(args.pg_url))
        else:
            url = f"sqlite:///{workdir / 'hub.db'}"
        base = Settings(
            store=StoreSettings(url=url),
            audit=AuditSettings(signing_key=workdir / "audit-key.pem", create_key=True),
        )
        broker = stack.enter_context(embedded_broker(base))
        settings = base.model_copy(
            update={"broker": BrokerSettings(bootstrap_servers=broker.bootstrap)}
        )
        app = App.from_settings(settings)
        try:
            app.ensure_topics(app.kafka())  # the same topics in both installations
            if clients and plain is None:
                app.pseudonyms().load()  # made once here, not raced for by the workers
                link_clients(app, args.people, say)
        finally:
            app.close()
        w = World(broker.bootstrap, url, workdir, settings, args.keep_logs, plain or THIS_HUB)
        w.signer = signed_by
        if signed_by is None:
            w.extra_env = {"TELLONCE_HUB__REQUIRE_SIGNATURES": "false"}
        elif plain is None:
            # Not for --plain-hub: an installation from before signed events has no keys in
            # its directory model (it refuses the file) and ignores the signature headers.
            directory = signed_directory(signed_by, PUBLISHER, workdir / "directory.toml")
            w.extra_env = {"TELLONCE_DIRECTORY_PATH": str(directory)}
        if clients and plain is not None:
            link_with(plain, w, args.people)
        yield w


def link_with(tellonce: Path, w: World, people: int) -> None:
    """The clients linked by the installation ``tellonce`` belongs to (its python runs
    ``population.py --link``), into its own schema of ``w``'s store."""
    python = tellonce.with_name("python")
    script = Path(__file__).resolve().with_name("population.py")
    command = [str(python), str(script), "--link", "--people", str(people)]
    started = time.perf_counter()
    done = subprocess.run(
        command, env=w.env(), cwd=w.workdir, capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{python} could not link the clients: {last[:200]}")
    say(f"  {people} clients linked by {python} in {time.perf_counter() - started:.1f} s")


@dataclass
class Events:
    """Encoded life events, ready to send, and the notification ids each must produce."""

    records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]
    notices: dict[str, int]  # notification id -> event index


def make_events(
    n: int, people: int, tag: str, start: int = 0, signer: RecordKey | None = None
) -> Events:
    """Events ``start`` to ``start + n``, about clients round-robin; signed by ``signer``
    if given, as ``tellonce publish --key`` signs."""
    app = App.from_settings(Settings())  # the codec only: no store, broker or key is touched
    at = datetime.now(UTC)
    records, notices = [], {}
    for i in range(start, start + n):
        key, value, headers, ce_id = event_message(
            app.codec,
            source=PUBLISHER,
            event_type=EVENT_TYPE,
            payload=address_payload(i, i % people),
            at=at,
            event_id=f"bench-{tag}-{i}",
            signer=signer,
        )
        records.append((key, value, list(headers)))
        for recipient in CONSENTED:
            notices[notification_id(PUBLISHER, ce_id, recipient)] = i - start
    return Events(records, notices)


def producer_for(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)


# -- child processes ------------------------------------------------------------------------


@dataclass
class Child:
    """A child process whose standard error is a log file we read back."""

    label: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                line = json.loads(raw)
                if isinstance(line, dict):
                    out.append(line)
        return out

    def count(self, events: tuple[str, ...]) -> int:
        return sum(1 for line in self.lines() if str(line.get("event", "")).startswith(events))

    def errors(self, events: tuple[str, ...]) -> list[str]:
        """The ``error`` fields of those lines (the hub's errors carry no personal data)."""
        return [
            str(line.get("error", ""))[:200]
            for line in self.lines()
            if str(line.get("event", "")).startswith(events)
        ]

    def rss_kb(self) -> int | None:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def end(self) -> None:
        """SIGTERM (the worker finishes its batch and leaves), SIGKILL after a while."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                say(f"  {self.label} (pid {self.process.pid}) did not stop: killed")
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)


@contextlib.contextmanager
def children(w: World, count: int, kind: str) -> Iterator[list[Child]]:
    """``count`` hub workers (``kind`` "hub") or one raw relay, ended by pid afterwards."""
    started: list[Child] = []
    try:
        for k in range(count):
            if kind == "hub":
                cmd = [str(w.tellonce), "hub", "run"]
            else:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--raw-relay", w.bootstrap]
            log_path = w.workdir / f"{kind}-{k}.log"
            with log_path.open("wb") as log_file:
                process = subprocess.Popen(
                    cmd,
                    env=w.env(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log_file,
                )
            started.append(Child(f"{kind} {k + 1}", process, log_path))
        wait_joined(started)
        yield started
    finally:
        for child in started:
            child.end()
        if w.keep_logs is not None:
            keep(w.keep_logs, started)


def keep(into: Path, started: list[Child]) -> None:
    """Copy the children's logs into ``into``, named by time, pid and label."""
    into.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%H%M%S")
    for child in started:
        name = f"{stamp}-{len(started)}w-{child.label.replace(' ', '')}-{child.process.pid}.log"
        with contextlib.suppress(OSError):
            shutil.copyfile(child.log_path, into / name)


def wait_joined(workers: list[Child]) -> None:
    """Until every child has life-event partitions and no assignment changed for SETTLE_S."""
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    last_seen, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        for child in workers:
            if child.process.poll() is not None:
                tail = child.log_path.read_text(errors="replace")[-600:]
                raise RuntimeError(f"{child.label} exited with {child.process.returncode}: {tail}")
        positioned = [
            [
                line
                for line in child.lines()
                if line.get("event") == READY_LINE and line.get("topic") == LIFEEVENTS_TOPIC
            ]
            for child in workers
        ]
        seen = sum(len(p) for p in positioned)
        if seen != last_seen:
            last_seen, quiet_since = seen, time.monotonic()
        elif all(positioned) and time.monotonic() - quiet_since >= SETTLE_S:
            waited = JOIN_TIMEOUT_S - (deadline - time.monotonic())
            say(f"  {len(workers)} process(es) joined the group in {waited:.1f} s")
            return
        time.sleep(POLL_S)
    raise RuntimeError(f"the workers did not join within {JOIN_TIMEOUT_S:.0f} s")


# -- reading the notify topics --------------------------------------------------------------


class NotifyReader:
    """Reads the 4 consented notify topics from the beginning, without joining a group."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        self.tps = [TopicPartition(notify_topic(r), p) for r in CONSENTED for p in self._parts(r)]
        self.consumer.assign(self.tps)
        self.consumer.seek_to_beginning(*self.tps)

    def _parts(self, recipient: str) -> list[int]:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = self.consumer.partitions_for_topic(notify_topic(recipient))
            if found:
                return sorted(found)
            time.sleep(POLL_S)
        raise RuntimeError(f"no topic {notify_topic(recipient)}")

    def poll(self) -> list[Any]:
        return [r for rs in self.consumer.poll(timeout_ms=200).values() for r in rs]

    def count_into(self, seen: Counter[tuple[str, str]]) -> int:
        """Count what came since the last call by (topic, ce_id); how many records came.
        (Tansu's offsets are not dense, so end offsets do not count records.)"""
        records = self.poll()
        for r in records:
            seen[r.topic, ce_id(r)] += 1
        return len(records)

    def close(self) -> None:
        self.consumer.close()


def ce_id(record: Any) -> str:
    return next((v.decode() for k, v in record.headers or [] if k == "ce_id"), "")


# -- measuring ------------------------------------------------------------------------------


def send_all(bootstrap: str, events: Events) -> float:
    """Publish every event as fast as the producer takes them; the time of the first send."""
    producer = producer_for(bootstrap)
    try:
        started = time.monotonic()
        for key, value, headers in events.records:
            producer.send(LIFEEVENTS_TOPIC, key=key, value=value, headers=headers)
        producer.flush(timeout=60)
        return started
    finally:
        producer.close(timeout=5)


def throughput(
    w: World, events: Events, kind: str, workers: int, args: argparse.Namespace, label: str
) -> HubRun:
    """N events through ``workers`` hub workers (or the raw relay), first publish to last
    notice; then duplicates, aborts, joins, RSS and decisions."""
    n = len(events.records)
    run = HubRun(label, workers, n)
    seen: Counter[tuple[str, str]] = Counter()
    reader = NotifyReader(w.bootstrap)
    try:
        with children(w, workers if kind == "hub" else 1, kind) as procs:
            run.rss_start_kb = procs[0].rss_kb() or 0
            run.joins_at_start = sum(p.count((JOIN_LINE,)) for p in procs)
            say(f"  {label}: joined; publishing {n:,} events")
            started = send_all(w.bootstrap, events)
            deadline = started + args.run_timeout_s
            last_report = time.monotonic()
            last_progress = time.monotonic()
            while time.monotonic() < deadline:
                if reader.count_into(seen):
                    last_progress = time.monotonic()
                if len(seen) >= FANOUT * n:
                    run.complete = True
                    break
                if time.monotonic() - last_progress > args.stall_s:
                    run.extra["stalled_s"] = round(time.monotonic() - last_progress, 1)
                    say(f"  {label}: no new notice for {args.stall_s:g} s: given up")
                    break
                if time.monotonic() - last_report > 15:
                    last_report = time.monotonic()
                    elapsed = time.monotonic() - started
                    say(f"  {label}: {len(seen):,}/{FANOUT * n:,} notices after {elapsed:.0f} s")
            run.seconds = time.monotonic() - started
            run.eps = n / run.seconds if run.complete else 0.0
            run.rss_end_kb = procs[0].rss_kb() or 0
            run.joins = sum(p.count((JOIN_LINE,)) for p in procs)
            quiet_until = time.monotonic() + LATE_S  # late copies, if any, count as duplicates
            while time.monotonic() < quiet_until:
                if reader.count_into(seen):
                    quiet_until = time.monotonic() + LATE_S
        # After the workers stopped: their logs are complete.
        run.aborted_batches = sum(p.count(ABORT_LINES) for p in procs)
        abort_errors(run, procs)
        run.notices = len(seen)
        run.duplicate_notices = sum(c - 1 for c in seen.values())
        if kind == "hub":
            run.decided = decisions(w.store_url)
    finally:
        reader.close()
    state = f"{run.eps:,.0f} events/s" if run.complete else f"INCOMPLETE after {run.seconds:.0f} s"
    say(f"  {label}: {state}")
    return run


def abort_errors(run: HubRun, procs: list[Child]) -> None:
    """Why batches were retried, if any were: each distinct error with its count."""
    found = Counter(e for p in procs for e in p.errors(ABORT_LINES))
    if found:
        run.extra["abort_errors"] = dict(found.most_common(5))


def decisions(url: str) -> int | None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            return int(connection.scalar(text("SELECT count(*) FROM decisions")) or 0)
    except Exception:
        return None
    finally:
        engine.dispose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def latency(w: World, rate: int, args: argparse.Namespace) -> HubRun:
    """Events offered at ``rate`` per second for ``--duration`` s; per notice, its record
    timestamp on the notify topic minus its event's send time."""
    n = max(1, round(rate * args.duration))
    events = make_events(n, args.people, f"lat{rate}", signer=w.signer)
    run = HubRun(f"latency {rate}/s", 1, n)
    sent: list[float] = [0.0] * n
    seen: dict[str, float] = {}
    done = threading.Event()
    reader = NotifyReader(w.bootstrap)

    def collect() -> None:
        while not done.is_set():
            for record in reader.poll():
                nid = ce_id(record)
                if nid in events.notices and nid not in seen:
                    seen[nid] = record.timestamp / 1000 - sent[events.notices[nid]]

    try:
        with children(w, 1, "hub") as procs:
            run.rss_start_kb = procs[0].rss_kb() or 0
            run.joins_at_start = sum(p.count((JOIN_LINE,)) for p in procs)
            collector = threading.Thread(target=collect, daemon=True)
            collector.start()
            say(f"  {run.label}: joined; offering {n:,} events over {args.duration:g} s")
            producer = producer_for(w.bootstrap)
            try:
                started = time.monotonic()
                for i, (key, value, headers) in enumerate(events.records):
                    delay = started + i / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    sent[i] = time.time()
                    producer.send(LIFEEVENTS_TOPIC, key=key, value=value, headers=headers)
                producer.flush(timeout=60)
                offered = time.monotonic() - started
            finally:
                producer.close(timeout=5)
            deadline = time.monotonic() + args.drain_s
            while len(seen) < len(events.notices) and time.monotonic() < deadline:
                time.sleep(POLL_S)
            run.rss_end_kb = procs[0].rss_kb() or 0
            run.joins = sum(p.count((JOIN_LINE,)) for p in procs)
            done.set()
            collector.join(timeout=5)
            now = time.time()
            values = list(seen.values())
            missing = [now - sent[i] for nid, i in events.notices.items() if nid not in seen]
            values += missing
            run.complete = not missing
            run.notices = len(seen)
            run.seconds = offered
            run.eps = n / offered
            run.extra = {
                "offered_eps": round(n / offered, 1),
                "undelivered": len(missing),
                **{f"p{q}_ms": round(1000 * percentile(values, q), 1) for q in (50, 95, 99)},
            }
        run.aborted_batches = sum(p.count(ABORT_LINES) for p in procs)
        abort_errors(run, procs)
        run.decided = decisions(w.store_url)
    finally:
        done.set()
        reader.close()
    say(
        f"  {run.label}: p50 {run.extra['p50_ms']:,.0f} ms, p99 {run.extra['p99_ms']:,.0f} ms, "
        f"{run.extra['undelivered']:,} notices undelivered"
    )
    return run


def rss_run(w: World, args: argparse.Namespace) -> HubRun:
    """``--rss-events`` events through one hub worker, published in chunks at most RSS_WINDOW
    events ahead of the notices; the worker's VmRSS once a tenth of the notices are in (the
    warm-up), at every further tenth, at the end, and its peak."""
    n = args.rss_events
    expected = FANOUT * n
    run = HubRun("rss", 1, n)
    seen: Counter[tuple[str, str]] = Counter()
    samples: list[dict[str, float]] = []
    reader = NotifyReader(w.bootstrap)
    try:
        with children(w, 1, "hub") as procs:
            worker = procs[0]
            joined_kb = worker.rss_kb() or 0
            peak_kb = joined_kb
            run.joins_at_start = worker.count((JOIN_LINE,))
            say(f"  rss: joined at {joined_kb / 1024:.0f} MB; {n:,} events in chunks")
            producer = producer_for(w.bootstrap)
            sent = 0
            started = last_progress = time.monotonic()
            deadline = started + 120 + n / 10
            try:
                while time.monotonic() < deadline:
                    if sent < n and sent - len(seen) / FANOUT < RSS_WINDOW:
                        chunk = make_events(
                            min(RSS_CHUNK, n - sent), args.people, "rss", sent, w.signer
                        )
                        for key, value, headers in chunk.records:
                            producer.send(LIFEEVENTS_TOPIC, key=key, value=value, headers=headers)
                        producer.flush(timeout=60)
                        sent += len(chunk.records)
                    if reader.count_into(seen):
                        last_progress = time.monotonic()
                    kb = worker.rss_kb() or 0
                    peak_kb = max(peak_kb, kb)
                    if len(seen) * 10 >= expected * (len(samples) + 1):  # each tenth
                        elapsed = time.monotonic() - started
                        samples.append({"notices_pct": 10 * (len(samples) + 1), "rss_mb": kb})
                        if len(samples) == 1:
                            run.rss_start_kb = kb
                        say(
                            f"  rss: {len(seen):,}/{expected:,} notices after {elapsed:.0f} s, "
                            f"RSS {kb / 1024:.1f} MB"
                        )
                    if len(seen) >= expected:
                        run.complete = True
                        break
                    if time.monotonic() - last_progress > args.stall_s:
                        run.extra["stalled_s"] = round(time.monotonic() - last_progress, 1)
                        break
            finally:
                producer.close(timeout=5)
            run.seconds = time.monotonic() - started
            run.eps = n / run.seconds if run.complete else 0.0
            run.rss_end_kb = worker.rss_kb() or 0
            run.joins = worker.count((JOIN_LINE,))
            quiet_until = time.monotonic() + LATE_S
            while time.monotonic() < quiet_until:
                if reader.count_into(seen):
                    quiet_until = time.monotonic() + LATE_S
        run.aborted_batches = worker.count(ABORT_LINES)
        abort_errors(run, procs)
        run.notices = len(seen)
        run.duplicate_notices = sum(c - 1 for c in seen.values())
        run.decided = decisions(w.store_url)
    finally:
        reader.close()
    for sample in samples:
        sample["rss_mb"] = round(sample["rss_mb"] / 1024, 1)
    run.extra = {
        "rss_joined_mb": round(joined_kb / 1024, 1),
        "rss_peak_mb": round(max(peak_kb, run.rss_end_kb) / 1024, 1),
        "rss_samples": samples,
        **run.extra,
    }
    say(
        f"  rss: RSS {run.rss_start_kb / 1024:.1f} MB after the warm-up, "
        f"{run.rss_end_kb / 1024:.1f} MB at the end ({fmt(run.rss_growth_pct)}%)"
    )
    return run


# -- the parts ------------------------------------------------------------------------------


def run_parts(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen parts in order, the repeated ones ``--repeat`` times interleaved
    (repetition 1: raw, pg, sqlite, latency, workers; repetition 2: ...), then rss and
    decisions once; a part that fails is reported and the others still run."""
    runs: dict[str, HubRun] = {}
    load_before: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    extras: dict[str, Any] = {}
    throughput_events: dict[str, Events] = {}
    publisher = publisher_key()  # one key for the whole bench run: every event is signed

    def events_for(tag: str, signer: RecordKey | None = publisher) -> Events:
        name = f"{tag} signed" if signer else tag
        if name not in throughput_events:
            throughput_events[name] = make_events(args.events, args.people, tag, signer=signer)
        return throughput_events[name]

    def raw(rep: int) -> None:
        with world("sqlite", args, clients=False, signed_by=publisher) as w:
            runs[rep_key("raw", rep)] = throughput(w, events_for("tp"), "raw", 1, args, "raw")

    def hub_on(store: str) -> Callable[[int], None]:
        def body(rep: int) -> None:
            with world(store, args, signed_by=publisher) as w:
                label = f"hub on {store}"
                runs[rep_key(store, rep)] = throughput(w, events_for("tp"), "hub", 1, args, label)

        return body

    def pg(rep: int) -> None:
        """This hub on pg; with --plain-hub the other installation too, on the same events,
        which goes first in every other repetition, so drift hits both alike."""
        if args.plain_hub is None:
            hub_on("pg")(rep)
            return
        order: list[tuple[str, Path | None]] = [("pg", None), ("pg_plain", args.plain_hub)]
        for key, plain in order if rep % 2 else order[::-1]:
            with world("pg", args, plain=plain, signed_by=publisher) as w:
                label = "plain hub on pg" if plain else "hub on pg"
                runs[rep_key(key, rep)] = throughput(w, events_for("tp"), "hub", 1, args, label)

    def signatures(rep: int) -> None:
        """This hub on pg with unsigned events and signatures not required, then with every
        event signed and signatures required (swapping order every other repetition); then
        the publisher's signing and the verifying in this process."""
        order: list[tuple[str, RecordKey | None]] = [("unsigned", None), ("signed", publisher)]
        for name, signer in order if rep % 2 else order[::-1]:
            load = [round(v, 2) for v in os.getloadavg()]
            with world("pg", args, signed_by=signer) as w:
                label = f"hub on pg, {name}"
                events = events_for("tp", signer)
                run = throughput(w, events, "hub", 1, args, label)
            run.extra["load_before"] = load
            runs[rep_key(name, rep)] = run
        rates = in_process(events_for("tp", None).records, publisher)
        extras.setdefault("signing_runs", []).append(rates)
        say(
            f"  in process: {rates['sign_per_s']:,.0f} signatures/s (digest and sign), "
            f"{rates['verify_per_s']:,.0f} verifications/s"
        )

    def lat(rep: int) -> None:
        for rate in args.rates:
            with world("pg", args, signed_by=publisher) as w:
                runs[rep_key(f"latency_{rate}", rep)] = latency(w, rate, args)

    def workers(rep: int) -> None:
        for count in args.workers:
            key = rep_key(f"workers_{count}", rep)
            if count == 1 and rep_key("pg", rep) in runs:  # the same measurement: not run twice
                runs[key] = runs[rep_key("pg", rep)]
                continue
            with world("pg", args, signed_by=publisher) as w:
                label = f"{count} workers on pg"
                runs[key] = throughput(w, events_for("tp"), "hub", count, args, label)

    def rss(_rep: int) -> None:
        with world("pg", args, signed_by=publisher) as w:
            runs["rss"] = rss_run(w, args)

    def decisions_(_rep: int) -> None:
        extras.update(
            decision_cost.run(
                args.pg_url,
                args.populations,
                batches=args.decision_batches,
                size=DECISION_BATCH,
                timeout_s=args.decisions_timeout_s,
                say=say,
            )
        )

    bodies: dict[str, Callable[[int], None]] = {
        "raw": raw,
        "pg": pg,
        "signatures": signatures,
        "sqlite": hub_on("sqlite"),
        "latency": lat,
        "workers": workers,
        "rss": rss,
        "decisions": decisions_,
    }
    plan = [(name, rep) for rep in range(1, args.repeat + 1) for name in args.parts]
    plan = [(name, rep) for name, rep in plan if name not in ONCE]
    plan += [(name, 1) for name in args.parts if name in ONCE]
    for name, rep in plan:
        key = rep_key(name, rep)
        load = [round(v, 2) for v in os.getloadavg()]
        load_before[key] = load
        said = f" {rep}/{args.repeat}" if args.repeat > 1 and name not in ONCE else ""
        say(f"part {name}{said} (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
        try:
            bodies[name](rep)
        except Exception as exc:
            detail = next(iter(str(exc).strip().splitlines()), "")
            errors[key] = f"{type(exc).__name__}: {detail}"[:300]
            say(f"part {key} failed: {errors[key]}")
    return summarise(args, runs, load_before, errors, extras)


def interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.raw_relay:
        return raw_relay(args.raw_relay)
    logs.configure("warning", "console")  # the hub's own lines go to stderr, not into --json
    # SIGTERM (``timeout``, a CI job's end) unwinds like Ctrl-C: the finally blocks end every
    # child by pid and drop the databases.
    signal.signal(signal.SIGTERM, interrupted)
    started = time.perf_counter()
    result = run_parts(args)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, sort_keys=False) if args.json else table(result))
    say(f"done in {result['seconds']:.0f} s; children ended, temp files and databases removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
