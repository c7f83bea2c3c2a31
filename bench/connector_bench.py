"""What one delivery costs on each sink kind, and what a redelivery (DUPLICATE) costs.

For each sink kind, ``--repeats`` times over a fresh far side (round-robin: one run of every
kind per round, so a shared machine's drift hits all kinds alike): build the sink as the CLI does
(``connectors.resolve_sink``), deliver ``--n`` distinct notifications (``sample_notification``)
the way ``ConnectorRunner`` does (``deliver`` one by one, ``flush()`` after every 200 and at the
end when the sink has it), then deliver the same notifications again and count the DUPLICATE
answers. The kinds:

- ``noop``: a sink that only remembers ids (DELIVERED, then DUPLICATE): the harness itself;
- ``filedrop-json``: one file per notification (the local reference the ratios are taken to);
- ``filedrop-jsonl`` and ``filedrop-csv``: batch files, ``flush()`` every 200 as the runner
  does (one fdatasync per flush); ``-sync`` variants never call ``flush()``, so the sink syncs
  every record before answering;
- ``sqltable-sqlite`` (a temp file), ``sqltable-postgres`` and ``sqltable-mariadb`` (a database
  ``tellonce_bench_<random>`` created on the server for each run and dropped after it);
- ``webhook-hmac``: HMAC-SHA256 signed POSTs to a threaded stdlib HTTP server on 127.0.0.1 in
  this process, which checks the signature, keeps bodies in memory and dedupes on
  ``Idempotency-Key`` (409 echoing the key).

It prints, per kind, the median deliveries per second, milliseconds per delivery and their
ratio to ``filedrop-json`` in the same round (median over rounds), the same for the redelivery
pass with the share answered DUPLICATE, and whether the far side then holds each notification
exactly once.
A kind whose server cannot be reached, or whose driver is missing, is skipped with the reason;
a kind that fails is reported and the others still run. Each kind stops by itself after
``--kind-budget-s``; temp files and databases are removed. Loopback only.

Run: ``.venv/bin/python bench/connector_bench.py`` (``--kinds`` to choose, ``--n``, ``--repeats``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from databases import fresh_postgres
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from connectors import resolve_sink
from connectors.contract import DeliveryResult, Notification, Outcome, Sink
from connectors.filedrop.formats import BY_EXTENSION
from connectors.sqltable import database_url, staging_table
from connectors.testing import sample_notification
from connectors.webhook import IDEMPOTENCY_KEY, verify_signature
from hub.config import logs

RECIPIENT = "bc-msp"
RUNNER_BATCH = 200  # ConnectorRunner's default batch_size: one flush() per batch
REFERENCE = "filedrop-json"
SECRET = "bench-" + "s" * 40  # the webhook's shared HMAC key (at least 32 bytes)
CONNECT_TIMEOUT_S = 5


# -- far sides: what a sink writes to, made fresh for each run ------------------------------


@dataclass
class FarSide:
    options: dict[str, str]
    held: Callable[[], int]  # notifications the back office can read now
    memory: set[str] = field(default_factory=set)  # the no-op sink's only state


FarSideMaker = Callable[[Path, argparse.Namespace], contextlib.AbstractContextManager[FarSide]]


@contextlib.contextmanager
def nothing(_workdir: Path, _args: argparse.Namespace) -> Iterator[FarSide]:
    memory: set[str] = set()
    yield FarSide({}, lambda: len(memory), memory)


def folder(fmt: str) -> FarSideMaker:
    @contextlib.contextmanager
    def far_side(workdir: Path, _args: argparse.Namespace) -> Iterator[FarSide]:
        inbox = workdir / f"inbox-{uuid.uuid4().hex[:8]}"
        try:
            yield FarSide({"directory": str(inbox), "format": fmt}, lambda: files_held(inbox, fmt))
        finally:
            shutil.rmtree(inbox, ignore_errors=True)

    return far_side


def files_held(inbox: Path, fmt: str) -> int:
    """Records the back office would read: published files, through the formats' own reader."""
    visible = [p for p in inbox.iterdir() if not p.name.startswith(".")]
    if fmt == "json":
        return sum(1 for p in visible if p.suffix == ".json")
    reader = BY_EXTENSION[fmt]
    return sum(len(reader.scan(p.read_bytes()).ids) for p in visible if p.suffix == f".{fmt}")


