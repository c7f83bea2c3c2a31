"""``tellonce publish``, ``schemas`` and ``directory``: the wire contract as a publisher meets it.

Exit codes as elsewhere: 0 sent, checked or listed; 1 the broker failed; 2 the request was
wrong (a payload the hub would refuse, a changed published schema, an unknown program).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from hub.cli.common import app_from_settings, command, group, read_text
from hub.errors import ConfigError, SchemaCompatibilityError
from hub.wire.topics import LIFEEVENTS_TOPIC

if TYPE_CHECKING:
    from hub.cli.common import Commands
    from hub.config.settings import Settings


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    from hub.adapters.record_keys import RecordKey
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
    app = app_from_settings(settings)
    signer = RecordKey.load(Path(args.key)) if args.key else None
    # What the hub would check, before anything is sent: the signature, schema fit, field
    # rules, and whether the program may publish this type. No broker is needed to find out.
    event = checked_event(
        app.codec,
        app.directory,
        source=args.source,
        event_type=args.event_type,
        data=data,
        at=utc_now(),
        event_id=args.id,
        signer=signer,
        signatures=app.event_signatures(),
    )
    if args.dry_run:
        print(json.dumps(event.preview(app.catalog), indent=2))
        return 0
    kafka = app.kafka()
    app.ensure_topics(kafka, [LIFEEVENTS_TOPIC])  # a publisher's ACLs show it this topic only
    producer = app.producer(kafka)
    try:
        event_id = event.send(producer)
    finally:
        producer.close()
    print(event_id)
    return 0


def cmd_schemas_check(args: argparse.Namespace, _settings: Settings) -> int:
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


def cmd_schemas_list(args: argparse.Namespace, _settings: Settings) -> int:
    from hub.wire.catalog import load_catalog

    catalog = load_catalog(args.dir)
    for entry in catalog.entries:
        state = "published" if entry.fingerprint else "draft"
        print(f"{entry.id:4}  {entry.name} v{entry.version}  {entry.file}  {state}")
    return 0


def cmd_schemas_publish(args: argparse.Namespace, _settings: Settings) -> int:
    from hub.adapters.schema_check import check_catalog, record_fingerprints
    from hub.wire.catalog import load_catalog

    if check_catalog(load_catalog(args.dir)):
        raise SchemaCompatibilityError("fix 'tellonce schemas check' findings before publishing")
    for name in record_fingerprints(args.dir):
        print(f"published {name}")
    return 0


def cmd_directory_show(_args: argparse.Namespace, settings: Settings) -> int:
    from hub.config.directory import load_directory

    directory = load_directory(settings.directory_path)
    levels = {j.id: j.level.value for j in directory.jurisdictions}
    for program in directory.programs:
        where = f"{levels[program.jurisdiction]}, {program.jurisdiction}"
        print(f"{program.id}  ({where})  {program.name}")
        if program.publishes:
            print(f"    publishes: {', '.join(program.publishes)}")
        for event_type, sub in program.subscriptions.items():
            print(f"    receives {event_type}: {', '.join(sub.fields)}  [{sub.authority}]")
    return 0


def register(commands: Commands) -> None:
    publish = command(
        commands,
        "publish",
        cmd_publish,
        "publish one life event (as a back office would)",
        description="Publish one life event on tellonce.lifeevents.v1, as a back office would. "
        "Before sending, it runs the checks the hub will run: the payload must fit the "
        "event's schema, meet its field rules (e.g. a postal code of the province), and the "
        "program must be allowed to publish the type (see 'tellonce directory show'), and "
        "a signature (--key) must verify under a key the directory lists for the program "
        "(required unless TELLONCE_HUB__REQUIRE_SIGNATURES is false). A failed check exits 2 "
        "naming the field and the rule; nothing is sent.",
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
        "--key",
        metavar="FILE",
        help="sign the event with the program's key file ('tellonce keys new' makes one and "
        "prints the entry to add to the directory file, TELLONCE_DIRECTORY_PATH)",
    )
    publish.add_argument(
        "--dry-run",
        action="store_true",
        help="check as the hub would and print what would be sent (topic, key, headers, size); "
        "send nothing, need no broker",
    )

    schemas = group(commands, "schemas", "the Avro schema catalog")
    for name, handler, text in (
        ("check", cmd_schemas_check, "fail on a changed published schema or an incompatible one"),
        ("list", cmd_schemas_list, "list schema ids"),
        ("publish", cmd_schemas_publish, "record fingerprints of draft versions"),
    ):
        command(schemas, name, handler, text).add_argument(
            "--dir", type=Path, help="schema folder (default: the shipped catalog)"
        )


def register_directory(commands: Commands) -> None:
    directory = group(commands, "directory", "the program directory")
    command(
        directory,
        "show",
        cmd_directory_show,
        "list programs, what they publish and what they may receive",
    )
