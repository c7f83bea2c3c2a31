"""What every role of the SQL transaction shares: the open connection, the vault that seals
personal values, whole-batch writes, the data keys read in this transaction, and what to do
with a sealed value that does not open.

``SqlTransaction`` (``transaction``) is built from one class per reason to change: identity
and data keys (``identity``), the outbox (``outbox``), and the rest; each stands on ``SqlRole``.

A sealed value that does not open (altered, or moved from another row: associated data binds
each to its row) must not stop the hub for everyone. The store leaves its row out of what it
gives back, as if it were not there, and names the row once per store at warning (ids only,
never content); the row itself stays for an operator to restore or delete. So a notice that
does not open is never published (``outbox_backlog`` keeps counting it), and a link that does
not open reads as no link (the event is withheld from that program, never sent elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import structlog
from sqlalchemy import Connection, Table, Text, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY

from hub.adapters.sql.bulk import insert_rows
from hub.adapters.sql.tables import persons
from hub.model import WrappedKey
from hub.privacy.vault import Vault

log = structlog.get_logger(__name__)

# Bound IN lists; SQLite allows 32k parameters, PostgreSQL 65k, and plans stay small.
CHUNK = 500

T = TypeVar("T")


def chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def wrapped_key(kek_id: str | None, wrapped: bytes | None) -> WrappedKey | None:
    """The data key of a persons row; None once the person was erased."""
    return None if kek_id is None or wrapped is None else WrappedKey(kek_id, wrapped)


class SqlRole:
    """The connection and vault of one transaction (``hub.adapters.sql.transaction``);
    ``unopened`` is the store's set of rows already warned about, shared by its transactions."""

    def __init__(self, connection: Connection, vault: Vault, unopened: set[str]) -> None:
        self._c = connection
        self._vault = vault
        self._unopened = unopened
        # Data keys read or made in this transaction: person id to key (None: erased). A
        # batch seals many rows of few persons; each key is read once.
        self._keys: dict[str, WrappedKey | None] = {}

    def _left_out(self, row: str, event: str, **ids: object) -> None:
        """Warn, once per store, that the row named ``row`` does not open and is left out."""
        if row not in self._unopened:
            self._unopened.add(row)
            log.warning(event, **ids)

    def _insert_all(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """One COPY (PostgreSQL) or executemany for ``rows``; none: no statement at all."""
        insert_rows(self._c, table, rows)

    def _id_sets(self, column: Any, ids: Sequence[str]) -> Iterator[Any]:
        """Conditions ``column`` in ``ids``: on PostgreSQL one ``= ANY(array)`` (one parameter,
        so psycopg can cache the statement: a 500-item IN list is re-parsed at every call),
        elsewhere one IN list per chunk."""
        if self._c.dialect.name == "postgresql":
            yield column == any_(bindparam("ids", list(ids), type_=ARRAY(Text)))
            return
        for chunk in chunks(list(ids)):
            yield column.in_(chunk)

    def _data_keys(self, person_ids: Iterable[str]) -> dict[str, WrappedKey | None]:
        """The data keys of those of ``person_ids`` that exist (None: erased); the ones this
        transaction has not seen yet in one query (one per 500 on SQLite)."""
        wanted = set(person_ids)
        missing = sorted(wanted - self._keys.keys())
        for ids in self._id_sets(persons.c.person_id, missing) if missing else ():
            query = select(persons.c.person_id, persons.c.kek_id, persons.c.wrapped_key)
            for person, kek_id, wrapped in self._c.execute(query.where(ids)):
                self._keys[person] = wrapped_key(kek_id, wrapped)
        return {p: self._keys[p] for p in wanted if p in self._keys}
