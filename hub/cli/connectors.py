"""``tellonce connector`` and ``tellonce dlq``: run, list and watch connectors; manage dead letters.

Exit codes as elsewhere: 0 done; 1 the work failed (broker down, connector stopped with
errors.tolerance=none); 2 the request was wrong (unknown recipient or sink, bad option).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hub.cli.common import app_from_settings, stop_on_signals
from hub.errors import ConfigError, NotFoundError


def cmd_run(args: argparse.Namespace) -> int:
    app = app_from_settings()
    bootstrap = app.bootstrap_servers()
    options = dict(_option(o) for o in args.option)
    runner = app.connector(bootstrap, args.recipient, args.sink, options)
    stop = stop_on_signals()
    try:
        totals = runner.run(stop, idle_exit_s=args.idle_exit)
    finally:
        runner.close()
    fields = {name: getattr(totals, name) for name in totals.__slots__}
    print(json.dumps({"connector": args.recipient, **fields}))
    return 0


def cmd_list(_args: argparse.Namespace) -> int:
    from connectors import available

    for name, origin in sorted(available().items()):
        print(f"{name:12} {origin}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from hub.adapters.topics import topic_lag
    from hub.delivery.dead_letters import replayed
    from hub.wire.topics import connector_group, dlq_topic

    app = app_from_settings(read_only=True)
    bootstrap = app.bootstrap_servers()
    recipients = [args.recipient] if args.recipient else [p.id for p in app.directory.subscribers()]
    for recipient in recipients:
        if not app.directory.program(recipient).subscriptions:
            raise ConfigError(f"program {recipient!r} subscribes to nothing; it has no connector")
    deliveries = app.store.deliveries()
    rows = []
    for recipient in recipients:
        program = app.directory.program(recipient)
        lag, total = topic_lag(bootstrap, connector_group(recipient), program.notify_topic)
        _, dead = topic_lag(bootstrap, connector_group(recipient), dlq_topic(recipient))
        mine = [d for d in deliveries if d.recipient == recipient]
        delivered = [d for d in mine if d.status == "delivered"]
        rows.append(
            {
                "recipient": recipient,
                "lag": lag,
                "notifications": total,
                "delivered": len(delivered),
                "last_delivery": max((d.recorded_at for d in delivered), default=None),
                "awaiting_receipt": app.store.awaiting_receipt(recipient),
                "dead_letters": dead,
                "dead_letters_replayed": len(replayed(app.store, recipient)),
            }
        )
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
        return 0
    print(
        f"{'recipient':26} {'lag':>6} {'delivered':>9} {'in flight':>9} {'dead':>5} "
        f"{'replayed':>8}  last delivery"
    )
    for r in rows:
        last = f"{r['last_delivery']:%Y-%m-%dT%H:%M:%SZ}" if r["last_delivery"] else "-"
        print(
            f"{r['recipient']:26} {r['lag']:>6} {r['delivered']:>9} {r['awaiting_receipt']:>9} "
            f"{r['dead_letters']:>5} {r['dead_letters_replayed']:>8}  {last}"
        )
    print(
        "lag: notifications the connector has not committed; in flight: published, no receipt "
        "yet (being retried, or not yet read); dead: on the dead-letter topic"
    )
    return 0


def _letters(
    args: argparse.Namespace, *, read_only: bool = False
) -> tuple[Any, str, list[Any], set[tuple[int, int]]]:
    from hub.adapters.topics import read_topic
    from hub.delivery.dead_letters import DeadLetter, dlq_topic, replayed

    app = app_from_settings(read_only=read_only)
    app.directory.program(args.recipient)
    bootstrap = app.bootstrap_servers()
    store = app.store  # a missing database is reported before the broker is asked
    letters = [DeadLetter.from_record(r) for r in read_topic(bootstrap, dlq_topic(args.recipient))]
    return app, bootstrap, letters, replayed(store, args.recipient)


def cmd_dlq_list(args: argparse.Namespace) -> int:
    _app, _bootstrap, letters, done = _letters(args, read_only=True)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "partition": d.partition,
                        "offset": d.offset,
                        "notification": d.notification_id,
                        "error": d.error,
                        "reason": d.reason,
                        "attempts": d.attempts,
                        "original": d.original,
                        "at": d.at,
                        "replayed": (d.partition, d.offset) in done,
                    }
                    for d in letters
                ],
                indent=2,
            )
        )
        return 0
    if not letters:
        print(f"no dead letters for {args.recipient}")
        return 0
    for d in letters:
        mark = "replayed" if (d.partition, d.offset) in done else "waiting"
        print(
            f"{d.partition}/{d.offset:<6} {d.notification_id}  {mark:8} {d.error:14} "
            f"attempts {d.attempts:<3} from {d.original}  {d.reason}"
        )
    count = sum(1 for d in letters if (d.partition, d.offset) in done)
    print(f"{len(letters)} dead letters, {count} replayed")
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    from hub.bootstrap import utc_now
    from hub.delivery.dead_letters import record_replays
    from hub.wire.topics import notify_topic

    if not args.all and not args.offset:  # before connecting: a usage error needs no broker
        raise ConfigError(
            "name dead letters with --offset N (repeatable) or replay them with --all"
        )
    positions = [_position(text) for text in args.offset]
    app, bootstrap, letters, done = _letters(args)
    wanted: set[tuple[int, int]] = set()
    missing = []
    for partition, offset in positions:
        found = [d for d in letters if d.offset == offset and partition in (None, d.partition)]
        if len(found) > 1:  # the dead-letter topic has several partitions
            raise ConfigError(
                f"offset {offset} is in partitions "
                f"{', '.join(str(d.partition) for d in found)} of the dead-letter topic; "
                f"name one as PARTITION/{offset}, as 'tellonce dlq list' shows it"
            )
        if found:
            wanted.add((found[0].partition, found[0].offset))
        else:
            missing.append(offset if partition is None else f"{partition}/{offset}")
    if missing:
        raise NotFoundError(
            f"no dead letter at offset(s) {', '.join(map(str, missing))} for "
            f"{args.recipient}; see 'tellonce dlq list {args.recipient}'"
        )
    chosen = [
        d
        for d in letters
        if (args.all or (d.partition, d.offset) in wanted)
        and (args.force or (d.partition, d.offset) not in done)
    ]
    if not chosen:
        print("nothing to replay (already replayed ones need --force)")
        return 0
    producer = app.producer(bootstrap)
    try:
        for d in chosen:
            producer.send(
                notify_topic(args.recipient),
                d.record.key,
                d.record.value or b"",
                d.replay_headers(),
            )
        producer.flush()
    finally:
        producer.close()
    record_replays(app.store, args.recipient, chosen, utc_now(), app.pseudonyms())
    print(
        f"replayed {len(chosen)} dead letters to {notify_topic(args.recipient)}; the connector "
        "delivers them again (its sink ignores any it already has), and each replay is in the "
        "audit log"
    )
    return 0


def _position(text: str) -> tuple[int | None, int]:
    """``N`` or ``PARTITION/N`` (as ``dlq list`` shows a dead letter) -> (partition, offset)."""
    partition, sep, offset = text.rpartition("/")
    try:
        return (int(partition) if sep else None), int(offset)
    except ValueError:
        raise ConfigError(
            f"--offset takes N or PARTITION/N as 'tellonce dlq list' shows, got {text!r}"
        ) from None


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--option takes KEY=VALUE, got {text!r}")
    return key, value


def register(sub: Any) -> None:
    connector = sub.add_parser("connector", help="deliver notifications to a back office")
    csub = connector.add_subparsers(metavar="ACTION")
    run = csub.add_parser("run", help="consume a recipient's topic and deliver through a sink")
    run.add_argument("recipient", help="recipient program id from the directory")
    run.add_argument(
        "--sink",
        default="filedrop",
        help="sink name, entry point or module:attr (default filedrop)",
    )
    run.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="sink option, e.g. directory=/srv/inbox (filedrop), url=postgresql://... "
        "(sqltable), url=https://... (webhook)",
    )
    run.add_argument(
        "--idle-exit", type=float, metavar="SECONDS", help="exit after this long with no work"
    )
    run.set_defaults(handler=cmd_run)
    csub.add_parser("list", help="list available sinks").set_defaults(handler=cmd_list)
    status = csub.add_parser(
        "status", help="per recipient: lag, last delivery, in flight, dead letters"
    )
    status.add_argument("recipient", nargs="?", help="one recipient (default: all)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)

    dlq = sub.add_parser("dlq", help="dead letters: notifications a connector gave up on")
    dsub = dlq.add_subparsers(metavar="ACTION")
    lst = dsub.add_parser("list", help="list a recipient's dead letters")
    lst.add_argument("recipient")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_dlq_list)
    replay = dsub.add_parser("replay", help="send dead letters to the recipient's topic again")
    replay.add_argument("recipient")
    replay.add_argument(
        "--offset",
        action="append",
        default=[],
        metavar="[P/]N",
        help="dead letter at offset N (of partition P, as 'dlq list' shows); repeatable",
    )
    replay.add_argument("--all", action="store_true", help="every dead letter not yet replayed")
    replay.add_argument("--force", action="store_true", help="replay already replayed ones too")
    replay.set_defaults(handler=cmd_dlq_replay)
