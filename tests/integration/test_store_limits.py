"""What the hub stores from a record fits the database, and a record the database still refuses
stops nothing.

Every value the hub writes from a life event, a consent change or a receipt is bounded when the
record is read: at its column's limit it is stored, one character beyond it is rejected with a
code naming the field (never ``unstorable``, never a stalled batch). Then the safety net: rules
the hub's checks cannot know (a CHECK constraint, a column narrowed by hand on PostgreSQL) make
single records unstorable, and the records behind them still get through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import text

from hub.audit.oversight import reconcile
from hub.model import notification_id
from hub.processing.consent_events import consent_message
from hub.processing.receipts import RECEIPT_SCHEMA
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.publishing import event_message
from hub.wire.topics import CONSENT_TOPIC, LIFEEVENTS_TOPIC, RECEIPTS_TOPIC, REJECTED_TOPIC
from tests.samples import consent_grant

from .harness import PUBLISHER, Harness, Record, address_payload, send_all, signed_record

pytestmark = pytest.mark.integration

RECIPIENT, PORTAL = "cra-individual", "canada-ca-portal"
SUBJECT, LOCAL_ID, PORTAL_ID = "SBC-LIMITS-1", "CRA-LIMITS-1", "GCKEY-LIMITS-1"
FROM_CONNECTOR = f"tellonce-connector/{RECIPIENT}"


@dataclass(frozen=True)
class Case:
    """One crafted record: what it holds, and the code it gets (None: it is stored)."""

    name: str
    code: str | None
    build: Callable[[World], Record]


@dataclass
class World:
    harness: Harness
    serial: int = 0

    def __post_init__(self) -> None:
        # One time for every grant, just after the client's own consent (none may be older than
        # the one before), in whole milliseconds as Avro keeps it.
        at = self.harness.now + timedelta(seconds=1)
        self.recorded_at = at.replace(microsecond=at.microsecond // 1000 * 1000)

    @property
    def now(self) -> datetime:
        return self.harness.now

    def next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    def event(self, *, ce_id: str | None = None, source: str = PUBLISHER, **payload: Any) -> Record:
        """An AddressChanged as the publisher sends it, ``payload`` fields replaced."""
        body = address_payload(SUBJECT, effective_date=date(2025, 1, 1)) | payload
        key, value, headers, _ = event_message(
            self.harness.app.codec,
            source=PUBLISHER,
            event_type="AddressChanged",
            payload=body,
            at=self.now - timedelta(minutes=1),
            event_id=ce_id or self.next_id("event"),
        )
        headers = [(k, source.encode() if k == "ce_source" else v) for k, v in headers]
        return signed_record((key, value, headers))

    def grant(self, *, ce_id: str | None = None, subject: str = PORTAL_ID, **fields: Any) -> Record:
        """A consent grant from the portal, ``fields`` replaced; ``ce_subject`` is left out
        when the subject is longer than a header may be (the key alone names the client)."""
        record = consent_grant(subject, RECIPIENT, self.recorded_at) | fields
        key, value, headers, _ = consent_message(
            self.harness.app.codec,
            source=PORTAL,
            record=record,
            at=self.now,
            event_id=ce_id or self.next_id("consent"),
        )
        if len(subject) > 256:
            headers = [(k, v) for k, v in headers if k != "ce_subject"]
        return signed_record((key, value, headers))

    def receipt(self, notification: str, **fields: Any) -> Record:
        """A DELIVERED receipt from the recipient's connector, ``fields`` replaced."""
        record = {
            "notification_id": notification,
            "recipient": RECIPIENT,
            "event_id": "e",
            "status": "DELIVERED",
            "sink": "webhook",
            "detail": None,
            "recorded_at": self.now,
        } | fields
        value = self.harness.app.codec.encode(RECEIPT_SCHEMA, record)
        headers = cloudevent_headers(
            self.next_id("r"), RECEIPT_SCHEMA, self.now, source=FROM_CONNECTOR
        )
        return self.harness.signed_receipt((RECIPIENT.encode(), value, headers))


