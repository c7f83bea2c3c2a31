"""The blind index: how a store finds a sealed local id without keeping it in plaintext.

A local id is sealed under its person's data key, so it cannot be looked up by value. Beside
it the store keeps HMAC-SHA-256 of (program, local id) under the hub's index key: the same
inputs give the same index, so ``(program, index)`` stays unique and a look-up is one indexed
read; without the key, a guessed id cannot be confirmed against a dump. The index outlives an
erasure on purpose: later events about the person must still be recognised (and withheld).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

MIN_KEY_BYTES = 32


class BlindIndex:
    """``of(program, local_id)``: the hex HMAC-SHA-256 the store keeps and looks ids up by.

    ``key`` is the key, or a function that loads it on first use (a command that never looks
    a local id up then never needs the key file).
    """

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        self._key: bytes | None = None
        self._load: Callable[[], bytes] | None = None
        if isinstance(key, bytes):
            self._key = _checked(key)
        else:
            self._load = key

    def of(self, program: str, local_id: str) -> str:
        # The unit separator keeps ("ab", "c") and ("a", "bc") apart.
        message = f"{program}\x1f{local_id}".encode()
        return hmac.new(self._secret(), message, hashlib.sha256).hexdigest()

    def _secret(self) -> bytes:
        if self._key is None:
            assert self._load is not None
            self._key = _checked(self._load())
        return self._key


def _checked(key: bytes) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a blind index key needs at least {MIN_KEY_BYTES} bytes")
    return key
