"""Key files of 32 random bytes as hex: the pseudonym key and the blind index key; and
``write_private``, how every key file of the hub is written (these, the signing key, KEKs).

Created on first use when allowed: written to a temp file, mode 0600, then hard-linked into
place, so two processes starting together end up with the same key and an existing key is
never replaced. Messages name the file and the setting, never the key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hub.errors import ConfigError

KEY_BYTES = 32


class NoTempFile(OSError):
    """``write_private`` could not create its temp file in the target's folder (missing, or
    not writable): callers tell the user to create the folder or choose another path."""


def write_private(path: Path, data: bytes, *, replace: bool = False) -> bool:
    """Write ``data`` to ``path`` whole, mode 0600: a temp file beside it, fsynced, then
    hard-linked into place, or renamed over what is there with ``replace`` (both atomic).
    False when ``path`` existed and ``replace`` is not set: the file there is kept, so the
    first of several processes creating one key wins. NoTempFile or OSError otherwise."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise NoTempFile(exc.errno, exc.strerror) from exc
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@dataclass(frozen=True, slots=True)
class SecretFile:
    """What a key file is for, to name it in messages: ``what`` ("pseudonym key"), the
    ``setting`` that points at it, and how to create one (``create_hint``)."""

    what: str
    setting: str
    create_hint: str
    lost_hint: str

    def load(self, path: Path, *, create: bool) -> bytes:
        """The key in ``path`` (created first when missing and ``create``), or ConfigError."""
        if create and not path.exists():
            self._create(path)
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise ConfigError(
                f"{self.what} file {path} does not exist; set {self.setting} to the hub's key "
                f"file, or {self.create_hint}"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not hex text"
            raise ConfigError(
                f"{self.what} file {path} cannot be read ({reason}); check that it is the "
                "hub's key file and that the hub's user may read it"
            ) from None
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) < KEY_BYTES:
            raise ConfigError(
                f"{self.what} file {path} does not hold at least {KEY_BYTES} bytes as hex; "
                f"restore it from backup ({self.lost_hint})"
            )
        return key

    def _create(self, path: Path) -> None:
        try:
            # False: another process was first, and its key is kept.
            write_private(path, (secrets.token_bytes(KEY_BYTES).hex() + "\n").encode())
        except NoTempFile as exc:
            raise ConfigError(
                f"cannot create the {self.what} in {path.parent} ({exc.strerror}); "
                f"create the directory or set {self.setting} to another path"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot write the {self.what} {path} ({exc.strerror})") from None


PSEUDONYM_KEY = SecretFile(
    what="pseudonym key",
    setting="TELLONCE_AUDIT__PSEUDONYM_KEY",
    create_hint="create one with `tellonce audit keygen --pseudonym`",
    lost_hint="a new key would no longer match the pseudonyms in the log",
)

INDEX_KEY = SecretFile(
    what="blind index key",
    setting="TELLONCE_PRIVACY__INDEX_KEY",
    create_hint="let the hub create one on a new store (TELLONCE_PRIVACY__CREATE_KEYS=true)",
    lost_hint="a new key would no longer find the local ids already linked",
)