LONG = 300  # past every column a value on the wire could reach
# fmt: off
LIFE_EVENTS = [
    Case("ce_id of 256 characters (events.event_id)", None,
         lambda w: w.event(ce_id="e" * 256)),
    Case("ce_id of 257 characters", "bad_header", lambda w: w.event(ce_id="e" * 257)),
    Case("ce_source of 256 characters", "unknown_source", lambda w: w.event(source="s" * 256)),
    Case("ce_source of 257 characters", "bad_header", lambda w: w.event(source="s" * 257)),
    Case("key and subject_id of 64 characters", None, lambda w: w.event(subject_id="S" * 64)),
    Case("key and subject_id of 65 characters", "invalid_event",
         lambda w: w.event(subject_id="S" * 65)),
    Case("address line of 200 characters", None,
         lambda w: w.event(new_address=address_with(lines=["l" * 200]))),
    Case("address line of 201 characters", "invalid_event",
         lambda w: w.event(new_address=address_with(lines=["l" * 201]))),
]
CONSENTS = [
    Case("ce_id of 256 characters (consent_events.event_id)", None,
         lambda w: w.grant(ce_id="c" * 256)),
    Case("ce_id of 257 characters", "bad_header", lambda w: w.grant(ce_id="c" * 257)),
    Case("channel of 32 characters", None, lambda w: w.grant(channel="c" * 32)),
    Case("channel of 33 characters", "invalid_event", lambda w: w.grant(channel="c" * 33)),
    Case("actor of 64 characters", None, lambda w: w.grant(actor="a" * 64)),
    Case("actor of 65 characters", "invalid_event", lambda w: w.grant(actor="a" * 65)),
    Case("purpose of 256 characters", None, lambda w: w.grant(purpose="p" * 256)),
    Case("purpose of 257 characters", "invalid_event", lambda w: w.grant(purpose="p" * 257)),
    Case("legal_basis of 256 characters", None, lambda w: w.grant(legal_basis="b" * 256)),
    Case("legal_basis of 257 characters", "invalid_event",
         lambda w: w.grant(legal_basis="b" * 257)),
    Case("notice_version of 33 characters", "unknown_notice",
         lambda w: w.grant(notice_version="v" * 33)),
    Case("notice_hash of 65 characters", "notice_mismatch",
         lambda w: w.grant(notice_hash="f" * 65)),
    Case("recipient of 300 characters", "unknown_recipient",
         lambda w: w.grant(recipient="r" * LONG)),
    Case("event type of 300 characters", "not_subscribed",
         lambda w: w.grant(event_types=["T" * LONG])),
    Case("key and subject_id of 300 characters", "unknown_person",
         lambda w: w.grant(subject="G" * LONG)),
]
# fmt: on


def receipt_cases(notifications: list[str]) -> list[Case]:
    """Receipts at and past the limits; each stored one answers a notification of its own."""
    first, second = notifications[:2]
    # fmt: off
    return [
        Case("sink of 64 characters (deliveries.sink)", None,
             lambda w: w.receipt(first, sink="s" * 64)),
        Case("sink of 65 characters", "invalid_receipt",
             lambda w: w.receipt(second, sink="s" * 65)),
        Case("detail of 10,000 characters (deliveries.detail)", None,
             lambda w: w.receipt(second, detail="d" * 10_000)),
        Case("notification_id of 300 characters", "unknown_notification",
             lambda w: w.receipt("n" * LONG)),
        Case("recipient of 300 characters", "unknown_notification",
             lambda w: w.receipt(first, recipient="r" * LONG)),
    ]
    # fmt: on


def address_with(**fields: Any) -> dict[str, Any]:
    return {
        "lines": ["1 Main St"],
        "municipality": "Victoria",
        "province": "BC",
        "postal_code": "V8W 1A1",
    } | fields


def interleaved(cases: list[Case], world: World, good: Callable[[], Record]) -> list[Record]:
    """Each crafted record followed by a good one."""
    return [record for case in cases for record in (case.build(world), good())]


