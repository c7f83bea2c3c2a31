"""Records the test tiers build over and over: a life event's payload, a consent grant, and a
signed audit log. Test-local; the port fakes outside adapters may reuse are in
``hub.testing.fakes``.

Values are synthetic. A test that asserts on one passes it in rather than relying on a default.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from hub.audit.log import LEAF_KINDS, AuditLog, Notary
from hub.consents.notices import load_notices
from hub.ports import Store


def address(
    *lines: str,
    municipality: str = "Vancouver",
    province: str = "BC",
    postal_code: str = "V5K 0A1",
) -> dict[str, Any]:
    """An Address record; ``3 Oak St`` when no lines are given."""
    return {
        "lines": list(lines or ("3 Oak St",)),
        "municipality": municipality,
        "province": province,
        "postal_code": postal_code,
    }


def address_changed(subject: str, effective_date: date, **changes: Any) -> dict[str, Any]:
    """An AddressChanged payload: ``subject`` moved to ``address()``, with no mailing address;
    ``changes`` replace fields."""
    return {
        "subject_id": subject,
        "effective_date": effective_date,
        "new_address": address(),
        "mailing_address": None,
    } | changes


def consent_grant(
    subject: str, recipient: str, recorded_at: datetime, **changes: Any
) -> dict[str, Any]:
    """A ConsentChanged record: ``subject`` lets the hub tell ``recipient`` of address changes,
    online, under the latest shipped notice; ``changes`` replace fields."""
    notice = load_notices().latest()
    return {
        "subject_id": subject,
        "recipient": recipient,
        "event_types": ["AddressChanged"],
        "state": "GIVEN",
        "purpose": "tell-us-once",
        "legal_basis": "consent of the individual",
        "notice_version": notice.version,
        "notice_hash": notice.sha256,
        "channel": "online",
        "actor": "client",
        "recorded_at": recorded_at,
        "expires_at": None,
    } | changes


def write_signed_leaves(
    store: Store, notary: Notary, start: datetime, *, leaves: int, seed: int
) -> datetime:
    """Append ``leaves`` audit leaves of random kinds, one second apart from ``start``, in
    batches of 1 to 9 (seeded); checkpoint when ``notary``'s policy says and once more at the
    end, so every leaf is signed. Returns the time after the last leaf."""
    rng = random.Random(seed)
    at, written = start, 0
    while written < leaves:
        with store.transaction() as tx:
            log = AuditLog(tx.last_audit())
            for _ in range(min(rng.randint(1, 9), leaves - written)):
                data = {"event": f"bc-service-bc/evt-{written}", "recipient": "bc-msp"}
                log.append(rng.choice(LEAF_KINDS), data, at)
                written += 1
                at += timedelta(seconds=1)
            log.write(tx)
            notary.maybe_checkpoint(tx, at)
    with store.transaction() as tx:
        notary.maybe_checkpoint(tx, at, force=True)
    return at
