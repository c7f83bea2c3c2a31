"""Signed records: the canonical digest a publisher signs, its headers, and the checks.

A publishing program signs each life event with an Ed25519 key listed for it in the directory
(README, "Signed life events"); the hub signs each notice with its own key, which the directory
lists under ``hub_keys`` for the connectors to check (README, "Signed notices"). What is signed
is the SHA-256 digest of a canonical text: a context line, then the CloudEvents attributes
exactly as sent in the headers, the key, and the SHA-256 of the value, joined by line feeds.
Headers and the key may hold no control characters (``read_envelope`` refuses them), so the
lines cannot be confused with one another. Two headers carry the signature:
``ce_signaturekey`` (the key's id) and ``ce_signature`` (the 64-byte signature in base64). A
notice's text starts with another context line, so a signature of one kind never passes for
the other. A connector signs each receipt the same way under a third context line, with one
more line at the end: the ``ce_noticedigest`` header, the hex digest of the notice it answers,
so a receipt signed for one notice never passes for another (README, "Signed receipts"). The
test vectors under ``schemas/signatures/`` pin it.

The Ed25519 arithmetic itself is an adapter's (``hub.ports.SignatureVerifier``): the core only
builds the digest and decides which rejection a record earns.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from hub.config.directory import Directory, Program
from hub.config.signing_keys import ProgramKey, key_by_id
from hub.errors import NotFoundError, RejectedEvent
from hub.model import Headers, InboundMessage
from hub.ports import RecordSigner, SignatureVerifier
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
NOTICE_CONTEXT = "tellonce-notice-signature-v1"
RECEIPT_CONTEXT = "tellonce-receipt-signature-v1"
NOTICE_DIGEST = "ce_noticedigest"
# Headers whose values, as sent, end the canonical text under a context (after the value's
# hash, one line each; an absent header is an empty line).
TRAILING_HEADERS = {RECEIPT_CONTEXT: (NOTICE_DIGEST,)}
SIGNATURE_BYTES = 64


@dataclass(frozen=True, slots=True)
class SignaturePolicy:
    """How an inbound topic treats signatures: checked with ``verify`` whenever present, and
    an unsigned record refused when ``required``."""

    verify: SignatureVerifier
    required: bool


@dataclass(frozen=True, slots=True)
class NoticeSignatures:
    """What a connector checks notices against: the hub's listed keys, under a policy."""

    hub_keys: tuple[ProgramKey, ...]
    policy: SignaturePolicy

    def check(self, message: InboundMessage, now: datetime) -> None:
        check_notice_signature(message, self.hub_keys, now, self.policy)


@dataclass(frozen=True, slots=True)
class ReceiptSignatures:
    """What the hub checks receipts against: each recipient's keys in ``directory``, under a
    policy (``required``: a receipt must be signed, and name the notice it answers)."""

    directory: Directory
    policy: SignaturePolicy

    def check(self, message: InboundMessage, recipient: str, now: datetime) -> None:
        try:
            program: Program | None = self.directory.program(recipient)
        except NotFoundError:  # a recipient dropped from the directory has no key left
            program = None
        check_receipt_signature(message, program, now, self.policy)


@dataclass(frozen=True, slots=True)
class Signature:
    key_id: str
    value: bytes  # the 64 bytes


def event_signing_text(
    *,
    context: str = EVENT_CONTEXT,
    specversion: str,
    ce_id: str,
    source: str,
    ce_type: str,
    time: str,
    subject: str | None,
    key: bytes,
    value: bytes,
    trailing: Sequence[str] = (),
) -> bytes:
    """The canonical text of a record (a life event, a notice under ``NOTICE_CONTEXT``, a
    receipt under ``RECEIPT_CONTEXT`` with its notice digest as ``trailing``): what its digest
    is taken over. The first line keeps a signature of one kind from passing for another."""
    lines = [
        context,
        specversion,
        ce_id,
        source,
        ce_type,
        time,
        subject or "",
        key.decode("utf-8"),
        hashlib.sha256(value).hexdigest(),
        *trailing,
    ]
    return "\n".join(lines).encode("utf-8")


