"""``tellonce demo``, ``broker``, ``hub run`` and ``db``: what an operator starts and sets up.

Exit codes as elsewhere: 0 done; 1 the work failed (the broker exited, a demo outcome did not
match); 2 the request was wrong (no broker configured, a database that does not exist).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hub.cli.common import app_from_settings, command, group, idle_exit_option, stop_on_signals

if TYPE_CHECKING:
    from hub.cli.common import Commands
    from hub.config.settings import Settings


def cmd_demo(args: argparse.Namespace, _settings: Settings) -> int:
    from hub.demo.run import run_demo

    return run_demo(
        as_json=args.json, keep=args.keep, verbose=args.verbose, bootstrap=args.bootstrap
    )


def bootstrap_servers(text: str) -> str:
    """``HOST:PORT[,HOST:PORT...]`` as the broker settings accept it, or argparse's own
    one-line error (exit 2)."""
    from pydantic import ValidationError

    from hub.config.settings import BrokerSettings

    try:
        servers = BrokerSettings.model_validate({"bootstrap_servers": text}).bootstrap_servers
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise argparse.ArgumentTypeError(message) from None
    if not servers:
        raise argparse.ArgumentTypeError("give at least one HOST:PORT")
    return servers


def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from hub.bootstrap import embedded_broker

    with embedded_broker(settings, args.port) as broker:
        print(f"Tansu broker (memory only) listening on {broker.bootstrap}", flush=True)
        print(f"export TELLONCE_BROKER__BOOTSTRAP_SERVERS={broker.bootstrap}", flush=True)
        print("Press Ctrl-C to stop. Topics and offsets are lost when it stops.", flush=True)
        stop = stop_on_signals()
        while not stop.wait(0.5):
            if not broker.running:
                print("tellonce: the broker exited", file=sys.stderr)
                return 1
    return 0


def cmd_hub_run(args: argparse.Namespace, settings: Settings) -> int:
    app = app_from_settings(settings)
    worker = app.hub_worker(app.kafka())
    stop = stop_on_signals()
    try:
        totals = worker.run(stop, idle_exit_s=args.idle_exit)
    finally:
        worker.close()
        app.close()
    print(json.dumps({"hub": dataclasses.asdict(totals)}))
    return 0


def cmd_db_upgrade(_args: argparse.Namespace, settings: Settings) -> int:
    from hub.bootstrap import upgrade_schema

    upgrade_schema(settings)
    print("database schema is up to date")
    return 0


def cmd_db_id(_args: argparse.Namespace, settings: Settings) -> int:
    """The store id the hub claims its consumer group with (read-only)."""
    app = app_from_settings(settings, read_only=True)
    try:
        print(app.store.store_id())
    finally:
        app.close()
    return 0


def register(commands: Commands) -> None:
    demo = command(
        commands,
        "demo",
        cmd_demo,
        "run the whole flow on an embedded broker (or an existing Kafka cluster) and SQLite",
    )
    demo.add_argument(
        "--bootstrap",
        type=bootstrap_servers,
        metavar="HOST:PORT[,...]",
        help="run on this Kafka cluster instead of an embedded Tansu: a test cluster no "
        "tellonce hub or connector uses (the demo publishes to the real topic names). Topics "
        "missing are created with TELLONCE_BROKER__TOPIC_PARTITIONS and "
        "TELLONCE_BROKER__REPLICATION_FACTOR (a cluster with min.insync.replicas=2 needs 2 or "
        "more). Each run starts at the topics' current end, so runs do not see each other",
    )
    demo.add_argument("--json", action="store_true", help="print one JSON object of counts")
    demo.add_argument("--keep", type=Path, help="keep the demo's files in this folder")
    demo.add_argument("--verbose", action="store_true", help="show the hub's logs")

    broker = command(
        commands, "broker", cmd_broker, "run the embedded Tansu broker in the foreground"
    )
    broker.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")

    hub = group(commands, "hub", "the hub worker")
    idle_exit_option(
        command(hub, "run", cmd_hub_run, "consume life events, decide, publish notifications")
    )


def register_db(commands: Commands) -> None:
    db = group(commands, "db", "the database")
    command(db, "upgrade", cmd_db_upgrade, "create or upgrade the schema")
    command(
        db,
        "id",
        cmd_db_id,
        "print the database's store id (which hub consumer groups claim; read-only)",
    )
