"""Keyed hashes of the ids publishers choose, for what the hub keeps for good.

``ce_id`` (and a ``ce_source`` that names no program) come from the publisher, as free text:
nothing stops a back office from putting a client number or a name in them. Audit leaves are
immutable and exported in bundles, and rejected records belong to nobody an erasure could
find, so neither holds such ids as sent: they hold ``h:`` + HMAC-SHA-256 (hex) of the id
under the hub's pseudonym key. The hash is stable under one key, so reconciliation matches
leaves with the facts in the store, and whoever holds the key finds a publisher's event
(``tellonce audit pseudonym ID``); without the key a guessed id cannot be confirmed.

The key is a secret of its own, loaded by an adapter (``hub.adapters.pseudonym_key``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

PREFIX = "h:"
MIN_KEY_BYTES = 32


class Pseudonyms:
    """``of(id)``: the keyed hash of one publisher-supplied id; ``event``: a leaf's event ref.

    ``key`` is the key itself, or a function that loads it on first use (read-only commands
    then need it only when there is something to hash).
    """

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        self._key: bytes | None = None
        self._load: Callable[[], bytes] | None = None
        if isinstance(key, bytes):
            self._key = _checked(key)
        else:
            self._load = key

    def load(self) -> Pseudonyms:
        """Load the key now (a worker fails at start, not at its first event)."""
        self._secret()
        return self

    def of(self, value: str) -> str:
        digest = hmac.new(self._secret(), value.encode("utf-8"), hashlib.sha256).hexdigest()
        return PREFIX + digest

    def event(self, source: str, event_id: str) -> str:
        """How leaves name an event: its program in clear, its ce_id hashed."""
        return f"{source}/{self.of(event_id)}"

    def _secret(self) -> bytes:
        if self._key is None:
            assert self._load is not None
            self._key = _checked(self._load())
        return self._key


def _checked(key: bytes) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a pseudonym key needs at least {MIN_KEY_BYTES} bytes")
    return key