def codes_by_offset(harness: Harness, topic: str) -> dict[int, str]:
    return {r.offset: r.reason for r in harness.app.store.rejections() if r.topic == topic}


def expected_codes(cases: list[Case], offsets: list[int]) -> dict[int, str]:
    """The code of each crafted record (they sit at every other offset, goods between)."""
    return {
        offset: case.code
        for case, offset in zip(cases, offsets[::2], strict=True)
        if case.code is not None
    }


def test_values_at_each_columns_limit_are_stored_and_one_beyond_is_rejected_by_field(
    harness: Harness,
) -> None:
    """Life events, consent changes and receipts with each stored field at its column's limit
    are stored; one character beyond, each is rejected with the code of that field (none is
    unstorable); the good record after each one goes through; the audit log reconciles."""
    app = harness.app
    harness.client({PUBLISHER: SUBJECT, RECIPIENT: LOCAL_ID, PORTAL: PORTAL_ID}, [RECIPIENT])
    world = World(harness)
    good_ids: list[str] = []

    def good_event() -> Record:
        good_ids.append(world.next_id("good"))
        return world.event(ce_id=good_ids[-1])

    life = send_all(harness, LIFEEVENTS_TOPIC, interleaved(LIFE_EVENTS, world, good_event))
    consent = send_all(harness, CONSENT_TOPIC, interleaved(CONSENTS, world, world.grant))
    harness.run_worker_until(
        lambda: (
            harness.consumed(LIFEEVENTS_TOPIC) == len(life)
            and harness.consumed(CONSENT_TOPIC) == len(consent)
        )
    )

    notifications = [notification_id(PUBLISHER, e, RECIPIENT) for e in good_ids]
    spare = iter(notifications[2:])
    receipts = receipt_cases(notifications)
    receipt_offsets = send_all(
        harness,
        RECEIPTS_TOPIC,
        interleaved(receipts, world, lambda: world.receipt(next(spare))),
    )
    harness.run_worker_until(lambda: harness.consumed(RECEIPTS_TOPIC) == len(receipt_offsets))

    assert codes_by_offset(harness, LIFEEVENTS_TOPIC) == expected_codes(LIFE_EVENTS, life)
    assert codes_by_offset(harness, CONSENT_TOPIC) == expected_codes(CONSENTS, consent)
    assert codes_by_offset(harness, RECEIPTS_TOPIC) == expected_codes(receipts, receipt_offsets)
    stored = [e.event_id for e in app.store.events()]
    assert len(stored) == len(good_ids) + sum(c.code is None for c in LIFE_EVENTS)
    assert {*good_ids, "e" * 256} <= set(stored)
    revisions = [c.evidence for c in app.store.consents()]
    assert len(revisions) == 1 + len(CONSENTS) + sum(c.code is None for c in CONSENTS)
    assert {"c" * 32, "online"} <= {r.channel for r in revisions}
    assert "a" * 64 in {r.actor for r in revisions}
    deliveries = {d.notification_id: d for d in app.store.deliveries()}
    assert deliveries[notifications[0]].sink == "s" * 64
    assert deliveries[notifications[1]].detail == "d" * 10_000
    assert len(deliveries) == 2 + len(receipts)
    harness.checkpoint()
    assert app.verify_audit().ok
    result = reconcile(app.store, app.pseudonyms())
    assert result.ok, (result.tallies, result.problems)


SET_ASIDE = "record set aside: it cannot be stored"