def rows_held(url: str) -> int:
    engine = create_engine(database_url(url))
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(staging_table())) or 0)
    finally:
        engine.dispose()


@contextlib.contextmanager
def sqlite_file(workdir: Path, _args: argparse.Namespace) -> Iterator[FarSide]:
    path = workdir / f"inbox-{uuid.uuid4().hex[:8]}.db"
    url = f"sqlite:///{path}"
    try:
        yield FarSide({"url": url}, lambda: rows_held(url))
    finally:
        for leftover in path.parent.glob(f"{path.name}*"):  # -journal, -wal
            leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def postgres_database(_workdir: Path, args: argparse.Namespace) -> Iterator[FarSide]:
    """A new database on ``--pg-url``, dropped afterwards whatever happens."""
    with fresh_postgres(args.pg_url) as url:
        yield FarSide({"url": url}, lambda: rows_held(url))


@contextlib.contextmanager
def mariadb_database(_workdir: Path, args: argparse.Namespace) -> Iterator[FarSide]:
    """A new database on ``--mariadb-url``, dropped afterwards whatever happens."""
    import pymysql  # type: ignore[import-untyped]

    server = make_url(args.mariadb_url)

    def admin() -> Any:
        return pymysql.connect(
            host=server.host or "127.0.0.1",
            port=server.port or 3306,
            user=server.username or "root",
            password=server.password or "",
            connect_timeout=CONNECT_TIMEOUT_S,
            autocommit=True,
        )

    name = f"tellonce_bench_{uuid.uuid4().hex[:12]}"  # a safe identifier: no quoting needed
    with contextlib.closing(admin()) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        yield FarSide({"url": url}, lambda: rows_held(url))
    finally:
        with contextlib.closing(admin()) as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


