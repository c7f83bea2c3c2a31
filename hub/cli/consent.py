"""``tellonce consent``: identity links, consents, their history, notices and receipts."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from hub.cli.common import Handler, app_from_settings, command, evidence_from, group, json_option
from hub.cli.notices import cmd_consent_notices, cmd_consent_verify_receipt
from hub.errors import ConfigError

if TYPE_CHECKING:
    from consent.model import ConsentRevision
    from hub.cli.common import Commands
    from hub.config.settings import Settings

# What show and history say of an erased person (exit 0: the answer to the question asked).
ERASED_NOTE = (
    "erased: this person was erased ('tellonce person erase'); their local ids no longer open, "
    "their consents cannot change and later events about them are withheld; the consent "
    "revisions below stay as the record of what past disclosures relied on"
)

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


def cmd_consent_link(args: argparse.Namespace, settings: Settings) -> int:
    app = app_from_settings(settings)
    person = app.consent().link(args.program, args.local_id, evidence_from(args), to=args.to)
    print(person)
    return 0


def _cmd_consent_state(state_name: str) -> Handler:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        from consent.model import DEFAULT_LEGAL_BASIS, DEFAULT_PURPOSE, ConsentState, ConsentTerms

        app = app_from_settings(settings)
        service = app.consent()
        state = ConsentState(state_name)
        evidence = evidence_from(args)
        terms = None
        if state is ConsentState.GIVEN:
            evidence = service.notices.shown(evidence, args.notice)
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


def cmd_consent_show(args: argparse.Namespace, settings: Settings) -> int:
    app = app_from_settings(settings, read_only=True)
    view = app.consent().show(args.person)
    if args.json:
        print(
            json.dumps(
                {
                    "person": view.person_id,
                    "erased": view.erased,
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
    if view.erased:
        print(ERASED_NOTE)
    print("identity links:")
    if view.erased:
        print("  none that open: the local ids were destroyed with the person's data key")
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


def _revision_json(revision: ConsentRevision, now: datetime) -> dict[str, object]:
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


def _expiry_note(revision: ConsentRevision) -> str:
    if revision.state.value != "given":
        return "ends the consent"
    expires = revision.terms.expires_at
    return f"expires {expires.isoformat()}" if expires else "no expiry"


def cmd_consent_history(args: argparse.Namespace, settings: Settings) -> int:
    """Every revision of every consent of a person; exit 1 when a chain does not verify."""
    from hub.consents.history import consent_history

    history = consent_history(app_from_settings(settings, read_only=True).consent(), args.person)
    now = history.as_of
    if args.json:
        consents = [
            {
                "recipient": chain.recipient,
                "event_type": chain.event_type,
                "verified": chain.verified,
                "broken_at_seq": chain.broken_at_seq,
                "state_now": chain.state_now.value,
                "revisions": [_revision_json(r, now) for r in chain.revisions],
            }
            for chain in history.chains
        ]
        print(
            json.dumps(
                {
                    "person": history.person_id,
                    "erased": history.erased,
                    "as_of": now.isoformat(),
                    "verified": history.verified,
                    "consents": consents,
                },
                indent=2,
            )
        )
        return 0 if history.verified else 1
    print(
        f"person {history.person_id}: consent history, oldest first, as of {now:%Y-%m-%d %H:%M %Z}"
    )
    if history.erased:
        print(ERASED_NOTE)
    if not history.chains:
        print("  no consent recorded")
    for chain in history.chains:
        verdict = (
            "chain verifies"
            if chain.verified
            else f"CHAIN BROKEN at revision {chain.broken_at_seq}: a revision was altered, "
            "inserted or removed"
        )
        print(f"\n{chain.recipient} / {chain.event_type}: {chain.state_now.value} now; {verdict}")
        for r in chain.revisions:
            evidence, terms = r.evidence, r.terms
            state_now = r.state_at(now)
            now_note = f" (now {state_now.value})" if state_now != r.state else ""
            notice = (
                f"notice {evidence.notice_version} {(evidence.notice_hash or '')[:12]}"
                if evidence.notice_version
                else "no notice recorded"
            )
            print(f"  {r.seq:>3} {r.state.value}{now_note} at {evidence.recorded_at.isoformat()}")
            print(f"      via {evidence.channel} by {evidence.actor}")
            print(f"      purpose: {terms.purpose}")
            print(f"      legal basis: {terms.legal_basis}")
            print(f"      {notice}; {_expiry_note(r)}")
            print(f"      hash {r.hash[:16]}  prev {r.prev_hash[:16]}")
    return 0 if history.verified else 1


def _person(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("person", help="person id or PROGRAM:LOCAL_ID")


def _evidence(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--channel", default="counter", help="how it was given (counter, online...)"
    )
    parser.add_argument("--actor", default="cli", help="who recorded it (staff id or 'client')")


def register(commands: Commands) -> None:
    consent = group(commands, "consent", "identity links, consents, notices and receipts")

    link = command(
        consent, "link", cmd_consent_link, "record that PROGRAM knows a client as LOCAL_ID"
    )
    link.add_argument("program")
    link.add_argument("local_id")
    link.add_argument("--to", metavar="PERSON", help="existing person (id or PROGRAM:LOCAL_ID)")
    _evidence(link)

    for action, state in (("grant", "given"), ("withdraw", "withdrawn")):
        p = command(
            consent,
            action,
            _cmd_consent_state(state),
            f"{action} consent to tell RECIPIENT of EVENT_TYPEs",
        )
        _person(p)
        p.add_argument("recipient", help="recipient program id")
        p.add_argument("event_types", nargs="+", metavar="EVENT_TYPE")
        _evidence(p)
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
        p.add_argument("--receipt", metavar="FILE", help="write the signed consent receipt here")
        p.add_argument(
            "--print-receipt", action="store_true", help="print the signed consent receipt"
        )

    show = command(consent, "show", cmd_consent_show, "links and consent history of a person")
    _person(show)
    json_option(show)
    history = command(
        consent,
        "history",
        cmd_consent_history,
        "every consent revision of a person, with terms, evidence and hashes",
    )
    _person(history)
    json_option(history)

    notices = command(
        consent, "notices", cmd_consent_notices, "privacy notice versions and their hashes"
    )
    notices.add_argument("version", nargs="?", help="show the texts of this version")
    json_option(notices)
    verify = command(
        consent,
        "verify-receipt",
        cmd_consent_verify_receipt,
        "check a consent receipt: authentic? still in force? (exit 0 / 1 / 2)",
    )
    verify.add_argument("receipt", metavar="TOKEN_OR_FILE")
    verify.add_argument(
        "--public-key",
        metavar="PEM",
        help="the hub's public key file (default: this hub's signing key)",
    )
    json_option(verify)
