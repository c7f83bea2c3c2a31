"""The pseudonym key file: 32 random bytes, hex, that key the hashes of publisher-supplied ids.

A secret of its own rather than one derived from the Ed25519 signing key: the signing key may
be rotated (checkpoints name their key id), but every pseudonym in the log must stay
computable for reconciliation and look-ups; and a privacy officer who looks ids up needs this
key, not the power to sign checkpoints. Lose it and existing pseudonyms can no longer be
matched to the store: back it up with the signing key.

Created on first use like the signing key (``TELLONCE_AUDIT__CREATE_KEY``), the way every key
file is (``hub.adapters.secret_file``).
"""

from __future__ import annotations

from pathlib import Path

from hub.adapters.secret_file import PSEUDONYM_KEY

SETTING = PSEUDONYM_KEY.setting


def load_pseudonym_key(path: Path, *, create: bool) -> bytes:
    """The key in ``path`` (created first when missing and ``create``), or ConfigError."""
    return PSEUDONYM_KEY.load(path, create=create)