class Receiver(ThreadingHTTPServer):
    """A back office's webhook endpoint: checks the signature, stores, dedupes on the key."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.stored: dict[str, bytes] = {}
        self.refused = 0
        self.lock = threading.Lock()


class ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the sink's client expects
    timeout = 10
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        key = self.headers.get(IDEMPOTENCY_KEY, "")
        signed = verify_signature(
            SECRET,
            self.headers.get("X-Tellonce-Timestamp", ""),
            body,
            self.headers.get("X-Tellonce-Signature", ""),
        )
        echo = False
        with self.server.lock:
            if not signed or not key:
                status = 401
                self.server.refused += 1
            elif key in self.server.stored:
                status, echo = 409, True
            else:
                self.server.stored[key] = body
                status = 201
        self.send_response(status)
        if echo:
            self.send_header(IDEMPOTENCY_KEY, key)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextlib.contextmanager
def webhook_receiver(_workdir: Path, _args: argparse.Namespace) -> Iterator[FarSide]:
    receiver = Receiver()
    thread = threading.Thread(
        target=receiver.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/inbox"
    try:
        yield FarSide({"url": url, "secret": SECRET}, lambda: len(receiver.stored))
    finally:
        receiver.shutdown()
        receiver.server_close()
        thread.join(5)
    if receiver.refused:
        raise RuntimeError(f"the receiver refused {receiver.refused} requests (bad signature)")


# -- sinks -----------------------------------------------------------------------------------


class NoopSink:
    """The least a sink can do: remember the id. Measures the harness, not a far side."""

    name = "noop"

    def __init__(self, memory: set[str]) -> None:
        self._seen = memory

    def deliver(self, notification: Notification) -> DeliveryResult:
        if notification.notification_id in self._seen:
            return DeliveryResult(Outcome.DUPLICATE)
        self._seen.add(notification.notification_id)
        return DeliveryResult(Outcome.DELIVERED)

    def close(self) -> None:
        """Nothing held."""


def builtin(alias: str) -> Callable[[FarSide], Sink]:
    def make(far: FarSide) -> Sink:
        return resolve_sink(alias)(RECIPIENT, far.options)

    return make


@dataclass(frozen=True)
class Kind:
    label: str
    far_side: FarSideMaker
    make_sink: Callable[[FarSide], Sink]
    flush: bool = True  # call flush() every RUNNER_BATCH, as the runner does, if the sink has it


KINDS = [
    Kind("noop", nothing, lambda far: NoopSink(far.memory)),
    Kind("filedrop-json", folder("json"), builtin("filedrop")),
    Kind("filedrop-jsonl", folder("jsonl"), builtin("filedrop")),
    Kind("filedrop-jsonl-sync", folder("jsonl"), builtin("filedrop"), flush=False),
    Kind("filedrop-csv", folder("csv"), builtin("filedrop")),
    Kind("filedrop-csv-sync", folder("csv"), builtin("filedrop"), flush=False),
    Kind("sqltable-sqlite", sqlite_file, builtin("sqltable")),
    Kind("sqltable-postgres", postgres_database, builtin("sqltable")),
    Kind("sqltable-mariadb", mariadb_database, builtin("sqltable")),
    Kind("webhook-hmac", webhook_receiver, builtin("webhook")),
]


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Pass:
    count: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    cut: bool = False  # stopped by the budget before the last notification

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def deliver_all(sink: Sink, notices: list[Notification], *, flush: bool, deadline: float) -> Pass:
    """Deliver as the runner does: one by one, flush() after every batch and at the end."""
    flusher: Callable[[], object] | None = getattr(sink, "flush", None) if flush else None
    result = Pass()
    started = time.perf_counter()
    for i, notice in enumerate(notices, 1):
        result.outcomes[sink.deliver(notice).outcome.value] += 1
        result.count = i
        if flusher is not None and i % RUNNER_BATCH == 0:
            flusher()
        if i < len(notices) and time.perf_counter() > deadline:
            result.cut = True
            break
    if flusher is not None and result.count % RUNNER_BATCH:
        flusher()
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class Run:
    round: int
    first: Pass
    again: Pass
    held: int


@dataclass
class Measured:
    kind: Kind
    runs: list[Run] = field(default_factory=list)
    skipped: str = ""  # why no run happened, or why the runs stopped

    def median_rate(self, which: str) -> float:
        passes: list[Pass] = [getattr(r, which) for r in self.runs]
        return statistics.median(p.rate for p in passes)


def run_once(measured: Measured, round_: int, workdir: Path, args: argparse.Namespace) -> None:
    """One run over a fresh far side, within the kind's share of the budget (two thirds of it
    for the first pass); a failure is recorded and ends the kind's runs."""
    kind = measured.kind
    notices = [sample_notification() for _ in range(args.n)]  # untimed
    share = args.kind_budget_s / args.repeats
    started = time.perf_counter()
    stage = "skipped"  # the far side or the sink could not be set up: unreachable, no driver
    try:
        with kind.far_side(workdir, args) as far:
            sink = kind.make_sink(far)
            stage = "failed"
            try:
                first = deliver_all(
                    sink, notices, flush=kind.flush, deadline=started + share * 2 / 3
                )
                again = deliver_all(
                    sink, notices[: first.count], flush=kind.flush, deadline=started + share
                )
            finally:
                sink.close()  # publishes an open batch; untimed
            held = far.held()
    except Exception as exc:
        what = stage if not measured.runs else f"{stage} after {len(measured.runs)} run(s)"
        detail = next(iter(str(exc).strip().splitlines()), "")
        measured.skipped = f"{what}: {type(exc).__name__}: {detail}"[:160]
    else:
        measured.runs.append(Run(round_, first, again, held))


# -- report ----------------------------------------------------------------------------------


