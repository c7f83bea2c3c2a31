"""``tellonce connector`` and ``tellonce dlq``: run, list and watch connectors; manage dead letters.

Exit codes as elsewhere: 0 done; 1 the work failed (broker unreachable at start, connector
stopped with errors.tolerance=none); 2 the request was wrong (unknown recipient or sink, bad
option). A broker lost while running is waited for: the connector goes on once it is back.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import TYPE_CHECKING

from hub.cli.common import (
    app_from_settings,
    command,
    group,
    idle_exit_option,
    json_option,
    stop_on_signals,
)
from hub.errors import ConfigError

if TYPE_CHECKING:
    from hub.cli.common import Commands
    from hub.config.settings import Settings
    from hub.delivery.replay import DeadLetterOffice


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    app = app_from_settings(settings)
    options = dict(_option(o) for o in args.option)
    runner = app.connector(app.kafka(), args.recipient, args.sink, options)
    stop = stop_on_signals()
    try:
        totals = runner.run(stop, idle_exit_s=args.idle_exit)
    finally:
        runner.close()
    print(json.dumps({"connector": args.recipient, **dataclasses.asdict(totals)}))
    return 0


def cmd_list(_args: argparse.Namespace, _settings: Settings) -> int:
    from connectors import available

    for name, origin in sorted(available().items()):
        print(f"{name:12} {origin}")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    app = app_from_settings(settings, read_only=True)
    rows = app.connector_status([args.recipient] if args.recipient else [])
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], default=str, indent=2))
        return 0
    print(
        f"{'recipient':26} {'lag':>6} {'delivered':>9} {'in flight':>9} {'dead':>5} "
        f"{'replayed':>8}  last delivery"
    )
    for r in rows:
        last = f"{r.last_delivery:%Y-%m-%dT%H:%M:%SZ}" if r.last_delivery else "-"
        print(
            f"{r.recipient:26} {r.lag:>6} {r.delivered:>9} {r.awaiting_receipt:>9} "
            f"{r.dead_letters:>5} {r.dead_letters_replayed:>8}  {last}"
        )
    print(
        "lag: notifications the connector has not committed; in flight: published, no receipt "
        "yet (being retried, or not yet read); dead: on the dead-letter topic"
    )
    return 0


def _office(
    args: argparse.Namespace, settings: Settings, *, read_only: bool = False
) -> DeadLetterOffice:
    """The dlq use-cases over this hub's store and broker, for the recipient ``args`` names."""
    app = app_from_settings(settings, read_only=read_only)
    app.directory.program(args.recipient)
    return app.dead_letter_office()


def cmd_dlq_list(args: argparse.Namespace, settings: Settings) -> int:
    found = _office(args, settings, read_only=True).letters(args.recipient)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "partition": d.partition,
                        "offset": d.offset,
                        "notification": d.shown_id,
                        "error": d.error,
                        "reason": d.reason,
                        "attempts": d.attempts,
                        "original": d.original,
                        "at": d.at,
                        "replayed": found.is_replayed(d),
                    }
                    for d in found.letters
                ],
                indent=2,
            )
        )
        return 0
    if not found.letters:
        print(f"no dead letters for {args.recipient}")
        return 0
    for d in found.letters:
        mark = "replayed" if found.is_replayed(d) else "waiting"
        print(
            f"{d.partition}/{d.offset:<6} {d.shown_id:36}  {mark:8} {d.error:14} "
            f"attempts {d.attempts:<3} from {d.original}  {d.reason}"
        )
    print(f"{len(found.letters)} dead letters, {found.replayed_count} replayed")
    return 0


def cmd_dlq_replay(args: argparse.Namespace, settings: Settings) -> int:
    if not args.all and not args.offset:  # before connecting: a usage error needs no broker
        raise ConfigError(
            "name dead letters with --offset N (repeatable) or replay them with --all"
        )
    positions = [_position(text) for text in args.offset]
    done = _office(args, settings).replay(
        args.recipient, positions, everything=args.all, force=args.force
    )
    if not done.letters:
        print("nothing to replay (already replayed ones need --force)")
        return 0
    print(
        f"replayed {len(done.letters)} dead letters to {done.topic}; the connector "
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


def register(commands: Commands) -> None:
    connector = group(commands, "connector", "deliver notifications to a back office")
    run = command(
        connector,
        "run",
        cmd_run,
        "consume a recipient's topic and deliver through a sink",
        description="Consume the recipient's notify topic and deliver each notice through the "
        "sink. Each notice's signature is checked against the hub keys the directory lists "
        "(hub_keys; 'tellonce keys hub-entry' prints the entry); a notice without one is "
        "dead-lettered, and a directory without hub keys stops the connector at its start "
        "(exit 2), unless TELLONCE_CONNECTOR__REQUIRE_SIGNED_NOTICES is false. Each receipt "
        "is signed with the connector's key (TELLONCE_CONNECTOR__SIGNING_KEY, from 'tellonce "
        "keys new RECIPIENT', listed for the recipient); without one, a hub that requires "
        "signed receipts (its default) refuses them and publishes the notice again.",
    )
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
    idle_exit_option(run)
    command(connector, "list", cmd_list, "list available sinks")
    status = command(
        connector,
        "status",
        cmd_status,
        "per recipient: lag, last delivery, in flight, dead letters",
    )
    status.add_argument("recipient", nargs="?", help="one recipient (default: all)")
    json_option(status)

    dlq = group(commands, "dlq", "dead letters: notifications a connector gave up on")
    listing = command(dlq, "list", cmd_dlq_list, "list a recipient's dead letters")
    listing.add_argument("recipient")
    json_option(listing)
    replay = command(
        dlq, "replay", cmd_dlq_replay, "send dead letters to the recipient's topic again"
    )
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
