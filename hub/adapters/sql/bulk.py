"""Bulk inserts: PostgreSQL's COPY, executemany elsewhere.

A 200-event batch writes about 5,000 rows (decisions, outbox, audit leaves...). Through
SQLAlchemy's executemany each row's parameters are processed in Python and sent as a
pipelined INSERT; COPY streams them instead, in psycopg's C row formatter, and PostgreSQL
parses one statement per table. Same transaction, same constraints: a duplicate key or a
value too long fails the COPY exactly as it fails an INSERT, and the error is raised as the
DBAPIError SQLAlchemy would have raised, so the store's translation (RecordStoreError for a
refused record, which the worker's bisection relies on) does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, insert
from sqlalchemy.exc import DBAPIError


def insert_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``; none: no statement at all."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        _copy(connection, table, rows)
    else:
        connection.execute(insert(table), rows)


def _copy(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    dialect = connection.dialect
    names = list(rows[0])
    values_of = itemgetter(*names)  # every row by the same mapper: the same keys
    # The columns' own bind processing (JSON to psycopg's Json wrapper), as an INSERT would.
    processors: list[Callable[[Any], Any] | None] = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    quote = dialect.identifier_preparer.quote
    statement = (
        f"COPY {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(name) for name in names)}) FROM STDIN"
    )
    raw = connection.connection.driver_connection
    assert raw is not None  # an open connection inside a transaction
    dbapi_error: Any = dialect.loaded_dbapi.Error  # psycopg.Error; not imported: an extra
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = values_of(row) if len(names) > 1 else (values_of(row),)
                copy.write_row(
                    [
                        value if process is None or value is None else process(value)
                        for value, process in zip(values, processors, strict=True)
                    ]
                )
    except dbapi_error as exc:
        invalidated = dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)
        if invalidated:
            connection.invalidate(exc)  # a lost connection must not go back to the pool
        # Never the parameters: they may hold personal data.
        raise DBAPIError.instance(
            statement,
            None,
            exc,
            dbapi_error,
            hide_parameters=True,
            connection_invalidated=invalidated,
            dialect=dialect,
        ) from exc
