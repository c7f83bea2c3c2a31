"""Programs' record keys: Ed25519 key files that sign life events (and, later, receipts), and
the check of such signatures for ``hub.wire.signatures``.

``tellonce keys new`` makes a key file (unencrypted PKCS8 PEM, mode 0600) and prints the
directory entry of its public key; ``tellonce publish --key`` and the demo sign with one.
Errors name the file and the fix, never key material.
"""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hub.adapters.signing import create_key
from hub.config.signing_keys import ProgramKey, key_id_of
from hub.errors import ConfigError


def verify_ed25519(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """hub.ports.SignatureVerifier: False for a bad signature or a malformed key, never raises."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class RecordKey:
    """A program's private key, loaded once from its file."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id_of(self.public_raw)

    @classmethod
    def new(cls, path: Path) -> RecordKey:
        """Make a key file at ``path`` (never overwriting one) and load it."""
        create_key(path)
        return cls.load(path)

    @classmethod
    def generate(cls) -> RecordKey:
        """A key held in memory only (the demo's, made for one run)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path, *, fix: str = "give the file 'tellonce keys new' wrote") -> RecordKey:
        """The key in ``path``; ConfigError naming the file and ``fix`` when it cannot be."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"key file {path} cannot be read ({exc.strerror}); {fix}") from exc
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigError(
                f"key file {path} is not an unencrypted PEM private key; {fix}"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(
                f"key file {path} holds a {type(key).__name__}, not an Ed25519 key; {fix}"
            )
        return cls(key)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def directory_entry(self, valid_from: datetime, valid_to: datetime | None = None) -> ProgramKey:
        return ProgramKey(
            id=self.key_id,
            public_key=base64.b64encode(self.public_raw).decode("ascii"),
            valid_from=valid_from,
            valid_to=valid_to,
        )
