"""The ``KeyWrapper`` port on a folder of key files (the embedded default).

Each KEK is a file ``<kek id>.kek`` (32 random bytes, hex, mode 0600) in the folder; the file
``current`` names the KEK that wraps new data keys. A data key is wrapped with AES-256-GCM
under its KEK (``hub.adapters.keys.aesgcm``), bound to its person by the associated data.

Keep the folder apart from database backups: with both, personal data opens. Production that
wants the KEK out of reach of the hub's own disk uses the PKCS#11 wrapper (an HSM) instead.

Files are written to a temp file and then hard-linked into place, so two processes that start
together agree on one first KEK and an existing KEK is never replaced; the one that lost the
race removes the KEK file it made, which wraps nothing.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from hub.adapters.keys.aesgcm import KEY_BYTES, AesGcmSealer
from hub.adapters.secret_file import NoTempFile, write_private
from hub.errors import DecryptionError, KeyStoreError
from hub.model import WrappedKey

SETTING = "TELLONCE_PRIVACY__KEK_DIR"
CURRENT = "current"
SUFFIX = ".kek"


class FileKeyWrapper:
    """KEKs in ``folder``; with ``create``, the folder and a first KEK are made when missing."""

    def __init__(self, folder: Path, *, create: bool) -> None:
        self._folder = folder
        self._create = create
        self._keks: dict[str, bytes] = {}
        self._aead = AesGcmSealer()

    def current_kek(self) -> str:
        pointer = self._folder / CURRENT
        if self._create and not pointer.exists():
            self._first_kek()
        try:
            kek_id = pointer.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            raise KeyStoreError(
                f"the KEK folder {self._folder} has no readable '{CURRENT}' file; set {SETTING} "
                "to the hub's KEK folder (restore it from backup), or let the hub create one "
                "with TELLONCE_PRIVACY__CREATE_KEYS=true on a new store"
            ) from None
        self._kek(kek_id)
        return kek_id

    def wrap(self, data_key: bytes, aad: bytes) -> WrappedKey:
        kek_id = self.current_kek()
        return WrappedKey(kek_id, self._aead.seal(self._kek(kek_id), data_key, aad))

    def unwrap(self, key: WrappedKey, aad: bytes) -> bytes:
        try:
            return self._aead.open(self._kek(key.kek_id), key.wrapped, aad)
        except DecryptionError:
            raise DecryptionError(
                f"a data key wrapped under KEK {key.kek_id} does not authenticate: the row was "
                "altered or belongs to another person"
            ) from None

    def new_kek(self) -> str:
        kek_id, _ = self._make_kek()
        # Replacing ``current`` is atomic (rename), so a reader sees the old or the new id.
        self._write(self._folder / CURRENT, kek_id, replace=True)
        return kek_id

    def _first_kek(self) -> None:
        kek_id, kek = self._make_kek()
        if not self._write(self._folder / CURRENT, kek_id):
            # Another process made the first KEK at the same time and named it current:
            # keep its, drop ours (nothing was wrapped under it).
            kek.unlink(missing_ok=True)

    def _make_kek(self) -> tuple[str, Path]:
        """A new KEK file in the folder (made if missing), not yet current: its id and path."""
        self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        kek_id = secrets.token_hex(8)
        kek = self._folder / f"{kek_id}{SUFFIX}"
        self._write(kek, secrets.token_bytes(KEY_BYTES).hex())
        return kek_id, kek

    def _kek(self, kek_id: str) -> bytes:
        key = self._keks.get(kek_id)
        if key is not None:
            return key
        path = self._folder / f"{kek_id}{SUFFIX}"
        try:
            key = bytes.fromhex(path.read_text(encoding="ascii").strip())
        except FileNotFoundError:
            raise KeyStoreError(
                f"KEK {kek_id} is not in {self._folder}; data keys wrapped under it cannot be "
                f"unwrapped: restore the KEK folder from backup or fix {SETTING}"
            ) from None
        except (OSError, UnicodeDecodeError, ValueError):
            raise KeyStoreError(
                f"KEK file {path} cannot be read as hex; check its owner and restore it from backup"
            ) from None
        if len(key) != KEY_BYTES:
            raise KeyStoreError(f"KEK file {path} does not hold {KEY_BYTES} bytes")
        self._keks[kek_id] = key
        return key

    def _write(self, path: Path, text: str, *, replace: bool = False) -> bool:
        """Write ``path`` whole (``write_private``); False when it existed already and
        ``replace`` is not set (the file there is kept)."""
        try:
            return write_private(path, (text + "\n").encode("ascii"), replace=replace)
        except NoTempFile as exc:
            raise KeyStoreError(
                f"cannot write in the KEK folder {path.parent} ({exc.strerror}); create it or "
                f"set {SETTING} to another folder"
            ) from None
        except OSError as exc:
            raise KeyStoreError(f"cannot write {path} ({exc.strerror})") from None
