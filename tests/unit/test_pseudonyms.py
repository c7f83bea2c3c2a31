"""Keyed hashes of publisher-supplied ids (hub.audit.pseudonyms) and their key file."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from hub.adapters.pseudonym_key import load_pseudonym_key
from hub.audit.pseudonyms import Pseudonyms
from hub.bootstrap import App
from hub.config.settings import AuditSettings, Settings
from hub.errors import ConfigError

KEY = bytes(range(32))


def test_a_pseudonym_is_the_prefixed_hmac_sha256_of_the_id() -> None:
    """of(id) is 'h:' + hex HMAC-SHA-256 under the key, so anyone with the key can recompute it."""
    expected = hmac.new(KEY, b"evt-1", hashlib.sha256).hexdigest()
    assert Pseudonyms(KEY).of("evt-1") == "h:" + expected


def test_the_same_key_gives_the_same_pseudonym_and_another_key_another() -> None:
    """Stable under one key (leaves match the store), unrelated under another."""
    assert Pseudonyms(KEY).of("evt-1") == Pseudonyms(bytes(KEY)).of("evt-1")
    assert Pseudonyms(KEY).of("evt-1") != Pseudonyms(KEY[::-1]).of("evt-1")
    assert Pseudonyms(KEY).of("evt-1") != Pseudonyms(KEY).of("evt-2")


def test_an_event_keeps_its_program_in_clear() -> None:
    """Leaves name an event as '<program>/h:<hash of ce_id>'."""
    ids = Pseudonyms(KEY)
    assert ids.event("bc-service-bc", "evt-1") == "bc-service-bc/" + ids.of("evt-1")


def test_a_short_key_is_refused() -> None:
    """A key under 32 bytes is refused rather than used."""
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Pseudonyms(b"short")


def test_a_lazy_key_is_loaded_once_on_first_use() -> None:
    """A key given as a loader is read when first needed, and only once."""
    loads: list[int] = []

    def load() -> bytes:
        loads.append(1)
        return KEY

    ids = Pseudonyms(load)
    assert loads == []
    assert ids.of("evt-1") == Pseudonyms(KEY).of("evt-1")
    ids.of("evt-2")
    assert loads == [1]


# -- the key file ----------------------------------------------------------------------------


def test_the_key_file_is_created_once_private_and_then_reused(tmp_path: Path) -> None:
    """create=True writes 32 random bytes as hex, mode 0600; later loads read the same key."""
    path = tmp_path / "hub.pseudonym-key"
    key = load_pseudonym_key(path, create=True)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == key.hex()
    assert load_pseudonym_key(path, create=True) == key
    assert load_pseudonym_key(path, create=False) == key
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_a_missing_key_file_names_the_setting(tmp_path: Path) -> None:
    """create=False and no file: a ConfigError naming the file and the setting."""
    path = tmp_path / "missing.pseudonym-key"
    with pytest.raises(ConfigError, match="TELLONCE_AUDIT__PSEUDONYM_KEY") as caught:
        load_pseudonym_key(path, create=False)
    assert str(path) in str(caught.value)
    assert not path.exists()


@pytest.mark.parametrize("content", ["not hex at all", "00ff", ""])
def test_a_corrupt_key_file_is_refused_without_showing_it(tmp_path: Path, content: str) -> None:
    """A file that holds no 32-byte hex key is refused; the message does not echo its content."""
    path = tmp_path / "bad.pseudonym-key"
    path.write_text(content)
    with pytest.raises(ConfigError, match="restore it from backup") as caught:
        load_pseudonym_key(path, create=True)
    if content:
        assert content not in str(caught.value)
    assert path.read_text() == content  # never replaced


def test_the_default_key_lives_beside_the_signing_key(tmp_path: Path) -> None:
    """Unset, TELLONCE_AUDIT__PSEUDONYM_KEY is the signing key's path with .pseudonym-key."""
    audit = AuditSettings(signing_key=tmp_path / "audit.pem")
    assert audit.pseudonym_key_path() == tmp_path / "audit.pseudonym-key"
    chosen = AuditSettings(signing_key=tmp_path / "audit.pem", pseudonym_key=tmp_path / "k")
    assert chosen.pseudonym_key_path() == tmp_path / "k"


def test_read_only_use_never_creates_the_key(tmp_path: Path) -> None:
    """App.pseudonyms(create=False) refuses a missing key even when the settings allow creation."""
    settings = Settings(audit=AuditSettings(signing_key=tmp_path / "audit.pem", create_key=True))
    app = App.from_settings(settings)
    with pytest.raises(ConfigError, match="does not exist"):
        app.pseudonyms(create=False).of("evt-1")
    assert not (tmp_path / "audit.pseudonym-key").exists()
    created = App.from_settings(settings).pseudonyms().of("evt-1")
    assert App.from_settings(settings).pseudonyms(create=False).of("evt-1") == created
