"""The signing ports: who signs audit checkpoints, consent receipts and records, and who checks
them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Signer(Protocol):
    """Signs audit checkpoints and consent receipts with Ed25519 (a file key here, an HSM later)."""

    @property
    def key_id(self) -> str:
        """The id of the signing key (``ed25519:`` and a fingerprint), written beside signatures."""

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature; raises SignerError when the key cannot be used."""

    def public_key_pem(self) -> str:
        """The public key in PEM, for whoever verifies the signatures."""


class RecordSigner(Protocol):
    """A program's key that signs the records it publishes (hub.wire.signatures)."""

    @property
    def key_id(self) -> str:
        """The key's id as the directory lists it."""

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""


SignatureCheck = Callable[[bytes, bytes], bool]
"""``check(message, signature)``: True when the signature verifies under a known public key."""

SignatureVerifier = Callable[[bytes, bytes, bytes], bool]
"""``verify(public_key, message, signature)``: True when ``signature`` is the Ed25519 signature
of ``message`` under the raw 32-byte ``public_key``; False for anything else (never raises)."""
