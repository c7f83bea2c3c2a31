"""Webhook signatures: what the sink sends, and what a receiving back office checks.

The signed bytes are ``f"{timestamp}.".encode() + body``, where ``timestamp`` is the value of the
``X-Tellonce-Timestamp`` header (Unix seconds) and ``body`` the exact request body. Binding the
timestamp lets a receiver refuse old captures (replays) without keeping every key forever.

``X-Tellonce-Signature`` holds one or more ``scheme=value`` entries separated by commas
(several during a key rotation); a request is authentic when any entry verifies:

- ``v1=<hex>``: HMAC-SHA256 under the recipient's shared secret.
- ``ed25519=<base64>``: an Ed25519 signature; the receiver holds only the public key.

A receiver should check the signature, then the timestamp, then dedupe on ``Idempotency-Key``::

    ok = verify_signature(secret, headers["X-Tellonce-Timestamp"], body,
                          headers["X-Tellonce-Signature"])
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HMAC_SCHEME = "v1"
ED25519_SCHEME = "ed25519"
DEFAULT_TOLERANCE_S = 300.0


def signed_bytes(timestamp: str, body: bytes) -> bytes:
    return f"{timestamp}.".encode("ascii") + body


class Signer(Protocol):
    def sign(self, timestamp: str, body: bytes) -> str:
        """The ``X-Tellonce-Signature`` header value for this timestamp and body."""


class HmacSigner:
    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def sign(self, timestamp: str, body: bytes) -> str:
        digest = hmac.new(self._secret, signed_bytes(timestamp, body), hashlib.sha256)
        return f"{HMAC_SCHEME}={digest.hexdigest()}"

    def __repr__(self) -> str:
        return "HmacSigner(<secret>)"


class Ed25519Signer:
    __slots__ = ("_key",)

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def sign(self, timestamp: str, body: bytes) -> str:
        signature = self._key.sign(signed_bytes(timestamp, body))
        return f"{ED25519_SCHEME}={base64.b64encode(signature).decode('ascii')}"

    def __repr__(self) -> str:
        return "Ed25519Signer(<private key>)"


def verify_signature(
    key: bytes | str | Ed25519PublicKey,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    tolerance_s: float | None = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Whether ``header`` signs ``timestamp`` + ``body`` under ``key``, within the tolerance.

    ``key`` is the shared HMAC secret (bytes, or text taken as UTF-8) or the hub's Ed25519 public
    key. Comparisons are constant-time. ``tolerance_s=None`` skips the freshness check (only for
    re-checking stored requests; a live receiver should keep it).
    """
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if tolerance_s is not None:
        current = time.time() if now is None else now
        if abs(current - sent_at) > tolerance_s:
            return False
    message = signed_bytes(timestamp, body)
    for entry in header.split(","):
        scheme, _, value = entry.strip().partition("=")
        if isinstance(key, Ed25519PublicKey):
            if scheme == ED25519_SCHEME and _ed25519_ok(key, message, value):
                return True
        elif scheme == HMAC_SCHEME:
            secret = key.encode("utf-8") if isinstance(key, str) else key
            expected = hmac.new(secret, message, hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected.encode("ascii"), value.encode("utf-8")):
                return True
    return False


def _ed25519_ok(key: Ed25519PublicKey, message: bytes, value: str) -> bool:
    try:
        key.verify(base64.b64decode(value, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
