"""``tellonce keys``: programs' signing keys, and the key-encryption keys (KEKs) that wrap every
person's data key.

``new`` makes a program's Ed25519 key file and prints the directory entry of its public key
(README, "Signed life events", "Signed receipts"): the private key never leaves the file it
writes.

``rotate-kek`` rewraps every data key under a new KEK in committed batches, never touching a
ciphertext, and resumes an unfinished rotation instead of starting another; ``status`` shows
which KEK is current and how many data keys each KEK wraps.

Exit codes as elsewhere: 0 done; 1 the work failed (the KEK file or HSM cannot be used, a
database error, or data keys left under another KEK: run it again, it resumes); 2 the request
was wrong (settings); 130 interrupted (what was committed stays; run it again to finish).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hub.cli.common import app_from_settings, command, group
from hub.errors import ConfigError

if TYPE_CHECKING:
    from hub.cli.common import Commands
    from hub.config.settings import Settings
    from hub.config.signing_keys import ProgramKey

PROGRESS_EVERY_S = 1.0


def cmd_new(args: argparse.Namespace, settings: Settings) -> int:
    from hub.adapters.record_keys import RecordKey
    from hub.bootstrap import utc_now
    from hub.config.directory import load_directory

    program = load_directory(settings.directory_path).program(args.program)
    valid_from = args.valid_from or utc_now().replace(microsecond=0)
    if args.valid_to is not None and args.valid_to <= valid_from:
        raise ConfigError("--valid-to must come after --valid-from")
    key = RecordKey.new(Path(args.out))
    entry = key.directory_entry(valid_from, args.valid_to)
    if args.json:
        print(
            json.dumps(
                {"program": program.id, "key_file": args.out, **entry.model_dump(mode="json")}
            )
        )
        return 0
    _say(f"wrote the private key of {program.id} to {args.out} (mode 0600); keep it secret")
    print(f"# add to the directory, after the [[programs]] table of id = {program.id!r}:")
    _print_entry("programs.keys", entry)
    return 0


def cmd_hub_entry(args: argparse.Namespace, settings: Settings) -> int:
    from hub.adapters.record_keys import RecordKey
    from hub.bootstrap import utc_now

    valid_from = args.valid_from or utc_now().replace(microsecond=0)
    hub_key = RecordKey.load(
        settings.audit.signing_key,
        fix="set TELLONCE_AUDIT__SIGNING_KEY to the hub's audit key ('tellonce audit keygen' "
        "makes one)",
    )
    entry = hub_key.directory_entry(valid_from)
    if args.json:
        print(json.dumps(entry.model_dump(mode="json")))
        return 0
    print("# add to the directory (top level) so that connectors check the hub's notices:")
    _print_entry("hub_keys", entry)
    return 0


def _print_entry(table: str, entry: ProgramKey) -> None:
    print(f"[[{table}]]")
    print(f'id = "{entry.id}"')
    print(f'public_key = "{entry.public_key}"')
    print(f"valid_from = {_toml_time(entry.valid_from)}")
    if entry.valid_to is not None:
        print(f"valid_to = {_toml_time(entry.valid_to)}")


def _toml_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _aware_time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "give an ISO 8601 time, e.g. 2026-12-01T00:00:00Z"
        ) from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone, e.g. 2026-12-01T00:00:00Z")
    return at


def cmd_rotate_kek(args: argparse.Namespace, settings: Settings) -> int:
    from hub.privacy.rotation import plan_rotation, rewrap_all

    started = time.monotonic()
    app = app_from_settings(settings)
    try:
        store = app.store
        plan = plan_rotation(store, app.vault().wrapper)
        if plan.created:
            _say(f"made KEK {plan.kek_id} current; rewrapping {plan.stale:,} data keys")
        else:
            _say(
                f"resuming an unfinished rotation: {plan.stale:,} data keys are not under the "
                f"current KEK {plan.kek_id} yet; no new KEK made"
            )
        rotation = rewrap_all(store, plan, batch=args.batch, progress=_progress(plan.stale))
    finally:
        app.close()
    seconds = time.monotonic() - started
    if args.json:
        print(
            json.dumps(
                {
                    "kek_id": plan.kek_id,
                    "created": plan.created,
                    "resumed": not plan.created,
                    "rewrapped": rotation.rewrapped,
                    "batches": rotation.batches,
                    "data_keys_by_kek": rotation.keys_by_kek,
                    "retired_keks": rotation.retired,
                    "unfinished": rotation.unfinished,
                    "seconds": round(seconds, 2),
                }
            )
        )
        return _unfinished(rotation.unfinished)
    if rotation.unfinished:
        print(
            f"{rotation.rewrapped:,} data keys rewrapped under KEK {plan.kek_id} in "
            f"{rotation.batches:,} batches ({seconds:.1f} s); no ciphertext was touched"
        )
        return _unfinished(rotation.unfinished)
    print(
        f"every data key is under KEK {plan.kek_id}: {rotation.rewrapped:,} rewrapped in "
        f"{rotation.batches:,} batches ({seconds:.1f} s); no ciphertext was touched"
    )
    for kek_id in rotation.retired:
        print(
            f"KEK {kek_id} wraps no data key any more; keep it while backups from before this "
            "rotation exist, then destroy it"
        )
    return 0


def _unfinished(left: int) -> int:
    """Exit 1 when data keys are still under another KEK: running it again finishes."""
    if not left:
        return 0
    _say(
        f"tellonce: {left:,} data keys are still under another KEK (held by a running hub, or "
        "wrapped before it saw the new KEK); run 'tellonce keys rotate-kek' again to finish"
    )
    return 1


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    app = app_from_settings(settings, read_only=True)
    try:
        store = app.store  # a missing database is reported before any key is read
        with store.transaction() as tx:
            keys_by_kek = tx.data_keys_by_kek()
        current = app.vault().wrapper.current_kek()
    finally:
        app.close()
    stale = sum(n for kek_id, n in keys_by_kek.items() if kek_id != current)
    wrapper = _wrapper_line(settings)
    if args.json:
        print(
            json.dumps(
                {
                    "key_wrapper": settings.privacy.key_wrapper,
                    "where": wrapper,
                    "current_kek": current,
                    "data_keys_by_kek": keys_by_kek,
                    "rotation_unfinished": stale > 0,
                }
            )
        )
        return 0
    print(f"key wrapper: {wrapper}")
    print(f"current KEK: {current}")
    print("data keys per KEK:")
    for kek_id, count in sorted(keys_by_kek.items(), key=lambda item: item[0] != current):
        print(f"  {kek_id}  {count:,}{'  (current)' if kek_id == current else ''}")
    if not keys_by_kek:
        print("  none yet")
    if stale:
        print(
            f"{stale:,} data keys are not under the current KEK: a rotation is unfinished; run "
            "'tellonce keys rotate-kek' to finish it"
        )
    return 0


def _wrapper_line(settings: Settings) -> str:
    privacy = settings.privacy
    if privacy.key_wrapper == "file":
        return f"file (folder {privacy.kek_dir_path(settings.audit.signing_key)})"
    return f"pkcs11 (token {privacy.pkcs11_token!r}, library {privacy.pkcs11_library})"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _progress(total: int) -> Callable[[int], None]:
    """Prints the first batch and then at most one line a second, on standard error."""
    last = [0.0]

    def report(done: int) -> None:
        now = time.monotonic()
        if last[0] and now - last[0] < PROGRESS_EVERY_S and done < total:
            return
        last[0] = now
        _say(f"rewrapped {done:,}/{total:,} data keys")

    return report


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(commands: Commands) -> None:
    keys = group(
        commands,
        "keys",
        "programs' signing keys, and the key-encryption keys that wrap personal data keys",
    )
    p = command(
        keys,
        "new",
        cmd_new,
        "make a program's Ed25519 signing key and print its directory entry",
        description="Make an Ed25519 key for a program in a new file (unencrypted PKCS8 PEM, "
        "mode 0600; an existing file is never overwritten) and print the [[programs.keys]] "
        "entry to add to the directory: its id, public key and validity. The program signs "
        "with it once the hub's directory lists it: its life events ('tellonce publish --key "
        "FILE'), or, for a recipient, its connector's receipts (TELLONCE_CONNECTOR__SIGNING_KEY"
        "=FILE).",
        epilog="Rotation: list the new key beside the old one, switch the publishers, then "
        "give the old key a valid_to (or remove it). Exit codes: 0 made, 2 the request was "
        "wrong (unknown program, the file exists).",
    )
    p.add_argument("program", help="the program that will sign with the key (its id)")
    p.add_argument("--out", required=True, metavar="FILE", help="the new private key file")
    p.add_argument(
        "--valid-from", type=_aware_time, metavar="TIME", help="default: now (ISO 8601, UTC)"
    )
    p.add_argument("--valid-to", type=_aware_time, metavar="TIME", help="default: no end")
    p.add_argument("--json", action="store_true", help="print the entry as one JSON object")
    p = command(
        keys,
        "hub-entry",
        cmd_hub_entry,
        "print the directory entry of the hub's key, which signs every notice",
        description="Print the [[hub_keys]] entry of the hub's audit key "
        "(TELLONCE_AUDIT__SIGNING_KEY), which also signs every notice. List it in the "
        "directory the connectors read: they check each notice's signature before "
        "delivering it, and do not start without a hub key while signed notices are "
        "required, the default (README, Signed notices). Never creates the key.",
        epilog="Exit codes: 0 printed, 2 the key file cannot be read.",
    )
    p.add_argument(
        "--valid-from", type=_aware_time, metavar="TIME", help="default: now (ISO 8601, UTC)"
    )
    p.add_argument("--json", action="store_true", help="print the entry as one JSON object")
    p = command(
        keys,
        "rotate-kek",
        cmd_rotate_kek,
        "make a new KEK current and rewrap every data key under it (resumes an unfinished one)",
        description="Rotate the key-encryption key (KEK). When every data key is under the "
        "current KEK, a new KEK is made current; then every data key is rewrapped under it, "
        "a batch per committed transaction, progress on standard error. Ciphertexts are not "
        "touched. When some data keys are not under the current KEK yet (a rotation that "
        "stopped part-way), it resumes that rotation and makes no new KEK. The hub may keep "
        "running meanwhile: both KEKs unwrap until the rotation ends.",
        epilog="Keep the old KEK while backups from before the rotation exist: they need it.",
    )
    p.add_argument(
        "--batch",
        type=_positive,
        default=500,
        metavar="N",
        help="data keys rewrapped per transaction (default 500)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON summary object")
    p = command(
        keys,
        "status",
        cmd_status,
        "show the key wrapper, the current KEK and how many data keys each KEK wraps",
        description="Show where the KEKs live, which KEK is current and how many data keys "
        "each KEK wraps; a rotation that stopped part-way shows as keys under an old KEK. "
        "Read-only: never creates a KEK or the database.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
