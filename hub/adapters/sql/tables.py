"""Table definitions. Unique constraints make duplicates impossible, not unlikely.

The schema is created and evolved by the Alembic migrations beside this module; these Table
objects are what the store queries with, and a test checks they match the migrated database.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Stable constraint names so migrations can refer to them on every database.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(36)
PROGRAM = String(63)
KEK_ID = String(64)
BLIND_INDEX = String(64)  # hex HMAC-SHA-256
EVENT_ID = String(256)
HASH = String(64)
PSEUDONYM = String(66)  # "h:" + hex HMAC-SHA-256 (hub.audit.pseudonyms)
# Times that are hashed (audit, consent) are kept as the exact ISO text that was hashed.
HASHED_TIME = String(40)

# A person's data key, wrapped under the KEK ``kek_id`` (migration 0004); erasing the person
# destroys it (both NULL) and sets ``erased_at``. The row itself stays: links still resolve.
persons = Table(
    "persons",
    metadata,
    Column("person_id", ID, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("kek_id", KEK_ID, nullable=True),
    Column("wrapped_key", LargeBinary, nullable=True),
    Column("erased_at", DateTime(timezone=True), nullable=True),
    Index(None, "kek_id"),
)

# The local id is kept sealed under its person's data key (NULL once erased) and found by its
# blind index (``hub.privacy.blind_index``, migration 0004); no column holds it in plaintext.
identity_links = Table(
    "identity_links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("person_id", ID, ForeignKey("persons.person_id"), nullable=False),
    Column("program", PROGRAM, nullable=False),
    Column("local_id_index", BLIND_INDEX, nullable=False),
    Column("local_id_sealed", LargeBinary, nullable=True),
    Column("channel", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("recorded_at", HASHED_TIME, nullable=False),
    UniqueConstraint("program", "local_id_index"),
    UniqueConstraint("person_id", "program"),
)

consent_revisions = Table(
    "consent_revisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("person_id", ID, ForeignKey("persons.person_id"), nullable=False),
    Column("recipient", PROGRAM, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("recorded_at", HASHED_TIME, nullable=False),
    Column("prev_hash", HASH, nullable=False),
    Column("hash", HASH, nullable=False, unique=True),
    # ISO/IEC TS 27560 terms and notice evidence (migration 0002)
    Column("purpose", String(256), nullable=False),
    Column("legal_basis", String(256), nullable=False),
    Column("expires_at", HASHED_TIME, nullable=True),
    Column("notice_version", String(32), nullable=True),
    Column("notice_hash", HASH, nullable=True),
    UniqueConstraint("person_id", "recipient", "event_type", "seq"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", PROGRAM, nullable=False),
    Column("event_id", EVENT_ID, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("person_id", ID, nullable=True),
    Column("kafka_topic", String(249), nullable=False),
    Column("kafka_partition", Integer, nullable=False),
    Column("kafka_offset", BigInteger, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("source", "event_id"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", PROGRAM, nullable=False),
    Column("event_id", EVENT_ID, nullable=False),
    Column("recipient", PROGRAM, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("consent_revision", HASH, nullable=True),
    Column("notification_id", ID, nullable=True, unique=True),
    Column("fields", JSON, nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    # Keyed hash of the digest of the notice sent, which its receipt must name (migration 0005).
    Column("notice_digest", PSEUDONYM, nullable=True),
    UniqueConstraint("source", "event_id", "recipient"),
    ForeignKeyConstraint(["source", "event_id"], ["events.source", "events.event_id"]),
)

rejections = Table(
    "rejections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kafka_topic", String(249), nullable=False),
    Column("kafka_partition", Integer, nullable=False),
    Column("kafka_offset", BigInteger, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("source", String(256), nullable=True),
    Column("event_id", String(256), nullable=True),
    Column("rejected_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("kafka_topic", "kafka_partition", "kafka_offset"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("message_id", ID, nullable=False, unique=True),
    Column("topic", String(249), nullable=False),
    Column("key", LargeBinary, nullable=True),
    Column("value", LargeBinary, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True),
    # times the relay published it again for want of a receipt (migration 0002)
    Column("republished", Integer, nullable=False, server_default="0"),
    # whose data key seals key, value and the ce_subject header (migration 0004); NULL for a
    # message without personal data (a rejection), whose columns stay readable
    Column("person_id", ID, nullable=True),
    Index(None, "published_at"),
    Index(None, "person_id"),
)

# Consent changes received on tellonce.consent.v1: (ce_source, ce_id) is applied once.
consent_events = Table(
    "consent_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", PROGRAM, nullable=False),
    Column("event_id", EVENT_ID, nullable=False),
    Column("person_id", ID, ForeignKey("persons.person_id"), nullable=False),
    Column("kafka_topic", String(249), nullable=False),
    Column("kafka_partition", Integer, nullable=False),
    Column("kafka_offset", BigInteger, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("source", "event_id"),
)

# One row per leaf of the Merkle log; ``leaf_index`` is the RFC 9162 leaf index.
audit_leaves = Table(
    "audit_leaves",
    metadata,
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("data", JSON, nullable=False),
    Column("recorded_at", HASHED_TIME, nullable=False),
    Column("prev_hash", HASH, nullable=False),
    Column("leaf_hash", HASH, nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False, unique=True),
    Column("root_hash", HASH, nullable=False),
    Column("issued_at", HASHED_TIME, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
    Column("frontier", JSON, nullable=False),
)

# Delivery status per notification, from the connectors' receipts.
deliveries = Table(
    "deliveries",
    metadata,
    Column("notification_id", ID, ForeignKey("decisions.notification_id"), primary_key=True),
    Column("recipient", PROGRAM, nullable=False),
    Column("status", String(16), nullable=False),
    Column("sink", String(64), nullable=False),
    Column("detail", Text, nullable=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("dead_lettered_at", DateTime(timezone=True), nullable=True),
)

consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("group_id", String(255), nullable=False),
    Column("topic", String(249), nullable=False),
    Column("kafka_partition", Integer, nullable=False),
    Column("next_offset", BigInteger, nullable=False),
    PrimaryKeyConstraint("group_id", "topic", "kafka_partition"),
)

# One row, made with the schema (migration 0003): the random id that tells this database from
# any other (hub.processing.fence).
store_identity = Table(
    "store_identity",
    metadata,
    Column("store_id", ID, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