def report(results: list[Measured], n: int) -> None:
    reference = next((m for m in results if m.kind.label == REFERENCE and m.runs), None)
    ref_s = {r.round: r.first.seconds / r.first.count for r in reference.runs} if reference else {}
    print(
        f"  {'sink kind':20} {'n':>5} {'deliv/s':>9} {'ms/deliv':>9} {'x json':>7} "
        f"{'spread':>7} | {'redeliv/s':>9} {'ms/redeliv':>10} {'dup':>5} {'vs 1st':>7} "
        f"{'held':>6}"
    )
    notes: list[str] = []
    for m in results:
        label = m.kind.label
        if not m.runs:
            print(f"  {label:20} -- {m.skipped}")
            continue
        done = min(r.first.count for r in m.runs)
        cut = any(r.first.cut or r.again.cut for r in m.runs)
        rates = [r.first.rate for r in m.runs]
        rate, again = m.median_rate("first"), m.median_rate("again")
        ms, again_ms = 1000 / rate, 1000 / again
        ratios = [
            r.first.seconds / r.first.count / ref_s[r.round] for r in m.runs if r.round in ref_s
        ]
        ratio = f"{statistics.median(ratios):.2f}x" if ratios else "-"
        spread = (max(rates) - min(rates)) / rate
        answers = sum((r.again.outcomes for r in m.runs), Counter[str]())
        dup = answers[Outcome.DUPLICATE.value] / max(sum(answers.values()), 1)
        held_ok = all(r.held == r.first.count for r in m.runs)
        held = "ok" if held_ok else f"{m.runs[-1].held}/{m.runs[-1].first.count}"
        print(
            f"  {label:20} {done:>5}{'*' if cut else ' '}{rate:>8,.0f} {ms:>9.3f} {ratio:>7} "
            f"{spread:>7.0%} | {again:>9,.0f} {again_ms:>10.3f} {dup:>5.0%} "
            f"{again_ms / ms:>6.2f}x {held:>6}"
        )
        firsts = sum((r.first.outcomes for r in m.runs), Counter[str]())
        if set(firsts) - {Outcome.DELIVERED.value}:
            notes.append(f"{label}: first-pass answers {dict(firsts)}")
        if dup < 1:
            notes.append(f"{label}: redelivery answers {dict(answers)}")
        if not held_ok:
            notes.append(f"{label}: far side held {[r.held for r in m.runs]} after the runs")
        if m.skipped:
            notes.append(f"{label}: {m.skipped}")
    legend = (
        f"deliv/s, ms/deliv: median of the runs, {n:,} distinct notifications each, flush() "
        f"every {RUNNER_BATCH} and at the end where the kind calls it",
        f"x json: time per delivery over {REFERENCE}'s in the same round, median of the "
        "rounds; spread: (max-min)/median of the runs' deliveries/s",
        "redeliv: the same notifications again, same sink; dup: share answered DUPLICATE; "
        "vs 1st: redelivery time over first-delivery time",
        "held: after close, the far side holds each delivered notification exactly once "
        "(read as the back office reads it)",
    )
    for line in legend:
        print(f"  {line}")
    if any(r.first.cut or r.again.cut for m in results for r in m.runs):
        notes.append("* the budget (--kind-budget-s) cut a pass short; n is the fewest delivered")
    for note in notes:
        print(f"  NOTE {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    labels = [k.label for k in KINDS]
    parser.add_argument(
        "--kinds",
        default=",".join(labels),
        help=f"comma-separated sink kinds to measure, in this order: {', '.join(labels)}",
    )
    parser.add_argument("--n", type=int, default=2_000, help="distinct notifications per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per kind, fresh far sides")
    parser.add_argument(
        "--kind-budget-s",
        type=float,
        default=60.0,
        help="most seconds one kind may take; a pass that would run past its share stops early",
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server; each run creates a database tellonce_bench_<random> and drops it",
    )
    parser.add_argument(
        "--mariadb-url",
        default="mysql://root@127.0.0.1:3306",
        help="MariaDB server; each run creates a database tellonce_bench_<random> and drops it",
    )
    args = parser.parse_args(argv)
    chosen = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(chosen) - set(labels))
    if unknown:
        parser.error(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(labels)}")
    if args.n < 1 or args.repeats < 1 or args.kind_budget_s <= 0:
        parser.error("--n and --repeats must be at least 1, --kind-budget-s above 0")
    logs.configure("warning", "console")  # sinks log per delivery at debug/info: keep it out

    started = time.perf_counter()
    print(
        f"tellonce connector bench, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"{datetime.now(UTC):%Y-%m-%d}; {args.n:,} notifications x {args.repeats} runs per kind"
    )
    results = [Measured(k) for k in KINDS if k.label in chosen]
    with tempfile.TemporaryDirectory(prefix="tellonce-connector-bench-") as tmp:
        # Round-robin, one run of every kind per round, so drift on a shared machine (other
        # jobs, disk cache) hits all kinds alike and the per-round ratios stay comparable.
        for round_ in range(args.repeats):
            for measured in results:
                if not measured.skipped:
                    run_once(measured, round_, Path(tmp), args)
            print(
                f"  round {round_ + 1}/{args.repeats} done at {time.perf_counter() - started:.0f} s"
            )
    report(results, args.n)
    print(f"done in {time.perf_counter() - started:.0f} s; temp files and databases removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
