"""The poison corpus: crafted records, each with the reason code the hub must refuse it with.

Bodies are written by hand, field by field, so each fault sits exactly where it is meant to and
``GOOD`` (checked against the real encoder) differs from each poison only there. ``CORPUS`` goes
on the life-event topic; ``consent_poison``, ``receipt_poison`` and ``POISON_NOTICE`` on the
consent, receipts and a notify topic. ``CORPUS_TABLE`` is the (record, code) table the closing
note of issue 8 quotes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from hub.model import Headers
from hub.processing.consent_events import CONSENT_SCHEMA
from hub.wire.cloudevents import cloudevent_headers
from tests import avro_bytes
from tests.avro_bytes import text, varint

from .harness import PUBLISHER, Harness

RECIPIENT = "cra-individual"
PORTAL = "canada-ca-portal"
VITAL = "bc-vital-statistics"
ADDRESS_CHANGED = "ca.tellonce.lifeevents.AddressChanged"
DEATH_REPORTED = "ca.tellonce.lifeevents.DeathReported"
NAME_CHANGED = "ca.tellonce.lifeevents.NameChanged"
NOTICE = "ca.tellonce.notify.AddressChangeNotice"
RECEIPT = "ca.tellonce.receipts.Receipt"
IDS = {ADDRESS_CHANGED: 1, DEATH_REPORTED: 2, NAME_CHANGED: 3, NOTICE: 5, RECEIPT: 8}
# Personal data carried by the poison records; none of it may reach a rejection.
SUBJECT = "SBC-POISON-7"
STREET = "12 Nightshade Row"
MUNICIPALITY = "Hemlockville"
POSTAL_CODE = "V5K 0A1"
PERSONAL = (SUBJECT, STREET, MUNICIPALITY, POSTAL_CODE)
DAYS_1900 = (date(1900, 1, 1) - date(1970, 1, 1)).days
DAYS_2100 = (date(2100, 12, 31) - date(1970, 1, 1)).days
MS_YEAR_10000 = 253_402_300_800_000
BC, SPOUSE, MARRIAGE = 1, 0, 0  # enum indexes


# -- hand-made Avro ------------------------------------------------------------------------------


def framed(body: bytes, schema: str | int = ADDRESS_CHANGED) -> bytes:
    return avro_bytes.framed(body, IDS[schema] if isinstance(schema, str) else schema)


def address(*, province: bytes = varint(BC), lines: bytes | None = None) -> bytes:
    count = lines if lines is not None else varint(1) + text(STREET) + varint(0)
    return count + text(MUNICIPALITY) + province + text(POSTAL_CODE)


def address_changed(
    *,
    subject: bytes = text(SUBJECT),
    days: bytes = varint((date(2025, 1, 1) - date(1970, 1, 1)).days),
    new_address: bytes | None = None,
    mailing: bytes = varint(0),
) -> bytes:
    """An AddressChanged body written field by field, so each fault sits where we want it."""
    return subject + days + (new_address if new_address is not None else address()) + mailing


def death_reported(days: int, subject: str = "SBC-123") -> bytes:
    return text(subject) + varint(days) + varint(BC) + varint(0) + varint(SPOUSE)


def name_changed(days: int) -> bytes:
    return text(SUBJECT) + varint(days) + text("Alex") + text("Tremblay") + varint(MARRIAGE)


def consent_body(
    *, recorded_at: int, expires_at: int | None = None, channel: str = "online"
) -> bytes:
    """A ConsentChanged body (a grant without notice) with its timestamps in milliseconds."""
    expires = varint(0) if expires_at is None else varint(1) + varint(expires_at)
    return framed(
        text("GCKEY-P")
        + text(RECIPIENT)
        + varint(1)
        + text("AddressChanged")
        + varint(0)
        + varint(0)
        + text("purpose")
        + text("basis")
        + varint(0)
        + varint(0)
        + text(channel)
        + text("client")
        + varint(recorded_at)
        + expires,
        9,
    )


def receipt_body(*, notification: str | bytes = "n-none", recorded_at: int) -> bytes:
    """A Receipt v1 body: DELIVERED by a webhook at ``recorded_at`` (milliseconds)."""
    return framed(
        text(notification)
        + text(RECIPIENT)
        + text("e-1")
        + varint(0)
        + text("webhook")
        + varint(0)
        + varint(recorded_at),
        RECEIPT,
    )


class RawName(str):
    """A header name kafka-python writes as bytes that are not UTF-8 (as any client can)."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"ce_\xff\xfe"


# -- the corpus ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Poison:
    name: str
    code: str
    value: bytes | None
    headers: Callable[[Harness], Headers] | None = None  # default: right for an AddressChanged
    key: bytes | None = SUBJECT.encode()


