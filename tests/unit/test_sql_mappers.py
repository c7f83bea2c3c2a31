"""Outbox rows to records and back: header bytes survive the base64 the table stores them in."""

from __future__ import annotations

import binascii
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from hub.adapters.sql.mappers import outbox_from, outbox_values
from hub.model import OutboxMessage

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def test_outbox_headers_come_back_byte_for_byte() -> None:
    """Every header value, empty, binary or text, reads back as the bytes that were written."""
    headers = [
        ("ce_id", b"n-1"),
        ("empty", b""),
        ("binary", bytes(range(256))),
        ("é", "é".encode()),
    ]
    message = OutboxMessage("n-1", "t", b"k", b"v", headers, T0)
    row: Any = SimpleNamespace(**outbox_values(message), seq=1)
    assert outbox_from(row) == OutboxMessage("n-1", "t", b"k", b"v", headers, T0, seq=1)


def test_an_outbox_header_that_is_not_base64_is_a_binascii_error() -> None:
    """A damaged header column fails as base64.b64decode failed: binascii.Error."""
    row: Any = SimpleNamespace(
        message_id="n-1",
        topic="t",
        key=None,
        value=b"v",
        headers=[["ce_id", "abc"]],
        created_at=T0,
        seq=1,
    )
    with pytest.raises(binascii.Error, match="padding"):
        outbox_from(row)
