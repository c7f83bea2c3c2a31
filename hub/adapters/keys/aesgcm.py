"""The ``Sealer`` port on AES-256-GCM (``cryptography``): what seals personal data at rest.

A sealed value is ``0x01 || nonce (12 bytes) || ciphertext || tag (16 bytes)``. The leading
byte names the format, so a later scheme can be told apart from this one. Nonces are random:
at 2^32 seals under one data key the collision risk reaches NIST's bound, which one person's
few rows never approach.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.errors import DecryptionError

FORMAT = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32
OVERHEAD = len(FORMAT) + NONCE_BYTES + 16
CIPHERS = 4_096  # cipher objects kept: one per data key in use (a batch's persons)


class AesGcmSealer:
    """``seal``/``open`` under 32-byte keys, associated data bound to each value."""

    def __init__(self) -> None:
        # Building an AESGCM object costs more than sealing a notice with it, and a batch
        # seals and opens several values per person: keep the recent ones. (A key erased since
        # stays here until the map is next cleared; it lives in this process only, as the
        # vault's cache of unwrapped keys does, and opens nothing the store still holds.)
        self._ciphers: dict[bytes, AESGCM] = {}

    def _cipher(self, data_key: bytes) -> AESGCM:
        cipher = self._ciphers.get(data_key)
        if cipher is None:
            if len(self._ciphers) >= CIPHERS:
                self._ciphers.clear()
            cipher = self._ciphers[data_key] = AESGCM(data_key)
        return cipher

    def new_data_key(self) -> bytes:
        return AESGCM.generate_key(bit_length=KEY_BYTES * 8)

    def seal(self, data_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return FORMAT + nonce + self._cipher(data_key).encrypt(nonce, plaintext, aad)

    def open(self, data_key: bytes, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < OVERHEAD or sealed[:1] != FORMAT:
            raise DecryptionError("a sealed value is not in the AES-256-GCM format tellonce writes")
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._cipher(data_key).decrypt(nonce, body, aad)
        except InvalidTag:
            raise DecryptionError(
                "a sealed value does not authenticate: it was altered, moved from another row, "
                "or sealed under another key"
            ) from None
