"""``tellonce consent notices`` and ``verify-receipt``: what a client was shown, what they hold.

Exit codes of verify-receipt: 0 authentic and in force; 1 authentic but no longer in force;
2 not authentic or not a receipt.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hub.cli.common import app_from_settings
from hub.errors import ConfigError

if TYPE_CHECKING:
    from hub.config.settings import Settings


def cmd_consent_notices(args: argparse.Namespace, settings: Settings) -> int:
    from hub.consents.notices import load_notices

    notices = load_notices()
    shown = [notices.get(args.version)] if args.version else list(notices.items)
    latest = notices.latest().version
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "version": n.version,
                        "effective": n.effective.isoformat() if n.effective else None,
                        "latest": n.version == latest,
                        "sha256": n.sha256,
                        **({"text_en": n.text_en, "text_fr": n.text_fr} if args.version else {}),
                    }
                    for n in shown
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return 0
    for n in shown:
        mark = " (latest: used by default)" if n.version == latest else ""
        print(f"{n.version:10} effective {n.effective or '-'}  sha256 {n.sha256}{mark}")
        if args.version:
            print(f"\n[en]\n{n.text_en}\n\n[fr]\n{n.text_fr}")
    return 0


# -- receipts ------------------------------------------------------------------------------------


_TOKEN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def _read_token(text: str) -> str:
    """The receipt itself, given inline or as the path of a file holding it."""
    if _TOKEN.match(text.strip()):
        return text.strip()
    try:
        return Path(text).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise ConfigError(
            f"{text!r} is neither a receipt file nor a receipt token (three dot-parts)"
        ) from None


def cmd_consent_verify_receipt(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 authentic and in force, 1 authentic but not in force, 2 not authentic."""
    from hub.adapters.jws import RECEIPT_TYPE, read_compact
    from hub.bootstrap import utc_now
    from hub.consents.receipts import check_receipt
    from hub.errors import VerificationError

    token = _read_token(args.receipt)
    app = app_from_settings(settings, read_only=True)
    if args.public_key:
        try:
            pem = Path(args.public_key).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read the public key {args.public_key} ({exc.strerror}); give the PEM "
                "that 'tellonce audit public-key' prints"
            ) from None
    else:
        pem = app.signer().public_key_pem()
    try:
        check = check_receipt(
            token,
            lambda text: read_compact(text, pem, typ=RECEIPT_TYPE),
            lambda hashes: app.consent().status_of(hashes),
            utc_now,
        )
    except VerificationError as exc:
        if args.json:
            print(json.dumps({"authentic": False, "in_force": False, "detail": str(exc)}))
        else:
            print(f"tellonce: NOT AUTHENTIC: {exc}", file=sys.stderr)
        return 2
    claims, view, status, now = check.claims, check.view, check.status, check.as_of
    consent = claims["consent"]
    if args.json:
        print(
            json.dumps(
                {
                    "authentic": True,
                    "key_id": check.key_id,
                    "in_force": status.in_force,
                    "detail": status.detail,
                    "event_types": status.per_event_type,
                    "as_of": now.isoformat(),
                    "receipt": claims,
                },
                indent=2,
            )
        )
    else:
        issued = datetime.fromtimestamp(claims["iat"], UTC) if "iat" in claims else None
        print(f"authentic: signed by {check.key_id} (issuer {claims.get('iss')})")
        print(
            f"receipt {str(claims.get('jti'))[:16]} issued {issued:%Y-%m-%d %H:%M %Z}"
            if issued
            else f"receipt {str(claims.get('jti'))[:16]}"
        )
        print(
            f"records: consent {consent.get('state')} for {consent.get('recipient_name')} "
            f"({view.recipient}) to be told of {', '.join(r.event_type for r in view.revisions)}"
            f"; recorded {consent.get('recorded_at')} via {consent.get('channel')}"
        )
        print(("IN FORCE: " if status.in_force else "NOT IN FORCE: ") + status.detail)
    return 0 if status.in_force else 1
