"""Privacy notices a client is shown before consenting, and the hashes that pin their wording.

A consent revision records the version of the notice the client saw and the SHA-256 of its text
(ISO/IEC TS 27560 "notice" evidence), so a later edit of the wording cannot silently change what
the client agreed to. The hash is over a canonical form of both official-language texts: Unicode
NFC, ``\\n`` line endings, no surrounding blank space, as compact key-sorted UTF-8 JSON
``{"en": ..., "fr": ...}``. Anyone holding the two texts can recompute it.

Loaded from a TOML file (``hub/config/resources/notices.toml`` is the shipped, illustrative
example).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from consent.model import Evidence
from hub.config.tomlfiles import load_toml
from hub.errors import ConfigError, ConflictError, NotFoundError

MAX_VERSION_CHARS = 32  # the width of consent_revisions.notice_version


def canonical_text(text: str) -> str:
    """The form of one text that is hashed: NFC, ``\\n`` line endings, stripped."""
    unified = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", unified).strip()


def notice_hash(text_en: str, text_fr: str) -> str:
    """SHA-256 (hex) of the canonical form of both texts."""
    body = {"en": canonical_text(text_en), "fr": canonical_text(text_fr)}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Notice:
    version: str
    text_en: str
    text_fr: str
    sha256: str
    effective: date | None = None

    @classmethod
    def of(cls, version: str, text_en: str, text_fr: str, effective: date | None = None) -> Notice:
        return cls(
            version,
            canonical_text(text_en),
            canonical_text(text_fr),
            notice_hash(text_en, text_fr),
            effective,
        )


@dataclass(frozen=True, slots=True)
class Notices:
    """The published notice versions, oldest first."""

    items: tuple[Notice, ...]

    def __post_init__(self) -> None:
        if not self.items:
            raise ConfigError("the notices file lists no notice; add at least one [[notices]]")
        versions = [n.version for n in self.items]
        for version in versions:
            if versions.count(version) > 1:
                raise ConfigError(f"notice version {version!r} appears twice; versions are unique")

    @property
    def versions(self) -> list[str]:
        return [n.version for n in self.items]

    def get(self, version: str) -> Notice:
        for notice in self.items:
            if notice.version == version:
                return notice
        close = difflib.get_close_matches(version, self.versions, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise NotFoundError(
            f"unknown notice version {version!r}{hint}; known versions: {', '.join(self.versions)}"
        )

    def latest(self) -> Notice:
        """The version in use now: the latest effective date (the last listed breaks ties)."""
        ranked = sorted(
            enumerate(self.items), key=lambda item: (item[1].effective or date.min, item[0])
        )
        return ranked[-1][1]

    def shown(self, evidence: Evidence, version: str | None = None) -> Evidence:
        """``evidence`` that pins the notice the client was shown (default: the latest) by its
        version and the hash of its text, as a grant must."""
        notice = self.get(version) if version else self.latest()
        return dataclasses.replace(
            evidence, notice_version=notice.version, notice_hash=notice.sha256
        )

    def check(self, version: str, sha256: str) -> Notice:
        """The notice ``version``, provided ``sha256`` is its hash; else NotFound or Conflict."""
        notice = self.get(version)
        if sha256.lower() != notice.sha256:
            raise ConflictError(
                f"the notice hash does not match notice version {version!r}: the text the client "
                "was shown is not the published text of that version; send the version and "
                "hash 'tellonce consent notices' lists"
            )
        return notice


def load_notices(path: Path | None = None) -> Notices:
    """Read a notices file; None means the shipped one."""
    raw, origin = load_toml(
        path,
        shipped="notices.toml",
        what="notices file",
        hint="give a TOML file like hub/config/resources/notices.toml",
    )
    return Notices(tuple(_notice(item, origin) for item in raw.get("notices", [])))


def _notice(item: Any, origin: str) -> Notice:
    if not isinstance(item, dict):
        raise ConfigError(f"{origin}: each [[notices]] entry must be a table")
    version = item.get("version")
    if not isinstance(version, str) or not 1 <= len(version) <= MAX_VERSION_CHARS:
        raise ConfigError(f"{origin}: a notice version must be 1 to {MAX_VERSION_CHARS} characters")
    texts = []
    for name in ("text_en", "text_fr"):
        value = item.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{origin}: notice {version!r} needs a non-empty {name}")
        texts.append(value)
    effective = item.get("effective")
    if effective is not None and not isinstance(effective, date):
        raise ConfigError(f"{origin}: notice {version!r}: effective must be a date (2025-01-20)")
    return Notice.of(version, texts[0], texts[1], effective)
