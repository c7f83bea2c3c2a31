"""``tellonce consent``: identity links, consents, their history, notices and receipts."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hub.cli.common import Handler, app_from_settings, evidence_from
from hub.cli.notices import cmd_consent_notices, cmd_consent_verify_receipt
from hub.errors import ConfigError

_DURATION = re.compile(r"^(\d{1,5})([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(text: str, now: datetime) -> datetime:
    """``--expires``: a duration (12h, 30d, 52w) from now, or an ISO 8601 date or time.

    A date alone means 00:00 UTC that day; a time must carry its zone. It must be in the future.
    """
    match = _DURATION.match(text.strip())
    if match:
        expires = now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    else:
        try:
            expires = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ConfigError(
                f"--expires {text!r} is neither a duration (12h, 30d, 52w) nor an ISO 8601 "
                "date or time (2026-01-31 or 2026-01-31T17:00-05:00)"
            ) from None
        if len(text.strip()) == 10:  # a date alone
            expires = expires.replace(tzinfo=UTC)
        elif expires.tzinfo is None:
            raise ConfigError("--expires needs a time zone, e.g. 2026-01-31T17:00-05:00 or ...Z")
    if expires <= now:
        raise ConfigError("--expires must be in the future; give a later date or a duration")
    return expires


# -- links and changes ---------------------------------------------------------------------------


def cmd_consent_link(args: argparse.Namespace) -> int:
    app = app_from_settings()
    person = app.consent().link(args.program, args.local_id, evidence_from(args), to=args.to)
    print(person)
    return 0


def _cmd_consent_state(state_name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        from consent.model import DEFAULT_LEGAL_BASIS, DEFAULT_PURPOSE, ConsentState, ConsentTerms

        app = app_from_settings()
        service = app.consent()
        state = ConsentState(state_name)
        evidence = evidence_from(args)
        terms = None
        if state is ConsentState.GIVEN:
            notice = service.notices.get(args.notice) if args.notice else service.notices.latest()
            evidence = dataclasses.replace(
                evidence, notice_version=notice.version, notice_hash=notice.sha256
            )
            terms = ConsentTerms(
                purpose=args.purpose or DEFAULT_PURPOSE,
                legal_basis=args.legal_basis or DEFAULT_LEGAL_BASIS,
                expires_at=(
                    parse_expiry(args.expires, evidence.recorded_at) if args.expires else None
                ),
            )
        want_receipt = bool(args.receipt or args.print_receipt)
        if args.receipt and not Path(args.receipt).resolve().parent.is_dir():
            raise ConfigError(
                f"--receipt {args.receipt}: its folder does not exist; create it or choose "
                "another path (nothing was recorded)"
            )
        change = service.change(
            args.person,
            args.recipient,
            args.event_types,
            state,
            evidence,
            terms,
            receipt=want_receipt,
        )
        for revision in change.revisions:
            expires = revision.terms.expires_at
            until = (
                f" until {expires:%Y-%m-%d %H:%M %Z}"
                if state is ConsentState.GIVEN and expires
                else ""
            )
            print(
                f"{revision.state.value:9} {revision.recipient} {revision.event_type} "
                f"revision {revision.seq} {revision.hash[:16]}{until}"
            )
        if change.receipt is None:
            return 0
        if args.receipt:
            try:
                Path(args.receipt).write_text(change.receipt + "\n", encoding="utf-8")
            except OSError as exc:
                # The change is recorded: hand the receipt over rather than lose it.
                print(change.receipt)
                print(
                    f"tellonce: the consent was recorded, but the receipt could not be written "
                    f"to {args.receipt} ({exc.strerror}); it is printed above: save it",
                    file=sys.stderr,
                )
                return 1
            print(f"receipt written to {args.receipt}")
        if args.print_receipt:
            print(change.receipt)
        return 0

    return handler


# -- reads ---------------------------------------------------------------------------------------


def cmd_consent_show(args: argparse.Namespace) -> int:
    app = app_from_settings(read_only=True)
    view = app.consent().show(args.person)
    if args.json:
        print(
            json.dumps(
                {
                    "person": view.person_id,
                    "links": view.links,
                    "consents": [
                        {
                            "recipient": recipient,
                            "event_type": event_type,
                            "state": revisions[-1].state.value,
                            "revisions": [
                                {
                                    "seq": r.seq,
                                    "state": r.state.value,
                                    "channel": r.evidence.channel,
                                    "actor": r.evidence.actor,
                                    "recorded_at": r.evidence.recorded_at.isoformat(),
                                    "hash": r.hash,
                                }
                                for r in revisions
                            ],
                        }
                        for (recipient, event_type), revisions in sorted(view.history.items())
                    ],
                },
                indent=2,
            )
        )
        return 0
    print(f"person {view.person_id}")
    print("identity links:")
    for program, local_id in sorted(view.links.items()):
        print(f"  {program:26} {local_id}")
    print("consents (latest state; history oldest first):")
    if not view.history:
        print("  none recorded")
    for (recipient, event_type), revisions in sorted(view.history.items()):
        steps = ", ".join(
            f"{r.state.value} {r.evidence.recorded_at:%Y-%m-%d %H:%M} via {r.evidence.channel}"
            for r in revisions
        )
        print(f"  {recipient:26} {event_type:15} {revisions[-1].state.value:9} [{steps}]")
    return 0


def _revision_json(revision: Any, now: datetime) -> dict[str, Any]:
    evidence, terms = revision.evidence, revision.terms
    return {
        "seq": revision.seq,
        "state": revision.state.value,
        "state_now": revision.state_at(now).value,
        "recorded_at": evidence.recorded_at.isoformat(),
        "channel": evidence.channel,
        "actor": evidence.actor,
        "purpose": terms.purpose,
        "legal_basis": terms.legal_basis,
        "notice_version": evidence.notice_version,
        "notice_hash": evidence.notice_hash,
        "expires_at": terms.expires_at.isoformat() if terms.expires_at else None,
        "hash": revision.hash,
        "prev_hash": revision.prev_hash,
    }


def _expiry_note(revision: dict[str, Any]) -> str:
    if revision["state"] != "given":
        return "ends the consent"
    return f"expires {revision['expires_at']}" if revision["expires_at"] else "no expiry"


def cmd_consent_history(args: argparse.Namespace) -> int:
    """Every revision of every consent of a person; exit 1 when a chain does not verify."""
    from consent.rules import verify_history

    app = app_from_settings(read_only=True)
    service = app.consent()
    view = service.show(args.person)
    now = service.now()
    chains = []
    for (recipient, event_type), revisions in sorted(view.history.items()):
        broken = verify_history(revisions)
        chains.append(
            {
                "recipient": recipient,
                "event_type": event_type,
                "verified": broken is None,
                "broken_at_seq": revisions[broken].seq if broken is not None else None,
                "state_now": revisions[-1].state_at(now).value,
                "revisions": [_revision_json(r, now) for r in revisions],
            }
        )
    all_verified = all(c["verified"] for c in chains)
    if args.json:
        print(
            json.dumps(
                {
                    "person": view.person_id,
                    "as_of": now.isoformat(),
                    "verified": all_verified,
                    "consents": chains,
                },
                indent=2,
            )
        )
        return 0 if all_verified else 1
    print(f"person {view.person_id}: consent history, oldest first, as of {now:%Y-%m-%d %H:%M %Z}")
    if not chains:
        print("  no consent recorded")
    for chain in chains:
        verdict = (
            "chain verifies"
            if chain["verified"]
            else f"CHAIN BROKEN at revision {chain['broken_at_seq']}: a revision was altered, "
            "inserted or removed"
        )
        print(
            f"\n{chain['recipient']} / {chain['event_type']}: {chain['state_now']} now; {verdict}"
        )
        for r in chain["revisions"]:
            now_note = f" (now {r['state_now']})" if r["state_now"] != r["state"] else ""
            notice = (
                f"notice {r['notice_version']} {r['notice_hash'][:12]}"
                if r["notice_version"]
                else "no notice recorded"
            )
            expires = _expiry_note(r)
            print(f"  {r['seq']:>3} {r['state']}{now_note} at {r['recorded_at']}")
            print(f"      via {r['channel']} by {r['actor']}")
            print(f"      purpose: {r['purpose']}")
            print(f"      legal basis: {r['legal_basis']}")
            print(f"      {notice}; {expires}")
            print(f"      hash {r['hash'][:16]}  prev {r['prev_hash'][:16]}")
    return 0 if all_verified else 1


def register(sub: Any) -> None:
    consent = sub.add_parser("consent", help="identity links, consents, notices and receipts")
    ksub = consent.add_subparsers(metavar="ACTION")

    def evidence_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--channel", default="counter", help="how it was given (counter, online...)")
        p.add_argument("--actor", default="cli", help="who recorded it (staff id or 'client')")

    def receipt_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--receipt", metavar="FILE", help="write the signed consent receipt here")
        p.add_argument(
            "--print-receipt", action="store_true", help="print the signed consent receipt"
        )

    link = ksub.add_parser("link", help="record that PROGRAM knows a client as LOCAL_ID")
    link.add_argument("program")
    link.add_argument("local_id")
    link.add_argument("--to", metavar="PERSON", help="existing person (id or PROGRAM:LOCAL_ID)")
    evidence_args(link)
    link.set_defaults(handler=cmd_consent_link)

    for action, state in (("grant", "given"), ("withdraw", "withdrawn")):
        p = ksub.add_parser(action, help=f"{action} consent to tell RECIPIENT of EVENT_TYPEs")
        p.add_argument("person", help="person id or PROGRAM:LOCAL_ID")
        p.add_argument("recipient", help="recipient program id")
        p.add_argument("event_types", nargs="+", metavar="EVENT_TYPE")
        evidence_args(p)
        if state == "given":
            p.add_argument("--purpose", help="why the data is shared (default: tell-us-once)")
            p.add_argument("--legal-basis", help="legal basis (default: consent, Privacy Act)")
            p.add_argument(
                "--notice",
                metavar="VERSION",
                help="privacy notice version shown to the client (default: the latest; "
                "see 'tellonce consent notices')",
            )
            p.add_argument(
                "--expires",
                metavar="WHEN",
                help="end of the consent: a duration (30d, 52w, 12h) or ISO 8601 date/time",
            )
        receipt_args(p)
        p.set_defaults(handler=_cmd_consent_state(state))

    show = ksub.add_parser("show", help="links and consent history of a person")
    show.add_argument("person", help="person id or PROGRAM:LOCAL_ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_consent_show)

    history = ksub.add_parser(
        "history", help="every consent revision of a person, with terms, evidence and hashes"
    )
    history.add_argument("person", help="person id or PROGRAM:LOCAL_ID")
    history.add_argument("--json", action="store_true")
    history.set_defaults(handler=cmd_consent_history)

    notices = ksub.add_parser("notices", help="privacy notice versions and their hashes")
    notices.add_argument("version", nargs="?", help="show the texts of this version")
    notices.add_argument("--json", action="store_true")
    notices.set_defaults(handler=cmd_consent_notices)

    verify = ksub.add_parser(
        "verify-receipt",
        help="check a consent receipt: authentic? still in force? (exit 0 / 1 / 2)",
    )
    verify.add_argument("receipt", metavar="TOKEN_OR_FILE")
    verify.add_argument(
        "--public-key",
        metavar="PEM",
        help="the hub's public key file (default: this hub's signing key)",
    )
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=cmd_consent_verify_receipt)
