"""hub.config.logs: every record, ours and the libraries', is one JSON line; no data dumps."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from kafka.structs import TopicPartition

from hub.config import logs
from tests.logstate import logging_restored

SECRET = b"\x00\x00\x00\x00\x01\x10SBC-1001\x0e3 Oak St"


@pytest.fixture
def configured() -> Iterator[None]:
    """hub.config.logs configured for the test, the process-wide logging state restored after."""
    with logging_restored():
        yield


def lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines()]


@pytest.mark.usefixtures("configured")
def test_debug_keeps_library_payload_dumps_out(capsys: pytest.CaptureFixture[str]) -> None:
    """At debug, kafka-python's DEBUG dumps and SQLAlchemy's echoed parameters are not logged."""
    logs.configure("debug")
    logging.getLogger("kafka.protocol.parser").debug("<conn> Recv: %r", SECRET)
    logging.getLogger("kafka.producer.kafka").debug("Sending (key=%r value=%r)", b"k", SECRET)
    logging.getLogger("sqlalchemy.engine.Engine").info("[generated] %r", ("SBC-1001",))
    logging.getLogger("psycopg").info("NOTICE: %s", "SBC-1001")
    structlog.get_logger("hub.processing.life_events").debug("own debug line", count=1)
    err = capsys.readouterr().err
    assert [(e["logger"], e["event"]) for e in lines(err)] == [
        ("hub.processing.life_events", "own debug line")
    ]


@pytest.mark.usefixtures("configured")
def test_library_records_are_json_with_bytes_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    """A library record becomes one JSON line; bytes in its arguments show as their size."""
    logs.configure("debug")
    logging.getLogger("kafka.protocol.parser").error(
        "Unable to decode %d-byte buffer: %r", len(SECRET), SECRET
    )
    logging.getLogger("kafka.consumer.fetcher").info(
        "positions %s, headers %s", {TopicPartition("t", 1): 5}, [("ce_id", b"evt-1")]
    )
    (decode, positions) = lines(capsys.readouterr().err)
    assert decode["event"] == f"Unable to decode {len(SECRET)}-byte buffer: <{len(SECRET)} bytes>"
    assert {decode["level"], decode["logger"]} == {"error", "kafka.protocol.parser"}
    assert "timestamp" in decode
    assert positions["event"] == (
        "positions {TopicPartition(topic='t', partition=1): 5}, headers [('ce_id', <5 bytes>)]"
    )


@pytest.mark.usefixtures("configured")
def test_a_record_that_cannot_be_formatted_still_is_one_json_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Arguments that do not fit the message are withheld rather than breaking the line."""
    logs.configure("info")
    assert logs._handler is not None
    # Straight to the handler: pytest's own capture handler would trip over it first.
    logs._handler.handle(
        logging.LogRecord("kafka", logging.ERROR, __file__, 1, "offset %d", (SECRET,), None)
    )
    (entry,) = lines(capsys.readouterr().err)
    assert entry["event"] == "offset %d (arguments withheld)"


@pytest.mark.usefixtures("configured")
def test_info_hides_library_chatter_but_not_our_warnings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """At info, kafka-python below ERROR and other libraries below WARNING stay quiet."""
    logs.configure("info")
    logging.getLogger("kafka.coordinator").warning("Heartbeat failed")
    logging.getLogger("alembic.runtime.migration").info("Running upgrade")
    logging.getLogger("some.library").info("chatter")
    structlog.get_logger("hub.processing.worker").info("batch committed", records=3)
    structlog.get_logger("hub.processing.worker").debug("not at info")
    logging.getLogger("some.library").warning("worth knowing")
    entries = lines(capsys.readouterr().err)
    assert [(e["logger"], e["event"]) for e in entries] == [
        ("hub.processing.worker", "batch committed"),
        ("some.library", "worth knowing"),
    ]


@pytest.mark.usefixtures("configured")
def test_exceptions_are_rendered_without_local_values(capsys: pytest.CaptureFixture[str]) -> None:
    """A logged exception carries its traceback as text, never the frames' local variables."""
    logs.configure("info")
    secret = "SBC-1001"
    try:
        raise RuntimeError("broker gone")
    except RuntimeError:
        structlog.get_logger("hub.processing.worker").exception("batch failed")
    assert secret  # a local of the failing frame
    (entry,) = lines(capsys.readouterr().err)
    assert "RuntimeError: broker gone" in entry["exception"]
    assert secret not in json.dumps(entry)


@pytest.mark.usefixtures("configured")
def test_configuring_twice_keeps_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    """configure() replaces its handler rather than adding another (no doubled lines)."""
    logs.configure("info")
    logs.configure("info", "console")
    structlog.get_logger("hub.processing.worker").warning("once")
    err = capsys.readouterr().err
    assert err.count("once") == 1
    assert not err.lstrip().startswith("{")  # console rendering, the last one asked for
