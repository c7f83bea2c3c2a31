"""``tellonce audit``: the signed audit log, its verification, and disclosure reports.

Exit codes as elsewhere: 0 verified / consistent; 1 verification or reconciliation failed;
2 the request was wrong (no such leaf, unreadable bundle or key, unknown person).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hub.cli.common import app_from_settings, command, group, json_option, output_file, read_text
from hub.errors import ConfigError

if TYPE_CHECKING:
    from hub.cli.common import Commands
    from hub.config.settings import Settings


def cmd_keygen(args: argparse.Namespace, settings: Settings) -> int:
    from hub.adapters.keyring import create_pseudonym_key, create_signing_key

    audit = settings.audit
    if args.path:
        audit = audit.model_copy(update={"signing_key": Path(args.path)})
    pseudonym_key = audit.pseudonym_key_path()
    if args.pseudonym:
        if pseudonym_key.exists():
            raise ConfigError(
                f"pseudonym key file {pseudonym_key} already exists; refusing to overwrite it "
                "(a new key would no longer match the pseudonyms in the log)"
            )
    else:
        path = audit.signing_key
        key_id = create_signing_key(path)
        print(f"created {path} (key id {key_id}); keep it secret and backed up")
        if pseudonym_key.exists():
            return 0
    create_pseudonym_key(pseudonym_key)
    print(f"created {pseudonym_key} (pseudonym key); keep it secret and backed up")
    return 0


def cmd_public_key(_args: argparse.Namespace, settings: Settings) -> int:
    signer = app_from_settings(settings).signer(create=False)
    print(signer.public_key_pem().rstrip())
    print(f"# key id {signer.key_id}", file=sys.stderr)
    return 0


def cmd_checkpoint(_args: argparse.Namespace, settings: Settings) -> int:
    from hub.audit.reports import checkpoint_line
    from hub.bootstrap import utc_now

    app = app_from_settings(settings)
    notary = app.notary()
    with app.store.transaction() as tx:
        checkpoint = notary.maybe_checkpoint(tx, utc_now(), force=True)
    if checkpoint is None:
        print("every leaf is already covered by a signed checkpoint")
    else:
        print(checkpoint_line(checkpoint))
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from hub.audit.bundle import export_bundle
    from hub.bootstrap import utc_now

    target = output_file(args.bundle, "the bundle", "bundle.jsonl")
    app = app_from_settings(settings, read_only=True)
    store = app.store  # a missing database is reported before any key is read
    signer = app.signer()
    partial = target.with_name(target.name + ".partial")
    started = time.monotonic()
    try:
        with partial.open("wb") as out:
            summary = export_bundle(
                store,
                out,
                public_key_pem=signer.public_key_pem(),
                key_id=signer.key_id,
                now=utc_now(),
            )
        partial.replace(target)  # never leave a half-written bundle under the real name
    finally:
        partial.unlink(missing_ok=True)
    print(
        f"exported {summary.leaves} leaves and {summary.checkpoints} checkpoints to {target} "
        f"in {time.monotonic() - started:.1f} s"
    )
    if summary.unsigned:
        print(
            f"{summary.unsigned} newer leaves are not signed yet and were left out; run "
            "'tellonce audit checkpoint' first to include them",
            file=sys.stderr,
        )
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from hub.adapters.signing import key_id_for, public_key_check

    started = time.monotonic()
    trusted = None
    if args.public_key:
        trusted = read_text(
            args.public_key,
            "the public key file",
            "give the hub's published key, as 'tellonce audit public-key > hub-public.pem' "
            "writes it",
        )
    if args.bundle:
        from hub.audit.bundle import verify_bundle

        path = Path(args.bundle)
        if not path.is_file():
            raise ConfigError(f"no bundle at {path}; make one with 'tellonce audit export'")
        verdict, pem = verify_bundle(path, trusted, public_key_check, key_id_for)
        what = f"bundle {path}"
    else:
        from hub.audit.oversight import verify_store

        app = app_from_settings(settings, read_only=True)
        store = app.store  # a missing database is the first thing to report
        pem = trusted or app.signer(create=False).public_key_pem()
        verdict = verify_store(store, public_key_check(pem), key_id_for(pem))
        what = "the live store"
    elapsed = time.monotonic() - started
    result = {
        "verified": verdict.ok,
        "what": what,
        "leaves": verdict.leaves,
        "checkpoints": verdict.checkpoints,
        "signed_leaves": verdict.signed_size,
        "unsigned_leaves": verdict.unsigned,
        "key_id": key_id_for(pem) if pem else None,
        "key_source": "trusted file" if trusted else "bundle header" if args.bundle else "hub",
        "problem": str(verdict.problem) if verdict.problem else None,
        "seconds": round(elapsed, 3),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    elif verdict.ok:
        print(
            f"verified {what}: {verdict.leaves} leaves, {verdict.checkpoints} checkpoints "
            f"(signatures, roots, consistency) in {elapsed:.2f} s; key {result['key_id']}"
        )
        if verdict.unsigned:
            print(f"{verdict.unsigned} newest leaves are not yet covered by a checkpoint")
        if args.bundle and not trusted:
            print(
                "note: checked against the key in the bundle; pass --public-key with the hub's "
                "published key to rule out a re-signed forgery"
            )
    else:
        print(f"NOT VERIFIED: {what}: {verdict.problem}", file=sys.stderr)
    return 0 if verdict.ok else 1


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    from hub.audit.oversight import reconcile

    app = app_from_settings(settings, read_only=True)
    result = reconcile(app.store, app.pseudonyms(create=False))
    if args.json:
        payload = {
            "reconciled": result.ok,
            "tallies": [
                {"fact": t.fact, "leaves": t.leaves, "facts": t.facts, "ok": t.ok}
                for t in result.tallies
            ],
            "problems": result.problems,
        }
        print(json.dumps(payload, indent=2))
    else:
        print(f"{'fact':22} {'leaves':>8} {'in store':>9}")
        for t in result.tallies:
            print(f"{t.fact:22} {t.leaves:>8} {t.facts:>9}  {'ok' if t.ok else 'MISMATCH'}")
        for problem in result.problems:
            print(f"  {problem}")
        print("reconciled" if result.ok else "NOT RECONCILED")
    return 0 if result.ok else 1


def cmd_prove(args: argparse.Namespace, settings: Settings) -> int:
    from hub.audit.oversight import prove_inclusion

    leaf, size = _proof_reference(" ".join(args.leaf))
    if size is not None and args.checkpoint is not None:
        raise ConfigError("give the checkpoint once: in the reference or with --checkpoint")
    store = app_from_settings(settings, read_only=True).store
    proof = prove_inclusion(store, leaf, args.checkpoint, size=size)
    print(json.dumps(proof.as_json(), indent=2))
    return 0


def cmd_pseudonym(args: argparse.Namespace, settings: Settings) -> int:
    """The keyed hash that stands for a publisher's id in leaves and rejections."""
    pseudonyms = app_from_settings(settings).pseudonyms(create=False)
    print(pseudonyms.event(args.source, args.id) if args.source else pseudonyms.of(args.id))
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from hub.audit.oversight import disclosure_report
    from hub.bootstrap import utc_now

    if args.correction_list and not args.person:
        raise ConfigError("--correction-list needs --person")
    app = app_from_settings(settings, read_only=True)
    report = disclosure_report(
        app.store,
        app.pseudonyms(create=False),
        app.directory,
        now=utc_now(),
        fmt=args.format,
        lang=args.lang,
        person=args.person,
        resolve=lambda ref: app.consent().person_id(ref),
        recipient=args.recipient,
        since=_date(args.since) if args.since else None,
        until=_date(args.until) if args.until else None,
        correction_years=args.years if args.correction_list else None,
    )
    text = report.text
    if args.output:
        output_file(args.output, "the report", "report.csv").write_text(text, encoding="utf-8")
        print(f"wrote {report.rows} rows to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


# What a report prints in its proof column, in English or French: "leaf 41 @ checkpoint 95"
# (95 is the checkpoint's tree size), "leaf 41 (not yet signed)", or just "41".
_REFERENCE = re.compile(
    r"^(?:leaf|feuille)?\s*(\d+)\s*"
    r"(?:@\s*(?:checkpoint|point de contrôle)\s*(\d+)|\((?:not yet signed|pas encore signée)\))?$",
    re.IGNORECASE,
)


def _proof_reference(text: str) -> tuple[int, int | None]:
    """(leaf index, checkpoint tree size or None) from what ``audit report`` prints."""
    match = _REFERENCE.match(text.strip())
    if match is None:
        raise ConfigError(
            f"{text!r} is not a leaf reference; give the leaf index (41) or the report's proof "
            "column as printed ('leaf 41 @ checkpoint 95')"
        )
    # "(not yet signed)" when the report ran: the newest checkpoint may cover it by now.
    return int(match[1]), int(match[2]) if match[2] else None


def _date(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not a date; use YYYY-MM-DD or ISO 8601") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def register(commands: Commands) -> None:
    audit = group(commands, "audit", "the signed audit log: verify, reconcile, report")

    p = command(
        audit,
        "keygen",
        cmd_keygen,
        "create the Ed25519 signing key (and the pseudonym key, if missing)",
    )
    p.add_argument("--path", help="where to write it (default: TELLONCE_AUDIT__SIGNING_KEY)")
    p.add_argument(
        "--pseudonym",
        action="store_true",
        help="create only the pseudonym key (TELLONCE_AUDIT__PSEUDONYM_KEY)",
    )
    command(audit, "public-key", cmd_public_key, "print the public key to publish")
    command(audit, "checkpoint", cmd_checkpoint, "sign a checkpoint of the log now")
    p = command(audit, "export", cmd_export, "write the signed log to a bundle file")
    p.add_argument("bundle", help="output file (JSON Lines)")
    p = command(audit, "verify", cmd_verify, "verify a bundle, or the live store, offline")
    p.add_argument("bundle", nargs="?", help="bundle file; default: the live store")
    p.add_argument("--public-key", metavar="PEM", help="the hub's published public key to trust")
    json_option(p)
    json_option(
        command(
            audit, "reconcile", cmd_reconcile, "check leaf counts against the facts in the store"
        )
    )
    p = command(
        audit,
        "prove",
        cmd_prove,
        "print an inclusion proof for one leaf",
        description="Print the RFC 9162 inclusion proof of one audit leaf in a signed "
        "checkpoint. Give the leaf index, or paste the proof column of 'tellonce audit report' "
        "as printed: 'leaf 41 @ checkpoint 95' proves leaf 41 in the checkpoint of tree size 95.",
    )
    p.add_argument(
        "leaf",
        nargs="+",
        metavar="LEAF",
        help="leaf index (41) or the report's proof reference ('leaf 41 @ checkpoint 95')",
    )
    p.add_argument(
        "--checkpoint",
        type=int,
        metavar="NUMBER",
        help="checkpoint number, as 'audit checkpoint' prints it (default: the newest)",
    )
    p = command(
        audit,
        "pseudonym",
        cmd_pseudonym,
        "the keyed hash that stands for a publisher's ce_id in the log",
    )
    p.add_argument("id", help="the ce_id as the publisher sent it")
    p.add_argument("--source", help="the publishing program: print the event as leaves name it")
    p = command(audit, "report", cmd_report, "disclosures and withholdings, with proof references")
    p.add_argument("--person", help="person id or PROGRAM:LOCAL_ID (any of their local ids)")
    p.add_argument("--recipient", help="recipient program id")
    p.add_argument("--since", help="from this date (YYYY-MM-DD, inclusive)")
    p.add_argument("--until", help="up to this date (exclusive)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--lang", choices=("en", "fr"), default="en", help="headings language")
    p.add_argument("--output", help="write to this file instead of standard output")
    p.add_argument(
        "--correction-list",
        action="store_true",
        help="list every program that received the person's data (Privacy Act corrections)",
    )
    p.add_argument("--years", type=float, default=2.0, help="window of --correction-list")
