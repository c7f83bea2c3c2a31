"""How the SQL store names a failed transaction: the data of a record (not retriable, the worker
sets the record aside) or the database itself (retriable, the worker pauses), by SQLSTATE class;
never with the driver's message, which quotes the values."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from psycopg import errors as pg
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError

from hub.adapters.sql.store import translated
from hub.errors import RecordStoreError, StoreError

VALUES = "Failing row contains (SBC-POISON-7, 12 Nightshade Row)"


def wrapped(kind: type[DBAPIError], orig: Exception) -> DBAPIError:
    return kind("INSERT INTO events ...", {}, orig)


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (wrapped(IntegrityError, pg.CheckViolation(VALUES)), "CheckViolation"),  # 23514
        (wrapped(IntegrityError, pg.UniqueViolation(VALUES)), "UniqueViolation"),  # 23505
        (wrapped(DataError, pg.StringDataRightTruncation(VALUES)), "StringDataRightTruncation"),
        (wrapped(DataError, pg.NumericValueOutOfRange(VALUES)), "NumericValueOutOfRange"),
        (wrapped(DataError, pg.UntranslatableCharacter(VALUES)), "UntranslatableCharacter"),
        (wrapped(DataError, psycopg.DataError(VALUES)), "DataError"),  # NUL, refused client-side
        (wrapped(IntegrityError, sqlite3.IntegrityError(VALUES)), "IntegrityError"),
    ],
    ids=["check", "unique", "too-long", "out-of-range", "encoding", "nul", "sqlite"],
)
def test_a_write_the_data_breaks_is_a_record_error(error: DBAPIError, cause: str) -> None:
    """SQLSTATE classes 22 and 23 (and SQLite's IntegrityError) are the record's: not
    retriable, named by the driver's error class only."""
    result = translated(error)
    assert isinstance(result, RecordStoreError)
    assert not result.retriable
    assert result.cause == cause
    assert cause in str(result)
    assert "Nightshade" not in str(result)


@pytest.mark.parametrize(
    "error",
    [
        wrapped(OperationalError, psycopg.OperationalError("connection refused")),
        wrapped(OperationalError, pg.AdminShutdown(VALUES)),  # 57P01
        wrapped(OperationalError, pg.SerializationFailure(VALUES)),  # 40001
        wrapped(OperationalError, pg.DeadlockDetected(VALUES)),  # 40P01
        wrapped(OperationalError, pg.DiskFull(VALUES)),  # 53100
        wrapped(OperationalError, sqlite3.OperationalError("database is locked")),
        wrapped(IntegrityError, pg.UniqueViolation('Key (leaf_index)=(7) "audit_leaves"')),
    ],
    ids=["refused", "shutdown", "serialization", "deadlock", "disk-full", "locked", "audit-race"],
)
def test_a_failing_database_is_retriable(error: DBAPIError) -> None:
    """Connections, timeouts, serialization failures, deadlocks, resources, operator
    intervention, and two writers racing for the next audit leaf: retry, never set aside."""
    result = translated(error)
    assert type(result) is StoreError
    assert result.retriable
    assert "Nightshade" not in str(result)
