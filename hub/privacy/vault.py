"""Seal and open a person's values under their data key; make, rewrap and forget data keys.

Envelope encryption (DESIGN.md 8): each person has a 32-byte data key, kept by the store only
wrapped under a key-encryption key (KEK) that never leaves its ``KeyWrapper``. A value is
sealed with AES-256-GCM (the ``Sealer``) under the data key, with associated data that names
its row (``aad``), so a ciphertext moved to another row or another person does not open.

Unwrapping can be slow (an HSM round trip), so unwrapped keys are cached, bounded and keyed by
the wrapped bytes: a key rewrapped or destroyed in the store is simply never asked for again.
"""

from __future__ import annotations

from collections import OrderedDict

from hub.errors import DecryptionError
from hub.model import WrappedKey
from hub.ports.privacy import KeyWrapper, Sealer
from hub.privacy.blind_index import BlindIndex

DEFAULT_CACHE = 100_000  # ~100 bytes an entry: about 10 MB at most


def key_aad(person_id: str) -> bytes:
    """What a wrapped data key is bound to: its person, so keys cannot be swapped."""
    return b"tellonce.person\x1f" + person_id.encode()


class Vault:
    """Data keys per person over a ``KeyWrapper`` and a ``Sealer``, plus the blind index."""

    def __init__(
        self,
        wrapper: KeyWrapper,
        sealer: Sealer,
        index: BlindIndex,
        *,
        cache_size: int = DEFAULT_CACHE,
    ) -> None:
        self._wrapper = wrapper
        self._sealer = sealer
        self._index = index
        self._cache: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()
        self._cache_size = cache_size

    @property
    def wrapper(self) -> KeyWrapper:
        return self._wrapper

    def index(self, program: str, local_id: str) -> str:
        """The blind index of ``local_id`` at ``program``."""
        return self._index.of(program, local_id)

    def new_key(self, person_id: str) -> WrappedKey:
        """A new data key for ``person_id``, wrapped under the current KEK."""
        data_key = self._sealer.new_data_key()
        wrapped = self._wrapper.wrap(data_key, key_aad(person_id))
        self._remember(person_id, wrapped, data_key)
        return wrapped

    def seal(self, person_id: str, key: WrappedKey | None, plaintext: bytes, aad: bytes) -> bytes:
        """``plaintext`` sealed under the person's data key (``key`` as the store keeps it;
        None: erased, DecryptionError)."""
        return self._sealer.seal(self._data_key(person_id, key), plaintext, aad)

    def open(self, person_id: str, key: WrappedKey | None, sealed: bytes, aad: bytes) -> bytes:
        """The plaintext of ``sealed``; DecryptionError when the person was erased (``key``
        None) or it does not authenticate."""
        return self._sealer.open(self._data_key(person_id, key), sealed, aad)

    def rewrap(self, person_id: str, key: WrappedKey) -> WrappedKey:
        """The same data key wrapped under the current KEK (rotation; ciphertexts untouched)."""
        data_key = self._data_key(person_id, key)
        wrapped = self._wrapper.wrap(data_key, key_aad(person_id))
        self._remember(person_id, wrapped, data_key)
        return wrapped

    def forget(self, person_id: str) -> None:
        """Drop the cached data keys of ``person_id`` (erasure)."""
        for entry in [entry for entry in self._cache if entry[0] == person_id]:
            del self._cache[entry]

    def _data_key(self, person_id: str, key: WrappedKey | None) -> bytes:
        if key is None:
            raise DecryptionError("this person was erased: their data key no longer exists")
        entry = (person_id, key.wrapped)
        data_key = self._cache.get(entry)
        if data_key is None:
            data_key = self._wrapper.unwrap(key, key_aad(person_id))
            self._remember(person_id, key, data_key)
        else:
            self._cache.move_to_end(entry)
        return data_key

    def _remember(self, person_id: str, key: WrappedKey, data_key: bytes) -> None:
        self._cache[(person_id, key.wrapped)] = data_key
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
