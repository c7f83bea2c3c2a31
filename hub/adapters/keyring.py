"""The hub's own keys where the settings put them: the vault that seals personal data (KEK
holder and blind index key), the audit signing key and the pseudonym key.

The composition root (``hub.bootstrap``) and ``tellonce audit keygen`` build keys through
these functions only, so every command finds a key where the hub that made it left it.
"""

from __future__ import annotations

from pathlib import Path

from hub.adapters.keys import build_vault
from hub.adapters.pseudonym_key import load_pseudonym_key
from hub.adapters.secret_file import INDEX_KEY
from hub.adapters.signing import FileSigner, create_key
from hub.config.settings import Settings
from hub.privacy.vault import Vault


def vault_for(settings: Settings, *, create: bool) -> Vault:
    """Data keys per person under the configured KEK holder, and the blind index. Keys are
    read when first needed, and created then only when ``create`` and the settings allow it
    (a reader never mints a key that could open nothing)."""
    privacy, signing_key = settings.privacy, settings.audit.signing_key
    allowed = privacy.create_keys and create
    index_path = privacy.index_key_path(signing_key)
    return build_vault(
        privacy,
        privacy.kek_dir_path(signing_key),
        lambda: INDEX_KEY.load(index_path, create=allowed),
        create=allowed,
    )


def create_signing_key(path: Path) -> str:
    """Write a new Ed25519 audit signing key to ``path`` (never over one); its key id."""
    create_key(path)
    return FileSigner(path).key_id


def create_pseudonym_key(path: Path) -> None:
    """Write a new pseudonym key to ``path``."""
    load_pseudonym_key(path, create=True)
