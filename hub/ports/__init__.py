"""Ports: what the hub core needs from the outside world, as Protocols split by role.

The store is split as eventsourcing splits its recorders: one small Protocol per role
(``offsets``, ``identity``, ``consents``, ``decisions``, ``outbox``, ``audit``, ``deliveries``)
and the read side (``queries``); ``store`` composes them into ``Transaction`` (every write role,
all or nothing) and ``Store`` (transactions plus queries). Beside the store: ``messaging``
(broker source, producer, claim log), ``codec`` (records to bytes, typed ``Decoded``),
``signing`` (signer, signature check), ``privacy`` (key wrapper and cipher of the data keys that
seal personal data at rest), ``clock``. A use-case that needs one role may be typed
against it (the relay needs the outbox only).

Adapters in ``hub.adapters`` implement them with kafka-python, fastavro and SQLAlchemy; the
in-memory store in ``hub.adapters.memory`` is a real adapter used by the fast unit tests, and
``hub.testing.store_contract`` is the suite every store adapter passes.

May import: ``hub.model``, ``hub.errors``, ``hub.wire.catalog`` (the schema entry a decode
names), ``consent.model`` and the standard library; no adapters, no infrastructure library.
"""

from __future__ import annotations

from hub.ports.audit import AuditRecorder
from hub.ports.clock import Clock
from hub.ports.codec import Codec, Decoded, Record
from hub.ports.consents import ConsentRecorder
from hub.ports.decisions import DecisionRecorder
from hub.ports.deliveries import DeliveryRecorder
from hub.ports.identity import IdentityRecorder
from hub.ports.messaging import ClaimLog, MessageSource, OffsetLookup, Producer
from hub.ports.offsets import OffsetRecorder
from hub.ports.outbox import OutboxRecorder, OutboxStore
from hub.ports.privacy import KeyWrapper, Sealer
from hub.ports.queries import StoreQueries
from hub.ports.signing import RecordSigner, SignatureCheck, SignatureVerifier, Signer
from hub.ports.store import Store, Transaction

__all__ = [
    "AuditRecorder",
    "ClaimLog",
    "Clock",
    "Codec",
    "ConsentRecorder",
    "DecisionRecorder",
    "Decoded",
    "DeliveryRecorder",
    "IdentityRecorder",
    "KeyWrapper",
    "MessageSource",
    "OffsetLookup",
    "OffsetRecorder",
    "OutboxRecorder",
    "OutboxStore",
    "Producer",
    "Record",
    "RecordSigner",
    "Sealer",
    "SignatureCheck",
    "SignatureVerifier",
    "Signer",
    "Store",
    "StoreQueries",
    "Transaction",
]