def ce(
    schema: str = ADDRESS_CHANGED,
    *,
    source: str = PUBLISHER,
    drop: tuple[str, ...] = (),
    extra: Headers | None = None,
    **values: bytes,
) -> Callable[[Harness], Headers]:
    """CloudEvents headers for ``schema``, minus ``drop``, with ``values`` replaced."""

    def build(harness: Harness) -> Headers:
        base = cloudevent_headers("poison", schema, harness.now, subject=SUBJECT, source=source)
        headers = [(k, values.get(k, v)) for k, v in base if k not in drop]
        return headers + (extra or [])

    return build


def notice_body(*, event_time: int, notification: str = "n-1") -> bytes:
    """An AddressChangeNotice body (no field disclosed) stamped ``event_time`` (milliseconds)."""
    return framed(
        text(notification)
        + text(RECIPIENT)
        + text("CRA-5")
        + text("e-1")
        + text(PUBLISHER)
        + varint(event_time)
        + varint(0)  # disclosed_fields: none
        + text("c" * 64)
        + varint(0)  # effective_date: null
        + varint(0)  # new_address: null
        + varint(0),  # mailing_address: null
        NOTICE,
    )


def ahead_by_a_day(harness: Harness) -> Headers:
    return ce(ce_time=(harness.now + timedelta(days=1)).isoformat().encode())(harness)


GOOD = framed(address_changed())
DEATH_23_BYTES = framed(death_reported(2**31 - 1, subject="SBC-12345"))
# fmt: off
CORPUS = [
    # framing and schema
    Poison("truncated body", "truncated", GOOD[:-4]),
    Poison("tombstone (no value)", "empty_value", None),
    Poison("4-byte value", "bad_framing", GOOD[:4]),
    Poison("wrong magic byte", "bad_framing", b"\x01" + GOOD[1:]),
    Poison("JSON instead of Avro", "bad_framing", b'{"subject_id": "SBC-POISON-7"}'),
    Poison("too large (70 KB)", "too_large", GOOD + b"\x00" * 70_000),
    Poison("unknown schema id 999", "unknown_schema", framed(address_changed(), 999)),
    Poison("schema id 2^32-1", "unknown_schema", framed(address_changed(), 2**32 - 1)),
    Poison("notice schema on the life-event topic", "unexpected_schema",
           notice_body(event_time=0), ce(NOTICE)),
    Poison("receipt schema on the life-event topic", "unexpected_schema",
           receipt_body(recorded_at=0), ce(RECEIPT)),
    Poison("consent schema on the life-event topic", "unexpected_schema",
           consent_body(recorded_at=0), ce(CONSENT_SCHEMA)),
    # the Avro body
    Poison("union index -1", "malformed_avro", framed(address_changed(mailing=varint(-1)))),
    Poison("union index 2", "malformed_avro", framed(address_changed(mailing=varint(2)))),
    Poison("union index 2^62", "malformed_avro", framed(address_changed(mailing=varint(2**62)))),
    Poison("enum index -1", "malformed_avro",
           framed(address_changed(new_address=address(province=varint(-1))))),
    Poison("enum index 13", "malformed_avro",
           framed(address_changed(new_address=address(province=varint(13))))),
    Poison("enum index 2^40", "malformed_avro",
           framed(address_changed(new_address=address(province=varint(2**40))))),
    Poison("array count 2^40 in 6 bytes", "too_many_items",
           framed(address_changed(new_address=address(lines=varint(2**40))))),
    Poison("block count -2^40 with a byte size", "too_many_items",
           framed(address_changed(new_address=address(lines=varint(-(2**40)) + varint(3))))),
    Poison("string length 2^40", "truncated", framed(varint(2**40) + b"SBC")),
    Poison("negative string length", "malformed_avro", framed(varint(-5) + b"SBC")),
    Poison("11-byte varint", "malformed_avro", framed(b"\xff" * 11 + b"\x01")),
    Poison("trailing bytes", "trailing_bytes", GOOD + b"\x02\x00\x00"),
    Poison("string not UTF-8", "malformed_avro",
           framed(address_changed(subject=text(b"\xff\xfe")))),
    Poison("NUL in subject_id", "invalid_text",
           framed(address_changed(subject=text("SBC\x00POISON")))),
    # logical types at and beyond their limits
    Poison("effective_date 2^31-1 days", "out_of_range",
           framed(address_changed(days=varint(2**31 - 1)))),
    Poison("effective_date -2^31 days", "out_of_range",
           framed(address_changed(days=varint(-(2**31))))),
    Poison("effective_date 1899-12-31", "out_of_range",
           framed(address_changed(days=varint(DAYS_1900 - 1)))),
    Poison("effective_date 2101-01-01", "out_of_range",
           framed(address_changed(days=varint(DAYS_2100 + 1)))),
    Poison("effective_date int of 35 bits", "malformed_avro",
           framed(address_changed(days=varint(2**34)))),
    Poison("23-byte DeathReported, date_of_death 2^31-1", "out_of_range", DEATH_23_BYTES,
           ce(DEATH_REPORTED, source=VITAL)),
    Poison("NameChanged effective_date -719163 (year 0)", "out_of_range",
           framed(name_changed(-719_163), NAME_CHANGED), ce(NAME_CHANGED)),
    Poison("DeathReported on 2100-12-31 (in the future)", "invalid_event",
           framed(death_reported(DAYS_2100), DEATH_REPORTED), ce(DEATH_REPORTED, source=VITAL)),
    # payload rules and the directory
    Poison("postal code of another province", "invalid_event",
           framed(address_changed(new_address=address(province=varint(8))))),  # ON
    Poison("ce_type of another schema", "type_mismatch", GOOD, ce(ce_type=NAME_CHANGED.encode())),
    Poison("program not allowed to publish it", "not_authorized", GOOD, ce(source=VITAL)),
    Poison("unknown ce_source", "unknown_source", GOOD, ce(source="bc-nowhere")),
    # headers
    Poison("no ce_id", "missing_header", GOOD, ce(drop=("ce_id",))),
    Poison("no headers at all", "missing_header", GOOD, lambda _harness: []),
    Poison("ce_specversion 0.3", "bad_header", GOOD, ce(ce_specversion=b"0.3")),
    Poison("content-type JSON", "bad_header", GOOD,
           ce(**{"content-type": b"application/json"})),
    Poison("ce_source not UTF-8", "bad_header", GOOD, ce(ce_source=b"bc-\xff")),
    Poison("header name not UTF-8", "bad_header", GOOD, ce(extra=[(RawName("x"), b"1")])),
    Poison("ce_source twice", "bad_header", GOOD, ce(extra=[("ce_source", VITAL.encode())])),
    Poison("ce_id twice", "bad_header", GOOD, ce(extra=[("ce_id", b"poison")])),
    Poison("NUL in ce_id", "bad_header", GOOD, ce(ce_id=b"poison\x00")),
    Poison("ce_id of 300 characters", "bad_header", GOOD, ce(ce_id=b"p" * 300)),
    Poison("ce_time malformed", "bad_header", GOOD, ce(ce_time=b"yesterday")),
    Poison("ce_time without a zone", "bad_header", GOOD, ce(ce_time=b"2025-03-01T10:00:00")),
    Poison("ce_time 0001-01-01T00:00:00+01:00", "out_of_range", GOOD,
           ce(ce_time=b"0001-01-01T00:00:00+01:00")),
    Poison("ce_time 1969-12-31T23:59:59Z", "out_of_range", GOOD,
           ce(ce_time=b"1969-12-31T23:59:59Z")),
    Poison("ce_time one day ahead of the hub", "out_of_range", GOOD, ahead_by_a_day),
    Poison("ce_time 9999-12-31T23:59:59-05:00", "out_of_range", GOOD,
           ce(ce_time=b"9999-12-31T23:59:59-05:00")),
    # the key
    Poison("no key", "missing_key", GOOD, key=None),
    Poison("key not UTF-8", "bad_key", GOOD, key=b"SBC-\xff"),
    Poison("key with a newline", "bad_key", GOOD, ce(ce_subject=b"SBC\n"), key=b"SBC\n"),
    Poison("key and subject_id differ", "subject_mismatch", GOOD,
           ce(ce_subject=b"SBC-OTHER-1"), key=b"SBC-OTHER-1"),
    Poison("ce_subject differs from the key", "subject_mismatch", GOOD,
           ce(ce_subject=b"SBC-OTHER-1")),
]
# fmt: on
CORPUS_TABLE = [(p.name, p.code) for p in CORPUS]


