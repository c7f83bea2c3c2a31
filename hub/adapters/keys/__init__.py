"""Keys that protect personal data at rest: the AES-256-GCM ``Sealer`` (``aesgcm``) and the
``KeyWrapper`` adapters that hold the key-encryption keys (``keyfile``: a key folder;
``pkcs11``: an HSM token). ``build_vault`` assembles the vault the store seals with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hub.adapters.keys.aesgcm import AesGcmSealer
from hub.adapters.keys.keyfile import FileKeyWrapper
from hub.config.settings import PrivacySettings
from hub.errors import ConfigError
from hub.ports.privacy import KeyWrapper
from hub.privacy.blind_index import BlindIndex
from hub.privacy.vault import Vault

__all__ = ["AesGcmSealer", "FileKeyWrapper", "build_vault", "key_wrapper"]


def key_wrapper(settings: PrivacySettings, kek_dir: Path, *, create: bool) -> KeyWrapper:
    """The KEK holder the settings name; ConfigError when its settings are incomplete."""
    if settings.key_wrapper == "file":
        return FileKeyWrapper(kek_dir, create=create)
    raise ConfigError(f"key wrapper {settings.key_wrapper!r} is not available yet")


def build_vault(
    settings: PrivacySettings,
    kek_dir: Path,
    index_key: bytes | Callable[[], bytes],
    *,
    create: bool,
) -> Vault:
    """The vault over the configured KEK holder, AES-256-GCM and the blind index key."""
    return Vault(
        key_wrapper(settings, kek_dir, create=create), AesGcmSealer(), BlindIndex(index_key)
    )
