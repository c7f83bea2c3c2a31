"""Ed25519 signing from a key file: the ``Signer`` port for audit checkpoints, consent receipts
and notices.

The key file is looked at again on every ``sign`` call (read again when it changed): that is
what makes "the signer is unavailable" a real state: a removed, unreadable or corrupt key file
fails the signature (``SignerError``, retriable, so the hub fails closed) and the hub recovers on
its own once the file is back. A file that now holds a *different* key is refused too: signing
with a key the verifiers do not know would produce checkpoints nobody can check.

Error messages name the file and the fix, never key material.
"""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hub.adapters.secret_file import NoTempFile, write_private
from hub.config.signing_keys import ProgramKey, key_id_of
from hub.errors import ConfigError, SignerError, VerificationError
from hub.ports import SignatureCheck

_MISSING_FIX = (
    "run `tellonce audit keygen` or set TELLONCE_AUDIT__SIGNING_KEY to an existing key file"
)


def load_public_key(public_key_pem: str) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM text; VerificationError for anything else."""
    try:
        key = serialization.load_pem_public_key(public_key_pem.encode("utf-8"))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise VerificationError(
            "the public key is not a readable PEM public key; "
            "give the hub's Ed25519 public key as PEM (-----BEGIN PUBLIC KEY-----)"
        ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise VerificationError(
            f"the public key is a {type(key).__name__}, not an Ed25519 key; "
            "give the hub's Ed25519 public key"
        )
    return key


def _key_id(public_key: Ed25519PublicKey) -> str:
    return key_id_of(_raw(public_key))


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def key_id_for(public_key_pem: str) -> str:
    """Stable id of a key: ``ed25519:`` + 16 hex digits of SHA-256 of the raw 32-byte key.

    Derived from the key itself, so verifiers compute it without being told and two hubs never
    disagree about which key signed what.
    """
    return _key_id(load_public_key(public_key_pem))


def create_key(path: Path, *, exist_ok: bool = False) -> None:
    """Write a new Ed25519 key as unencrypted PKCS8 PEM, mode 0600, atomically.

    Never overwrites: replacing the audit key would orphan every checkpoint signed so far.
    The key is written to a temp file in the same directory, then hard-linked into place,
    which fails when the file exists: of hub workers started together on one new key path,
    the first one's key stays and the others load it (``exist_ok``). A check before a rename
    let two workers each install a key, and the first to sign found the other's and stopped.
    """
    if path.exists() and not exist_ok:
        raise ConfigError(
            f"signing key file {path} already exists; refusing to overwrite it. "
            "Remove it yourself if you really mean to retire that key."
        )
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        written = write_private(path, pem)
    except NoTempFile as exc:
        raise ConfigError(
            f"cannot create the signing key in {path.parent} ({exc.strerror}); "
            "create the directory or choose another path"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot write the signing key {path} ({exc.strerror})") from exc
    if not written and not exist_ok:  # created between the check above and the link
        raise ConfigError(
            f"signing key file {path} already exists; refusing to overwrite it. "
            "Remove it yourself if you really mean to retire that key."
        )


def public_key_check(public_key_pem: str) -> SignatureCheck:
    """A ``check(message, signature)`` for one public key; False for any bad signature."""
    key = load_public_key(public_key_pem)

    def check(message: bytes, signature: bytes) -> bool:
        try:
            key.verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    return check


class FileSigner:
    """The ``Signer`` port over a PEM key file, re-read on each signature (see module doc)."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self._path = path
        self._cached: tuple[tuple[int, int, int, int], Ed25519PrivateKey] | None = None
        if create and not path.exists():
            create_key(path, exist_ok=True)  # another worker may be creating it right now
        self._public_key = self._read().public_key()
        self._key_id = _key_id(self._public_key)

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key_pem(self) -> str:
        return _public_pem(self._public_key)

    def directory_entry(self, valid_from: datetime) -> ProgramKey:
        """The ``hub_keys`` entry of this key, for the connectors that check notices."""
        return ProgramKey(
            id=self._key_id,
            public_key=base64.b64encode(_raw(self._public_key)).decode("ascii"),
            valid_from=valid_from,
        )

    def sign(self, message: bytes) -> bytes:
        return self._load().sign(message)

    def _load(self) -> Ed25519PrivateKey:
        # The file is looked at on every call (a missing or replaced key is noticed at once),
        # but read, parsed and checked again only when it changed: the hub signs every notice
        # with it. A key that is not this signer's is never kept, so every call refuses it.
        try:
            seen = self._path.stat()
        except OSError as exc:
            raise self._unreadable(exc) from exc
        stamp = (seen.st_ino, seen.st_size, seen.st_mtime_ns, seen.st_ctime_ns)
        if self._cached is not None and self._cached[0] == stamp:
            return self._cached[1]
        key = self._read()
        found = _key_id(key.public_key())
        if found != self._key_id:
            raise SignerError(
                f"signing key changed: key id {self._key_id} expected, {found} found in "
                f"{self._path}; put the original key back, or restart the hub to adopt the new "
                "key and publish its public key to verifiers"
            )
        self._cached = (stamp, key)
        return key

    def _unreadable(self, exc: OSError) -> SignerError:
        if isinstance(exc, FileNotFoundError):
            return SignerError(f"signing key file {self._path} does not exist; {_MISSING_FIX}")
        return SignerError(
            f"signing key file {self._path} cannot be read ({exc.strerror}); "
            "check that it is a file the hub's user may read"
        )

    def _read(self) -> Ed25519PrivateKey:
        path = self._path
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise self._unreadable(exc) from exc
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SignerError(
                f"signing key file {path} is not an unencrypted PEM private key (corrupt, "
                "truncated or password-protected); restore it from backup"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SignerError(
                f"signing key file {path} holds a {type(key).__name__}, not an Ed25519 key; "
                f"{_MISSING_FIX}"
            )
        return key
