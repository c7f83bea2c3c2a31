"""The identity role of the SQL transaction: persons with their data keys, identity links with
sealed local ids, erasure and KEK rotation (``hub.ports.identity``).

A local id is kept twice, neither time in plaintext: as its blind index (HMAC under the hub's
index key, unique per program, what look-ups use) and sealed under its person's data key
(what ``links_of`` gives back). Erasing a person destroys the data key and blanks the sealed
copies; the blind indexes stay, so later events about the person are still recognised.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update

from consent.model import IdentityLink
from hub.adapters.sql.mappers import link_from, link_values
from hub.adapters.sql.role import SqlRole, chunks, wrapped_key
from hub.adapters.sql.sealing import opened_local_id, sealed_local_id
from hub.adapters.sql.tables import identity_links, outbox, persons
from hub.errors import DecryptionError
from hub.model import WrappedKey

# A link's row with its person's data key: what opening its local id needs.
_LINKS = (
    select(identity_links, persons.c.kek_id, persons.c.wrapped_key)
    .join(persons, persons.c.person_id == identity_links.c.person_id)
    .where(persons.c.erased_at.is_(None))
)


class SqlIdentity(SqlRole):
    """Implements hub.ports.IdentityRecorder for ``SqlTransaction``."""

    def persons_for(self, program: str, local_ids: Iterable[str]) -> dict[str, str]:
        by_index = {self._vault.index(program, local): local for local in set(local_ids)}
        found: dict[str, str] = {}
        for chunk in chunks(sorted(by_index)):
            rows = self._c.execute(
                select(identity_links.c.local_id_index, identity_links.c.person_id).where(
                    identity_links.c.program == program,
                    identity_links.c.local_id_index.in_(chunk),
                )
            )
            found.update((by_index[index], str(person)) for index, person in rows)
        return found

    def links_of(self, person_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for chunk in chunks(sorted(set(person_ids))):
            for r in self._c.execute(_LINKS.where(identity_links.c.person_id.in_(chunk))):
                local_id = self._local_id(r)
                if local_id is not None:
                    found.setdefault(r.person_id, {})[r.program] = local_id
        return found

    def link_records(self, person_id: str) -> list[IdentityLink]:
        query = _LINKS.where(identity_links.c.person_id == person_id)
        rows = self._c.execute(query.order_by(identity_links.c.id))
        opened = [(r, self._local_id(r)) for r in rows]
        return [link_from(r, local_id) for r, local_id in opened if local_id is not None]

    def _local_id(self, r: Any) -> str | None:
        """The opened local id of a link row read with ``_LINKS``; None (warned about) when
        it does not open (``role``)."""
        key = wrapped_key(r.kek_id, r.wrapped_key)
        self._keys[r.person_id] = key  # the batch's notices about them seal with it next
        sealed = r.local_id_sealed  # None only when blanked by hand: the person is not erased
        if sealed is not None:
            with contextlib.suppress(DecryptionError):
                return opened_local_id(self._vault, key, r.person_id, r.program, sealed)
        self._left_out(
            f"link:{r.id}",
            "identity link does not open (altered or moved from another row): read as no "
            "link; restore the row from a backup",
            person=r.person_id,
            program=r.program,
            link=r.id,
        )
        return None

    def person_exists(self, person_id: str) -> bool:
        query = select(persons.c.person_id).where(persons.c.person_id == person_id)
        return self._c.execute(query).first() is not None

    def add_person(self, person_id: str, at: datetime) -> None:
        key = self._vault.new_key(person_id)
        self._c.execute(
            insert(persons).values(
                person_id=person_id, created_at=at, kek_id=key.kek_id, wrapped_key=key.wrapped
            )
        )
        self._keys[person_id] = key

    def add_link(self, link: IdentityLink) -> None:
        person, program = link.person_id, link.program
        keys = self._data_keys([person])
        # An unknown person has no key: the row goes in unsealed and its foreign key refuses
        # it, as for any other write (RecordStoreError).
        sealed = (
            sealed_local_id(self._vault, keys[person], person, program, link.local_id)
            if person in keys
            else None
        )
        index = self._vault.index(program, link.local_id)
        self._c.execute(insert(identity_links).values(link_values(link, index, sealed)))

    # -- erasure -----------------------------------------------------------------------------

    def erased_persons(self, person_ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(sorted(set(person_ids))):
            rows = self._c.execute(
                select(persons.c.person_id).where(
                    persons.c.person_id.in_(chunk), persons.c.erased_at.is_not(None)
                )
            )
            found.update(str(person) for (person,) in rows)
        return found

    def erase_person(self, person_id: str, at: datetime) -> None:
        # One UPDATE decides: a second erasure (or one racing this) finds the row erased and
        # changes nothing.
        erased = self._c.execute(
            update(persons)
            .where(persons.c.person_id == person_id, persons.c.erased_at.is_(None))
            .values(kek_id=None, wrapped_key=None, erased_at=at)
        )
        if erased.rowcount == 0:
            return
        self._c.execute(
            update(identity_links)
            .where(identity_links.c.person_id == person_id)
            .values(local_id_sealed=None)
        )
        self._c.execute(delete(outbox).where(outbox.c.person_id == person_id))
        self._keys[person_id] = None
        self._vault.forget(person_id)

    # -- KEK rotation ------------------------------------------------------------------------

    def rewrap_data_keys(self, limit: int) -> int:
        if limit <= 0:
            return 0
        current = self._vault.wrapper.current_kek()
        # Two ranges rather than ``!=``, so the kek_id index finds the keys still to do
        # without passing over the ones done (erased persons, kek_id NULL, match neither);
        # in no particular order, which lets the scan stop at ``limit``.
        stale = or_(persons.c.kek_id < current, persons.c.kek_id > current)
        query = (
            select(persons.c.person_id, persons.c.kek_id, persons.c.wrapped_key)
            .where(stale)
            .limit(limit)
        )
        if self._c.dialect.name == "postgresql":
            # Two rotations (or a rotation and an erasure) each take rows the other has not
            # locked, instead of waiting on them or rewrapping one key twice.
            query = query.with_for_update(skip_locked=True)
        rewrapped: list[tuple[str, WrappedKey]] = [
            (person, self._vault.rewrap(person, WrappedKey(kek_id, wrapped)))
            for person, kek_id, wrapped in self._c.execute(query)
        ]
        if rewrapped:  # one executemany; the key is bound under its own name
            self._c.execute(
                update(persons).where(persons.c.person_id == bindparam("person")),
                [
                    {"person": person, "kek_id": key.kek_id, "wrapped_key": key.wrapped}
                    for person, key in rewrapped
                ],
            )
            self._keys.update(rewrapped)
        return len(rewrapped)

    def data_keys_by_kek(self) -> dict[str, int]:
        rows = self._c.execute(
            select(persons.c.kek_id, func.count())
            .where(persons.c.kek_id.is_not(None))  # erased persons have no key
            .group_by(persons.c.kek_id)
        )
        return {str(kek_id): int(count) for kek_id, count in rows}