# fmt: off
def consent_poison(recent_ms: int) -> list[tuple[str, str, bytes]]:
    """(record, code, value) for the consent topic; ``recent_ms`` is a plausible recorded_at."""
    return [
        ("consent expires_at 2^62 ms", "out_of_range",
         consent_body(recorded_at=recent_ms, expires_at=2**62)),
        ("consent recorded_at in year 10000", "out_of_range",
         consent_body(recorded_at=MS_YEAR_10000)),
        ("consent channel holding NUL", "invalid_text",
         consent_body(recorded_at=recent_ms, channel="on\x00line")),
        ("life event on the consent topic", "unexpected_schema", GOOD),
        ("garbage on the consent topic", "bad_framing", b"\x07garbage"),
    ]


def receipt_poison(recent_ms: int) -> list[tuple[str, str, bytes]]:
    """(record, code, value) for the receipts topic."""
    return [
        ("receipt recorded_at 2^62 ms", "out_of_range", receipt_body(recorded_at=2**62)),
        ("receipt recorded_at before year 1", "out_of_range",
         receipt_body(recorded_at=-MS_YEAR_10000)),
        ("receipt notification_id holding NUL", "invalid_text",
         receipt_body(notification=b"n\x00x", recorded_at=recent_ms)),
        ("receipt for no notification of this hub", "unknown_notification",
         receipt_body(recorded_at=recent_ms)),
        ("life event on the receipts topic", "unexpected_schema", GOOD),
        ("garbage on the receipts topic", "bad_framing", b"\x01garbage"),
    ]
# fmt: on


# event_time in year 10000: fastavro raised and the connector exited, on every restart.
POISON_NOTICE = notice_body(event_time=MS_YEAR_10000, notification="n-poison")