@pytest.mark.parametrize(
    "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_records_the_database_refuses_are_set_aside_and_the_ones_behind_still_flow(
    harness: Harness, tmp_path: Path
) -> None:
    """With rules the hub's checks cannot know (CHECK constraints on events and consent_events,
    deliveries.sink narrowed to 8 characters by hand), each refused record is set aside as
    unstorable naming only the error class, the hub never stops, the events behind it are
    delivered and receipted, and the audit log verifies and reconciles."""
    app = harness.app
    harness.client({PUBLISHER: SUBJECT, RECIPIENT: LOCAL_ID, PORTAL: PORTAL_ID}, [RECIPIENT])
    # Raw SQL on purpose: these rules are the database's own, which no port can add.
    with app.store.engine.begin() as connection:
        for statement in (
            "ALTER TABLE events ADD CONSTRAINT it_refused CHECK (event_id <> 'boom')",
            "ALTER TABLE consent_events ADD CONSTRAINT it_refused CHECK (event_id <> 'boom')",
            "ALTER TABLE deliveries ALTER COLUMN sink TYPE varchar(8)",
        ):
            connection.execute(text(statement))
    world = World(harness)
    life = ["before", "boom", "after-1", "after-2"]
    send_all(harness, LIFEEVENTS_TOPIC, [world.event(ce_id=ce_id) for ce_id in life])
    send_all(
        harness,
        CONSENT_TOPIC,
        [world.grant(ce_id="boom"), world.grant(ce_id="after", recipient="bc-msp")],
    )

    with structlog.testing.capture_logs() as logs:
        totals = harness.run_worker_until(
            lambda: (
                harness.consumed(LIFEEVENTS_TOPIC) == len(life)
                and harness.consumed(CONSENT_TOPIC) == 2
            )
        )

    assert (totals.accepted, totals.rejected, totals.disclosed) == (3, 1, 3)
    assert sorted(e.event_id for e in app.store.events()) == ["after-1", "after-2", "before"]
    assert [c.recipient for c in app.store.consents()] == [RECIPIENT, "bc-msp"]
    warnings = {(e["position"], e["error_class"]) for e in logs if e["event"] == SET_ASIDE}
    assert warnings == {
        (f"{LIFEEVENTS_TOPIC}/0/1", "CheckViolation"),
        (f"{CONSENT_TOPIC}/0/0", "CheckViolation"),
    }
    on_wire = [harness.decode(r.value) for r in harness.read(REJECTED_TOPIC)]
    assert sorted((w["topic"], w["offset"], w["reason"]) for w in on_wire) == [
        (CONSENT_TOPIC, 0, "unstorable"),
        (LIFEEVENTS_TOPIC, 1, "unstorable"),
    ]

    # A receipt whose sink the narrowed column cannot hold, ahead of the connector's own.
    first = notification_id(PUBLISHER, "before", RECIPIENT)
    send_all(harness, RECEIPTS_TOPIC, [world.receipt(first, sink="filedrop-x")], partition=None)
    drop = tmp_path / "drop"
    delivered = harness.run_connectors({RECIPIENT: ("filedrop", {"directory": str(drop)})})
    assert delivered[RECIPIENT].delivered == 3
    assert len(list(drop.glob("*.json"))) == 3
    harness.run_worker_until(lambda: len(app.store.deliveries()) == 3)

    assert {(d.sink, d.status) for d in app.store.deliveries()} == {("filedrop", "delivered")}
    rows = {(r.topic, r.offset): r for r in app.store.rejections()}
    assert {key: row.reason for key, row in rows.items()} == {
        (LIFEEVENTS_TOPIC, 1): "unstorable",
        (CONSENT_TOPIC, 0): "unstorable",
        (RECEIPTS_TOPIC, 0): "unstorable",
    }
    assert "CheckViolation" in rows[(LIFEEVENTS_TOPIC, 1)].detail
    assert "StringDataRightTruncation" in rows[(RECEIPTS_TOPIC, 0)].detail
    for row in rows.values():  # the class only: the server's message quotes the row
        assert "boom" not in row.detail
        assert "Failing row" not in row.detail
        assert "filedrop-x" not in row.detail
    harness.checkpoint()
    assert app.verify_audit().ok
    result = reconcile(app.store, app.pseudonyms())
    assert result.ok, (result.tallies, result.problems)
    leaves = {t.fact: t.leaves for t in result.tallies}
    assert (leaves["rejected records"], leaves["refused receipts"]) == (2, 1)
