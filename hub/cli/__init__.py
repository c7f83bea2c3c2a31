"""The ``tellonce`` command.

Exit codes: 0 success; 1 the work failed (a broker or database error, a demo outcome that did not
match); 2 the request was wrong (usage, settings, unknown program, person or event type, a file
that cannot be read, a payload the hub would refuse); 130 interrupted (Ctrl-C).

Every failure is one ``tellonce: ...`` line saying what was wrong and what to do, never a
traceback. An error nobody foresaw is logged as one JSON line naming its class (never its
message, which may quote personal data) and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hub.cli import audit as cli_audit
from hub.cli import connectors as cli_connectors
from hub.cli import consent as cli_consent
from hub.cli.common import Handler, app_from_settings, read_text, stop_on_signals
from hub.config import logs
from hub.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PayloadError,
    SchemaCompatibilityError,
    TellonceError,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    if unknown := _unknown_variables():
        print(unknown, file=sys.stderr)
        return 2
    try:
        return _run(args)
    except KeyboardInterrupt:  # Ctrl-C: a line, not a traceback
        print("tellonce: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last resort: one JSON line naming the class, exit 1
        _log_unexpected(exc, _command(parser, sys.argv[1:] if argv is None else argv))
        return 1


def _run(args: argparse.Namespace) -> int:
    try:
        from hub.config.settings import Settings

        settings = Settings()
    except ValidationError as exc:
        print(f"tellonce: invalid settings: {_pydantic_problems(exc)}", file=sys.stderr)
        return 2
    logs.configure(args.log_level or settings.log_level, settings.log_format)
    try:
        result: int = args.handler(args)
        return result
    except BrokenPipeError:  # output piped into head or similar
        return 0
    except (
        ConfigError,
        NotFoundError,
        ConflictError,
        SchemaCompatibilityError,
        PayloadError,
    ) as exc:
        print(f"tellonce: {exc}", file=sys.stderr)
        return 2
    except TellonceError as exc:
        print(f"tellonce: {exc}", file=sys.stderr)
        return 1


def _log_unexpected(exc: Exception, command: str) -> None:
    """One JSON line on standard error: the error's class, the command and where it was
    raised. Never the message: it can quote the data being handled."""
    import traceback

    import structlog

    frames = traceback.extract_tb(exc.__traceback__)
    where = None
    if frames:
        where = f"{'/'.join(Path(frames[-1].filename).parts[-2:])}:{frames[-1].lineno}"
    logs.configure("error", "json")
    structlog.get_logger("hub.cli").error(
        "unexpected error; the command stopped. Please report this line (it holds no data "
        "from the request)",
        error=f"{type(exc).__module__}.{type(exc).__qualname__}",
        command=command,
        where=where,
    )


def _command(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str:
    """The command words of ``argv`` (``audit prove``), without arguments or options."""
    words = []
    current = parser
    for token in argv:
        subparsers = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers:
            break
        if token in subparsers[0].choices:
            words.append(token)
            current = subparsers[0].choices[token]
    return " ".join(words) or "tellonce"


def _unknown_variables() -> str | None:
    """The message for TELLONCE_* variables that name no setting (a typo must not fall back to
    a default store silently), or None."""
    from hub.config.settings import unknown_variables

    problems = unknown_variables(os.environ)
    if not problems:
        return None
    return (
        "\n".join(f"tellonce: {problem}" for problem in problems)
        + f"\ntellonce: rename or unset {'it' if len(problems) == 1 else 'them'}; "
        "nested settings use a double underscore "
        "(TELLONCE_STORE__URL), and the README's Settings section lists them all"
    )


def _pydantic_problems(exc: ValidationError) -> str:
    return "; ".join(
        f"TELLONCE_{'__'.join(str(p).upper() for p in e['loc'])}: "
        + e["msg"].removeprefix("Value error, ")
        for e in exc.errors(include_url=False, include_input=False)
    )


# -- handlers ------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from hub.demo.run import run_demo

    return run_demo(as_json=args.json, keep=args.keep, verbose=args.verbose)


def cmd_broker(args: argparse.Namespace) -> int:
    from hub.adapters.broker import EmbeddedBroker
    from hub.config.settings import Settings

    settings = Settings()
    with EmbeddedBroker(
        settings.broker.tansu_bin, port=args.port, startup_timeout=settings.broker.startup_timeout_s
    ) as broker:
        print(f"Tansu broker (memory only) listening on {broker.bootstrap}", flush=True)
        print(f"export TELLONCE_BROKER__BOOTSTRAP_SERVERS={broker.bootstrap}", flush=True)
        print("Press Ctrl-C to stop. Topics and offsets are lost when it stops.", flush=True)
        stop = stop_on_signals()
        while not stop.wait(0.5):
            if broker._process is None or broker._process.poll() is not None:
                print("tellonce: the broker exited", file=sys.stderr)
                return 1
    return 0


def cmd_hub_run(args: argparse.Namespace) -> int:
    app = app_from_settings()
    bootstrap = app.bootstrap_servers()
    worker = app.hub_worker(bootstrap)
    stop = stop_on_signals()
    try:
        totals = worker.run(stop, idle_exit_s=args.idle_exit)
    finally:
        worker.close()
        app.close()
    print(json.dumps({"hub": _fields(totals)}))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from hub.bootstrap import utc_now
    from hub.wire.publishing import checked_event

    if args.file is not None:
        text = read_text(
            args.file, "the payload file", "give a JSON file with --file or the JSON with --json"
        )
    elif args.json is not None:
        text = args.json
    else:
        raise ConfigError("give the event payload with --file PATH or --json TEXT")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"the payload is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    app = app_from_settings()
    # What the hub would check, before anything is sent: schema fit, field rules, and whether
    # the program may publish this type. No broker is needed to find out.
    event = checked_event(
        app.codec,
        app.directory,
        source=args.source,
        event_type=args.event_type,
        data=data,
        at=utc_now(),
        event_id=args.id,
    )
    if args.dry_run:
        print(json.dumps(_would_send(event, app.catalog), indent=2))
        return 0
    bootstrap = app.bootstrap_servers()
    app.ensure_topics(bootstrap)
    producer = app.producer(bootstrap)
    try:
        producer.send(event.topic, event.key, event.value, event.headers)
        producer.flush()
    finally:
        producer.close()
    print(event.event_id)
    return 0


def _would_send(event: Any, catalog: Any) -> dict[str, Any]:
    entry = catalog.by_id(event.schema_id)
    return {
        "dry_run": True,
        "sent": False,
        "checks": "passed: schema fit, field rules, the program may publish this type",
        "topic": event.topic,
        "key": event.key.decode(),
        "headers": {name: value.decode() for name, value in event.headers},
        "value_bytes": len(event.value),
        "schema_id": event.schema_id,
        "schema": f"{entry.name} v{entry.version}",
    }


def cmd_schemas_check(args: argparse.Namespace) -> int:
    from hub.adapters.schema_check import check_catalog
    from hub.wire.catalog import load_catalog

    catalog = load_catalog(args.dir)
    findings = check_catalog(catalog)
    for finding in findings:
        print(f"FAIL {finding.name} v{finding.version}: {finding.problem}")
    drafts = [e for e in catalog.entries if e.fingerprint is None]
    for entry in drafts:
        print(f"note {entry.name} v{entry.version}: not published yet (no fingerprint)")
    if findings:
        raise SchemaCompatibilityError(
            f"{len(findings)} schema problem(s); published schemas must not change and new "
            f"versions must be {catalog.compatibility} compatible"
        )
    print(f"ok: {len(catalog.entries)} schemas, {catalog.compatibility}")
    return 0


def cmd_schemas_list(args: argparse.Namespace) -> int:
    from hub.wire.catalog import load_catalog

    catalog = load_catalog(args.dir)
    for entry in catalog.entries:
        state = "published" if entry.fingerprint else "draft"
        print(f"{entry.id:4}  {entry.name} v{entry.version}  {entry.file}  {state}")
    return 0


def cmd_schemas_publish(args: argparse.Namespace) -> int:
    from hub.adapters.schema_check import check_catalog, record_fingerprints
    from hub.wire.catalog import load_catalog

    if check_catalog(load_catalog(args.dir)):
        raise SchemaCompatibilityError("fix 'tellonce schemas check' findings before publishing")
    for name in record_fingerprints(args.dir):
        print(f"published {name}")
    return 0


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    from hub.adapters.sql import SqlStore
    from hub.config.settings import Settings

    SqlStore.open(Settings().store.url, migrate_schema=True).close()
    print("database schema is up to date")
    return 0


def cmd_db_id(_args: argparse.Namespace) -> int:
    """The store id the hub claims its consumer group with (read-only)."""
    app = app_from_settings(read_only=True)
    try:
        print(app.store.store_id())
    finally:
        app.close()
    return 0


def cmd_directory_show(_args: argparse.Namespace) -> int:
    from hub.config.directory import load_directory
    from hub.config.settings import Settings

    directory = load_directory(Settings().directory_path)
    levels = {j.id: j.level.value for j in directory.jurisdictions}
    for program in directory.programs:
        where = f"{levels[program.jurisdiction]}, {program.jurisdiction}"
        print(f"{program.id}  ({where})  {program.name}")
        if program.publishes:
            print(f"    publishes: {', '.join(program.publishes)}")
        for event_type, sub in program.subscriptions.items():
            print(f"    receives {event_type}: {', '.join(sub.fields)}  [{sub.authority}]")
    return 0


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--option takes KEY=VALUE, got {text!r}")
    return key, value


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


# -- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tellonce",
        description="Tell us once: pass a client's life event to every program they agreed to "
        "tell. Settings come from TELLONCE_* environment variables (see README).",
    )
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="override the log level"
    )
    sub = parser.add_subparsers(metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the whole flow on an embedded broker and SQLite")
    demo.add_argument("--json", action="store_true", help="print one JSON object of counts")
    demo.add_argument("--keep", type=Path, help="keep the demo's files in this folder")
    demo.add_argument("--verbose", action="store_true", help="show the hub's logs")
    demo.set_defaults(handler=cmd_demo)

    broker = sub.add_parser("broker", help="run the embedded Tansu broker in the foreground")
    broker.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    broker.set_defaults(handler=cmd_broker)

    hub = sub.add_parser("hub", help="the hub worker").add_subparsers(metavar="ACTION")
    run = hub.add_parser("run", help="consume life events, decide, publish notifications")
    run.add_argument(
        "--idle-exit", type=float, metavar="SECONDS", help="exit after this long with no work"
    )
    run.set_defaults(handler=cmd_hub_run)

    cli_connectors.register(sub)
    cli_consent.register(sub)
    cli_audit.register(sub)

    publish = sub.add_parser(
        "publish",
        help="publish one life event (as a back office would)",
        description="Publish one life event on tellonce.lifeevents.v1, as a back office would. "
        "Before sending, it runs the checks the hub will run: the payload must fit the "
        "event's schema, meet its field rules (e.g. a postal code of the province), and the "
        "program must be allowed to publish the type (see 'tellonce directory show'). A "
        "failed check exits 2 naming the field and the rule; nothing is sent.",
        epilog="The payload is JSON with the schema's fields (schemas/*.avsc): dates as "
        "YYYY-MM-DD, an optional field as its value or null. Exit codes: 0 sent (prints the "
        "event id) or checked (--dry-run), 1 the broker failed, 2 the request was wrong.",
    )
    publish.add_argument("source", help="publishing program id (ce_source)")
    publish.add_argument("event_type", help="AddressChanged, DeathReported or NameChanged")
    publish.add_argument("--file", help="JSON payload file")
    publish.add_argument("--json", help="JSON payload text")
    publish.add_argument("--id", help="ce_id (default: a new UUID)")
    publish.add_argument(
        "--dry-run",
        action="store_true",
        help="check as the hub would and print what would be sent (topic, key, headers, size); "
        "send nothing, need no broker",
    )
    publish.set_defaults(handler=cmd_publish)

    schemas = sub.add_parser("schemas", help="the Avro schema catalog")
    ssub = schemas.add_subparsers(metavar="ACTION")
    for name, handler, text in (
        ("check", cmd_schemas_check, "fail on a changed published schema or an incompatible one"),
        ("list", cmd_schemas_list, "list schema ids"),
        ("publish", cmd_schemas_publish, "record fingerprints of draft versions"),
    ):
        p = ssub.add_parser(name, help=text)
        p.add_argument("--dir", type=Path, help="schema folder (default: the shipped catalog)")
        p.set_defaults(handler=handler)

    db = sub.add_parser("db", help="the database").add_subparsers(metavar="ACTION")
    db.add_parser("upgrade", help="create or upgrade the schema").set_defaults(
        handler=cmd_db_upgrade
    )
    db.add_parser(
        "id", help="print the database's store id (which hub consumer groups claim; read-only)"
    ).set_defaults(handler=cmd_db_id)
    directory = sub.add_parser("directory", help="the program directory")
    directory.add_subparsers(metavar="ACTION").add_parser(
        "show", help="list programs, what they publish and what they may receive"
    ).set_defaults(handler=cmd_directory_show)
    _help_for_groups(parser)
    return parser


def _help_for_groups(parser: argparse.ArgumentParser) -> None:
    """A command group run without an action (``tellonce dlq``) prints its own help, exit 2."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                    child.set_defaults(handler=_usage(child))
                    _help_for_groups(child)


def _usage(parser: argparse.ArgumentParser) -> Handler:
    def handler(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return handler


if __name__ == "__main__":
    raise SystemExit(main())
