"""The privacy role: data keys sealed under a key-encryption key, and the cipher they seal with.

Personal data at rest is sealed with a data key of its person (envelope encryption, DESIGN.md
8): erasing the person destroys that key, and every copy of their data, backups included,
stops decrypting. The data keys themselves are kept wrapped by a key-encryption key (KEK)
that never leaves its ``KeyWrapper`` (a key file, or an HSM through PKCS#11), so a copy of
the database alone opens nothing.
"""

from __future__ import annotations

from typing import Protocol

from hub.model import WrappedKey


class KeyWrapper(Protocol):
    """Wraps and unwraps data keys under KEKs it holds; several KEKs during a rotation."""

    def current_kek(self) -> str:
        """The id of the KEK new data keys are wrapped under; KeyStoreError when none can be
        used (and, where allowed, one is created on first use)."""

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        """``data_key`` wrapped under the current KEK and bound to ``aad``; KeyStoreError."""

    def unwrap(self, key: WrappedKey, aad: bytes) -> bytes:
        """The data key; KeyStoreError when its KEK cannot be used, DecryptionError when the
        wrapping does not authenticate with ``aad`` (altered, or another row's key)."""

    def new_kek(self) -> str:
        """Create a KEK and make it the current one (rotation starts here); its id."""


class Sealer(Protocol):
    """Authenticated encryption under 32-byte data keys (AES-256-GCM)."""

    def new_data_key(self) -> bytes:
        """A fresh random data key."""

    def seal(self, data_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """``plaintext`` encrypted under ``data_key`` with a fresh nonce, bound to ``aad``."""

    def open(self, data_key: bytes, sealed: bytes, aad: bytes) -> bytes:
        """The plaintext of ``sealed``; DecryptionError when it does not authenticate under
        ``data_key`` and ``aad`` (altered, swapped between rows, or another key)."""
