"""The consents role: the hash-chained consent revisions, and consent changes received as
events (applied once per ``(ce_source, ce_id)``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from consent.model import ConsentRevision
from hub.model import InboundMessage


class ConsentRecorder(Protocol):
    """Consent revisions per (person, recipient, event type), and the consent events applied."""

    def consent_history(
        self, person_ids: Iterable[str]
    ) -> dict[tuple[str, str, str], list[ConsentRevision]]:
        """(person, recipient, event type) to its revisions in ``seq`` order, for these persons."""

    def add_consent(self, revision: ConsentRevision) -> None:
        """Add a revision of a known person; RecordStoreError when its (person, recipient,
        event type, seq) or its hash is taken."""

    def known_consent_events(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Those of the ``(source, event id)`` keys already applied."""

    def add_consent_event(
        self, key: tuple[str, str], person_id: str, message: InboundMessage, at: datetime
    ) -> None:
        """Mark the consent event ``key`` applied, from ``message``, for a known person;
        RecordStoreError when the key was applied before."""
