"""The audit signing key file: made once, never replaced, even by workers that start together
on a new key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.adapters.signing import FileSigner, create_key
from hub.errors import ConfigError


def test_workers_racing_to_create_the_key_all_sign_with_the_first_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that saw no key file, but finds one when it installs its own, keeps the file
    it found: every worker then signs with one key instead of the last one stopping."""
    path = tmp_path / "audit-key.pem"
    first = FileSigner(path, create=True)
    original = path.read_bytes()
    monkeypatch.setattr(Path, "exists", lambda self: False)  # it looked before the first wrote
    second = FileSigner(path, create=True)
    assert second.key_id == first.key_id
    assert path.read_bytes() == original
    assert first.sign(b"checkpoint")  # the first worker still signs: its key is in the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit-key.pem"]  # no temp file left


def test_creating_a_key_over_one_made_meanwhile_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`audit keygen` on a path another process filled after the check says so and keeps it."""
    path = tmp_path / "audit-key.pem"
    create_key(path)
    original = path.read_bytes()
    monkeypatch.setattr(Path, "exists", lambda self: False)
    with pytest.raises(ConfigError, match="already exists; refusing to overwrite"):
        create_key(path)
    assert path.read_bytes() == original
