"""The wire contract as publishers and connectors in other languages read it: spelled out here
on purpose, so a change to a name in hub.wire fails a test instead of breaking them."""

from __future__ import annotations

from hub.wire import cloudevents, schemas, topics
from hub.wire.catalog import load_catalog


def test_topic_names() -> None:
    """Every topic name and per-recipient topic of DESIGN.md section 3."""
    assert topics.LIFEEVENTS_TOPIC == "tellonce.lifeevents.v1"
    assert topics.REJECTED_TOPIC == "tellonce.lifeevents.rejected.v1"
    assert topics.RECEIPTS_TOPIC == "tellonce.receipts.v1"
    assert topics.CONSENT_TOPIC == "tellonce.consent.v1"
    assert topics.HUB_TOPIC == "tellonce.hub.v1"
    assert topics.notify_topic("bc-msp") == "tellonce.notify.bc-msp.v1"
    assert topics.dlq_topic("bc-msp") == "tellonce.notify.bc-msp.dlq"
    assert topics.connector_source("bc-msp") == "tellonce-connector/bc-msp"
    assert topics.connector_group("bc-msp") == "tellonce-connector-bc-msp"


def test_cloudevents_header_names() -> None:
    """The binary-mode headers every record carries, and the dead-letter error headers."""
    assert cloudevents.REQUIRED_HEADERS == (
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "content-type",
    )
    assert cloudevents.SUBJECT_HEADER == "ce_subject"
    assert [
        cloudevents.ERROR_CLASS,
        cloudevents.ERROR_MESSAGE,
        cloudevents.ERROR_ATTEMPTS,
        cloudevents.ERROR_TOPIC,
        cloudevents.ERROR_PARTITION,
        cloudevents.ERROR_OFFSET,
        cloudevents.ERROR_TIME,
    ] == [
        "tellonce.errors.class",
        "tellonce.errors.message",
        "tellonce.errors.attempts",
        "tellonce.errors.topic",
        "tellonce.errors.partition",
        "tellonce.errors.offset",
        "tellonce.errors.time",
    ]


def test_schema_full_names_are_in_the_catalog() -> None:
    """The schemas the hub writes or reads by name exist in the shipped catalog."""
    named = [
        schemas.REJECTION_SCHEMA,
        schemas.RECEIPT_SCHEMA,
        schemas.CONSENT_SCHEMA,
        schemas.ERASURE_SCHEMA,
    ]
    assert named == [
        "ca.tellonce.lifeevents.Rejection",
        "ca.tellonce.receipts.Receipt",
        "ca.tellonce.consent.ConsentChanged",
        "ca.tellonce.consent.ErasureRequested",
    ]
    assert set(named) <= set(load_catalog().names)


def test_erasure_request_schema_fields() -> None:
    """ErasureRequested (id 11) carries the client's portal id and the request's evidence,
    nothing else: what a portal in any language must send on the consent topic."""
    entry = load_catalog().latest(schemas.ERASURE_SCHEMA)
    assert (entry.id, entry.version) == (11, 1)
    assert [f["name"] for f in entry.schema["fields"]] == [
        "subject_id",
        "channel",
        "actor",
        "recorded_at",
    ]
    assert entry.fingerprint is not None  # published: it may never change
