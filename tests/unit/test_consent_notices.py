"""Privacy notices: the shipped versions, their canonical hash, and lookups that guide the user."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.consents.notices import Notice, load_notices, notice_hash
from hub.errors import ConfigError, ConflictError, NotFoundError


def test_shipped_notices_are_bilingual_and_versioned() -> None:
    """At least two versions ship, each with English and French text and a 64-hex hash."""
    notices = load_notices()
    assert len(notices.items) >= 2
    for notice in notices.items:
        assert "Privacy Act" in notice.text_en
        assert "Loi sur la protection des renseignements personnels" in notice.text_fr
        assert len(notice.sha256) == 64
    assert len({n.sha256 for n in notices.items}) == len(notices.items)


def test_latest_is_the_most_recent_effective_version() -> None:
    """latest() picks the version with the latest effective date."""
    notices = load_notices()
    assert notices.latest().version == "2025-01"
    assert notices.latest().effective == max(n.effective for n in notices.items if n.effective)


def test_hash_is_over_a_canonical_form_of_both_texts() -> None:
    """Line endings, surrounding space and Unicode composition do not change the hash."""
    composed = notice_hash("Notice\nline two", "Avis: données")
    assert notice_hash("  Notice\r\nline two\n", "Avis: donne\u0301es") == composed
    assert Notice.of("v", "Notice\r\nline two", "Avis: données").sha256 == composed


def test_either_language_changes_the_hash() -> None:
    """Editing the French text alone gives another hash: the wording is pinned in both."""
    assert notice_hash("same", "texte un") != notice_hash("same", "texte deux")
    assert notice_hash("one", "même") != notice_hash("two", "même")


def test_unknown_version_suggests_the_closest() -> None:
    """An unknown version answers 'did you mean' and lists the known ones."""
    with pytest.raises(NotFoundError, match=r"did you mean '2025-01'\?.*known versions"):
        load_notices().get("2025-1")


def test_check_refuses_a_hash_of_other_wording() -> None:
    """A version with a hash that is not its text's hash is a conflict."""
    notices = load_notices()
    latest = notices.latest()
    assert notices.check(latest.version, latest.sha256.upper()) == latest
    with pytest.raises(ConflictError, match="does not match notice version"):
        notices.check(latest.version, "0" * 64)


def test_duplicate_versions_in_a_file_are_refused(tmp_path: Path) -> None:
    """A notices file listing one version twice is a configuration error."""
    entry = '[[notices]]\nversion = "v1"\ntext_en = "a"\ntext_fr = "b"\n'
    path = tmp_path / "notices.toml"
    path.write_text(entry + entry, encoding="utf-8")
    with pytest.raises(ConfigError, match="appears twice"):
        load_notices(path)
