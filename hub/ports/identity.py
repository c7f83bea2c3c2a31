"""The identity role: persons, the links that tie a program's local id to a person, and the
person's data key that seals their personal data at rest (``hub.ports.privacy``).

A store keeps local ids sealed under their person's data key and finds them by a keyed blind
index (``hub.privacy.blind_index``), never in plaintext. Erasing a person destroys the data
key: their links stay, so their local ids still resolve to them (later events are withheld as
``erased``), but nothing personal of theirs opens any more.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from consent.model import IdentityLink


class IdentityRecorder(Protocol):
    """Persons and identity links; a program links a person once, a local id to one person."""

    def persons_for(self, program: str, local_ids: Iterable[str]) -> dict[str, str]:
        """Local id to person id, for those of ``local_ids`` that ``program`` has linked
        (erased persons included)."""

    def links_of(self, person_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Person id to (program to local id), for those of ``person_ids`` with any link;
        erased persons are left out (their local ids no longer open)."""

    def link_records(self, person_id: str) -> list[IdentityLink]:
        """Every link of ``person_id`` with its evidence, in the order they were added; empty
        for an erased person."""

    def person_exists(self, person_id: str) -> bool:
        """True when ``person_id`` was added."""

    def add_person(self, person_id: str, at: datetime) -> None:
        """Add a person with a new data key; RecordStoreError when the id is taken."""

    def add_link(self, link: IdentityLink) -> None:
        """Add a link of a known person; RecordStoreError when the person is unknown, the
        (program, local id) is linked already, or the person has a link in that program."""

    def erased_persons(self, person_ids: Iterable[str]) -> set[str]:
        """Those of ``person_ids`` that were erased."""

    def erase_person(self, person_id: str, at: datetime) -> None:
        """Destroy the person's data key, blank their sealed local ids, delete their queued
        messages (the caller settles those first) and mark them erased at ``at``; their links
        and blind indexes stay. Erasing an erased person changes nothing."""

    def rewrap_data_keys(self, limit: int) -> int:
        """Rewrap up to ``limit`` data keys that are not under the current KEK (erased persons
        have none), committing nothing itself; how many it rewrapped (0: rotation is done)."""

    def data_keys_by_kek(self) -> dict[str, int]:
        """How many data keys each KEK wraps (the progress of a rotation)."""
