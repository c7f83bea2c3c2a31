"""The pseudonym key file: 32 random bytes, hex, that key the hashes of publisher-supplied ids.

A secret of its own rather than one derived from the Ed25519 signing key: the signing key may
be rotated (checkpoints name their key id), but every pseudonym in the log must stay
computable for reconciliation and look-ups; and a privacy officer who looks ids up needs this
key, not the power to sign checkpoints. Lose it and existing pseudonyms can no longer be
matched to the store: back it up with the signing key.

Created on first use like the signing key (``TELLONCE_AUDIT__CREATE_KEY``): written to a temp
file, mode 0600, then hard-linked into place, so two processes starting together end up with
the same key and an existing key is never replaced. Messages name the file, never the key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from hub.audit.pseudonyms import MIN_KEY_BYTES
from hub.errors import ConfigError

SETTING = "TELLONCE_AUDIT__PSEUDONYM_KEY"


def load_pseudonym_key(path: Path, *, create: bool) -> bytes:
    """The key in ``path`` (created first when missing and ``create``), or ConfigError."""
    if create and not path.exists():
        _create(path)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"pseudonym key file {path} does not exist; set {SETTING} to the hub's key file, "
            "or create one with `tellonce audit keygen --pseudonym`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not hex text"
        raise ConfigError(
            f"pseudonym key file {path} cannot be read ({reason}); check that it is the "
            "hub's key file and that the hub's user may read it"
        ) from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"pseudonym key file {path} does not hold at least {MIN_KEY_BYTES} bytes as hex; "
            "restore it from backup (a new key would no longer match the pseudonyms in the log)"
        )
    return key


def _create(path: Path) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(
            f"cannot create the pseudonym key in {path.parent} ({exc.strerror}); "
            f"create the directory or set {SETTING} to another path"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(secrets.token_bytes(MIN_KEY_BYTES).hex() + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process was first: keep its key
            os.link(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write the pseudonym key {path} ({exc.strerror})") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
