"""A vault for tests and benchmarks: a real one (AES-256-GCM, a KEK folder, the blind index),
on a throwaway folder and a random index key, so nothing it seals outlives the run.

Nothing here needs pytest.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from hub.adapters.keys import AesGcmSealer, FileKeyWrapper
from hub.privacy.blind_index import BlindIndex
from hub.privacy.vault import Vault

__all__ = ["throwaway_vault"]


def throwaway_vault(folder: Path) -> Vault:
    """A vault whose KEKs live in ``folder`` (the first made on first use)."""
    return Vault(
        FileKeyWrapper(folder, create=True), AesGcmSealer(), BlindIndex(secrets.token_bytes(32))
    )
