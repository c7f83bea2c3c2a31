"""The identity role: persons and the links that tie a program's local id to a person."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from consent.model import IdentityLink


class IdentityRecorder(Protocol):
    """Persons and identity links; a program links a person once, a local id to one person."""

    def persons_for(self, program: str, local_ids: Iterable[str]) -> dict[str, str]:
        """Local id to person id, for those of ``local_ids`` that ``program`` has linked."""

    def links_of(self, person_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Person id to (program to local id), for those of ``person_ids`` with any link."""

    def link_records(self, person_id: str) -> list[IdentityLink]:
        """Every link of ``person_id`` with its evidence, in the order they were added."""

    def person_exists(self, person_id: str) -> bool:
        """True when ``person_id`` was added."""

    def add_person(self, person_id: str, at: datetime) -> None:
        """Add a person; RecordStoreError when the id is taken."""

    def add_link(self, link: IdentityLink) -> None:
        """Add a link of a known person; RecordStoreError when the person is unknown, the
        (program, local id) is linked already, or the person has a link in that program."""
