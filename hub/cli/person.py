"""``tellonce person erase``: erase a person, as the erasure policy says (``hub.privacy.erasure``).

Exit codes as elsewhere: 0 erased; 2 the request was wrong or refused (nobody under that id,
erased already, notices still without a receipt and no ``--force``). Output names the person
by the hub's random id and counts, never a local id.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from hub.cli.common import app_from_settings, command, group, json_option

if TYPE_CHECKING:
    from hub.cli.common import Commands
    from hub.config.settings import Settings

POLICY = (
    "Erase a person: destroy their data key, so that nothing personal of theirs held by the hub "
    "(sealed local ids, queued notices) opens any more, delete their queued messages, and "
    "write one 'erased' audit leaf (the hub's random person id and counts, nothing personal). "
    "A person with notices that no delivery receipt settled yet is not erased (exit 2, naming "
    "how many): wait for the connectors' receipts ('tellonce connector status'), or give "
    "--force to record those notices as dead letters first (a dead_lettered delivery and leaf "
    "each, sink tellonce-erasure) and erase at once. What stays, on purpose: the blind index of "
    "each local id, so a later event about the person is withheld with reason 'erased' rather "
    "than taken for a stranger's; consent revisions and audit leaves, which name the person "
    "only by the random id and prove what was disclosed before. 'audit verify' and 'audit "
    "reconcile' still pass; 'audit report --person' marks the person's disclosures erased."
)


def cmd_person_erase(args: argparse.Namespace, settings: Settings) -> int:
    erasure = (
        app_from_settings(settings)
        .erasure()
        .erase(args.person, force=args.force, channel=args.channel)
    )
    if args.json:
        print(
            json.dumps(
                {
                    "person": erasure.person_id,
                    "erased_at": erasure.erased_at.isoformat(),
                    "links": erasure.links,
                    "dead_lettered": list(erasure.dead_lettered),
                    "leaf": erasure.leaf,
                },
                indent=2,
            )
        )
        return 0
    links = erasure.links
    print(
        f"erased person {erasure.person_id}: data key destroyed, "
        f"{links} identity link{'s' * (links != 1)} no longer open"
    )
    if erasure.dead_lettered:
        count = len(erasure.dead_lettered)
        print(
            f"{count} undelivered notice{'s' * (count != 1)} recorded as dead letters "
            "(sink tellonce-erasure):"
        )
        for notification in erasure.dead_lettered:
            print(f"  {notification}")
    print(f"audit leaf {erasure.leaf} records the erasure; later events are withheld as erased")
    return 0


def register(commands: Commands) -> None:
    person = group(commands, "person", "erase a person (crypto-shredding, audit kept)")
    erase = command(
        person,
        "erase",
        cmd_person_erase,
        "erase a person: destroy their data key, keep the audit verifiable",
        description=POLICY,
        epilog="Exit codes: 0 erased; 2 refused or wrong (no such person, erased already, "
        "undelivered notices without --force). An erasure request from a consent portal "
        "(ErasureRequested on tellonce.consent.v1) is applied as with --force.",
    )
    erase.add_argument(
        "person", metavar="PROGRAM:LOCAL_ID|PERSON_ID", help="any local id of the person, or the id"
    )
    erase.add_argument(
        "--force",
        action="store_true",
        help="dead-letter the person's notices that no receipt settled yet, then erase",
    )
    erase.add_argument(
        "--channel",
        default="counter",
        help="how the client asked (counter, phone, mail...); kept in the audit leaf",
    )
    json_option(erase)
