"""The consents role: the hash-chained consent revisions, and consent changes received as
events (applied once per ``(ce_source, ce_id)``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from consent.model import ConsentRevision
from hub.model import AppliedConsentEvent


class ConsentRecorder(Protocol):
    """Consent revisions per (person, recipient, event type), and the consent events applied."""

    def consent_history(
        self, person_ids: Iterable[str]
    ) -> dict[tuple[str, str, str], list[ConsentRevision]]:
        """(person, recipient, event type) to its revisions in ``seq`` order, for these persons."""

    def add_consents(self, revisions: Sequence[ConsentRevision]) -> None:
        """Add revisions of known persons in one write; RecordStoreError when a (person,
        recipient, event type, seq) or a hash is taken."""

    def known_consent_events(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Those of the ``(source, event id)`` keys already applied."""

    def add_consent_events(self, applied: Sequence[AppliedConsentEvent]) -> None:
        """Mark consent events applied, for known persons, in one write; RecordStoreError when
        a ``(source, event id)`` was applied before."""