def event_digest_of(message: InboundMessage, context: str = EVENT_CONTEXT) -> bytes:
    """The SHA-256 digest of an inbound record's canonical text, from its headers as sent.
    Call after ``read_envelope``: the headers and the key are known to be there and clean."""
    text = event_signing_text(
        context=context,
        specversion=_header(message, CE_SPECVERSION),
        ce_id=_header(message, CE_ID),
        source=_header(message, CE_SOURCE),
        ce_type=_header(message, CE_TYPE),
        time=_header(message, CE_TIME),
        subject=header_text(message, CE_SUBJECT),
        key=message.key or b"",
        value=message.value or b"",
        trailing=[_header(message, name) for name in TRAILING_HEADERS.get(context, ())],
    )
    return hashlib.sha256(text).digest()


def event_digest(key: bytes, value: bytes, headers: Headers, context: str = EVENT_CONTEXT) -> bytes:
    """The digest of an outbound record (what a publisher, or the hub for a notice, signs)."""
    return event_digest_of(InboundMessage("", 0, 0, key, value, headers), context)


def signed(
    key: bytes, value: bytes, headers: Headers, signer: RecordSigner, context: str = EVENT_CONTEXT
) -> Headers:
    """``headers`` with the signature headers of ``signer`` over the record added."""
    signature = signer.sign(event_digest(key, value, headers, context))
    return [*headers, *signature_headers(signer.key_id, signature)]


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
    _check(message, program.key, f"program {program.id}", now, policy, EVENT_CONTEXT)


def check_receipt_signature(
    message: InboundMessage, recipient: Program | None, now: datetime, policy: SignaturePolicy
) -> None:
    """What the hub checks on a receipt: signed by a key the directory lists for the
    recipient it comes from (None: no program of that name, so no key of it), valid now,
    over its text under ``RECEIPT_CONTEXT``; the same four reasons otherwise."""
    owner = f"recipient {recipient.id}" if recipient else "the recipient it names"
    _check(message, recipient.key if recipient else _no_key, owner, now, policy, RECEIPT_CONTEXT)


def notice_digest_header(notice: InboundMessage) -> Headers:
    """The header a receipt carries to say which notice it answers: the hex digest of the
    notice's text under ``NOTICE_CONTEXT``, taken from the record as received."""
    return [(NOTICE_DIGEST, event_digest_of(notice, NOTICE_CONTEXT).hex().encode("ascii"))]


def check_notice_signature(
    message: InboundMessage, hub_keys: Sequence[ProgramKey], now: datetime, policy: SignaturePolicy
) -> None:
    """What a connector checks before it delivers: the notice is signed by one of the hub's
    keys the directory lists (``hub_keys``), valid now; the same four reasons otherwise."""
    _check(message, partial(key_by_id, hub_keys), "the hub", now, policy, NOTICE_CONTEXT)


def _check(
    message: InboundMessage,
    key_of: Callable[[str], ProgramKey | None],
    owner: str,
    now: datetime,
    policy: SignaturePolicy,
    context: str,
) -> None:
    signature = read_signature(message)
    if signature is None:
        if policy.required:
            raise RejectedEvent(
                "unsigned",
                f"the record carries no signature; {owner} must sign it with a key the "
                f"directory lists for it (headers {SIGNATURE_KEY}, {SIGNATURE})",
            )
        return
    key = key_of(signature.key_id)
    if key is None:
        raise RejectedEvent(
            "unknown_key", f"key {signature.key_id} is not listed for {owner} in the directory"
        )
    if not key.valid_at(now):
        raise RejectedEvent(
            "key_expired",
            f"key {signature.key_id} of {owner} is valid {key.validity()}, not now",
        )
    if not policy.verify(key.public_bytes(), event_digest_of(message, context), signature.value):
        raise RejectedEvent(
            "bad_signature",
            f"the signature does not verify under key {signature.key_id} of {owner}: the "
            "record was altered, or signed over other bytes",
        )


def _no_key(_key_id: str) -> ProgramKey | None:
    return None


def _header(message: InboundMessage, name: str) -> str:
    return header_text(message, name) or ""
