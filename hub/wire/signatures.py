"""Signed records: the canonical digest a publisher signs, its headers, and the hub's check.

A publishing program signs each life event with an Ed25519 key listed for it in the directory
(README, "Signed life events"). What is signed is the SHA-256 digest of a canonical text: a
context line, then the CloudEvents attributes exactly as sent in the headers, the key, and the
SHA-256 of the value, joined by line feeds. Headers and the key may hold no control characters
(``read_envelope`` refuses them), so the lines cannot be confused with one another. Two headers
carry the signature: ``ce_signaturekey`` (the key's id) and ``ce_signature`` (the 64-byte
signature in base64). The test vectors under ``schemas/signatures/`` pin all of it.

The Ed25519 arithmetic itself is an adapter's (``hub.ports.SignatureVerifier``): the core only
builds the digest and decides which rejection a record earns.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime

from hub.config.directory import Program
from hub.errors import RejectedEvent
from hub.model import Headers, InboundMessage
from hub.ports import SignatureVerifier
from hub.wire.cloudevents import (
    CE_ID,
    CE_SOURCE,
    CE_SPECVERSION,
    CE_SUBJECT,
    CE_TIME,
    CE_TYPE,
    header_text,
)

SIGNATURE = "ce_signature"
SIGNATURE_KEY = "ce_signaturekey"
EVENT_CONTEXT = "tellonce-event-signature-v1"
SIGNATURE_BYTES = 64


@dataclass(frozen=True, slots=True)
class SignaturePolicy:
    """How an inbound topic treats signatures: checked with ``verify`` whenever present, and
    an unsigned record refused when ``required``."""

    verify: SignatureVerifier
    required: bool


@dataclass(frozen=True, slots=True)
class Signature:
    key_id: str
    value: bytes  # the 64 bytes


def event_signing_text(
    *,
    specversion: str,
    ce_id: str,
    source: str,
    ce_type: str,
    time: str,
    subject: str | None,
    key: bytes,
    value: bytes,
) -> bytes:
    """The canonical text of a life event: what its digest is taken over."""
    lines = [
        EVENT_CONTEXT,
        specversion,
        ce_id,
        source,
        ce_type,
        time,
        subject or "",
        key.decode("utf-8"),
        hashlib.sha256(value).hexdigest(),
    ]
    return "\n".join(lines).encode("utf-8")


def event_digest_of(message: InboundMessage) -> bytes:
    """The SHA-256 digest of an inbound life event's canonical text, from its headers as sent.
    Call after ``read_envelope``: the headers and the key are known to be there and clean."""
    text = event_signing_text(
        specversion=_header(message, CE_SPECVERSION),
        ce_id=_header(message, CE_ID),
        source=_header(message, CE_SOURCE),
        ce_type=_header(message, CE_TYPE),
        time=_header(message, CE_TIME),
        subject=header_text(message, CE_SUBJECT),
        key=message.key or b"",
        value=message.value or b"",
    )
    return hashlib.sha256(text).digest()


def event_digest(key: bytes, value: bytes, headers: Headers) -> bytes:
    """The digest of an outbound life event (what a publisher signs)."""
    return event_digest_of(InboundMessage("", 0, 0, key, value, headers))


def signature_headers(key_id: str, signature: bytes) -> Headers:
    return [
        (SIGNATURE_KEY, key_id.encode("ascii")),
        (SIGNATURE, base64.b64encode(signature)),
    ]


def read_signature(message: InboundMessage) -> Signature | None:
    """The record's signature headers; None when it carries none; RejectedEvent
    ``bad_signature`` when they are there but malformed."""
    key_id = header_text(message, SIGNATURE_KEY)
    encoded = header_text(message, SIGNATURE)
    if key_id is None and encoded is None:
        return None
    if key_id is None or encoded is None:
        raise RejectedEvent(
            "bad_signature", f"headers {SIGNATURE_KEY} and {SIGNATURE} go together; send both"
        )
    try:
        value = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise RejectedEvent("bad_signature", f"{SIGNATURE} is not base64") from None
    if len(value) != SIGNATURE_BYTES:
        raise RejectedEvent(
            "bad_signature", f"{SIGNATURE} must hold {SIGNATURE_BYTES} bytes (Ed25519)"
        )
    return Signature(key_id, value)


def check_event_signature(
    message: InboundMessage, program: Program, now: datetime, policy: SignaturePolicy
) -> None:
    """Raise RejectedEvent unless ``message`` is signed by a key the directory lists for
    ``program`` and valid at ``now`` (the hub's clock, so that a retired key cannot sign
    backdated events): ``unsigned``, ``bad_signature``, ``unknown_key`` or ``key_expired``.
    An unsigned record passes only when the policy does not require signatures."""
    signature = read_signature(message)
    if signature is None:
        if policy.required:
            raise RejectedEvent(
                "unsigned",
                f"the event carries no signature; program {program.id} must sign it with a key "
                f"the directory lists for it (headers {SIGNATURE_KEY}, {SIGNATURE})",
            )
        return
    key = program.key(signature.key_id)
    if key is None:
        raise RejectedEvent(
            "unknown_key",
            f"key {signature.key_id} is not listed for program {program.id} in the directory",
        )
    if not key.valid_at(now):
        raise RejectedEvent(
            "key_expired",
            f"key {signature.key_id} of program {program.id} is valid {key.validity()}, not now",
        )
    if not policy.verify(key.public_bytes(), event_digest_of(message), signature.value):
        raise RejectedEvent(
            "bad_signature",
            f"the signature does not verify under key {signature.key_id} of program "
            f"{program.id}: the record was altered, or signed over other bytes",
        )


def _header(message: InboundMessage, name: str) -> str:
    return header_text(message, name) or ""
