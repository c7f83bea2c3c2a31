"""Logging set-up: one JSON (or console) line per record on standard error; ids, never payloads.

tellonce logs through structlog; the libraries it drives (kafka-python, SQLAlchemy, Alembic,
psycopg, httpx, PyMySQL) log through the standard library. Both go through one handler whose
``structlog.stdlib.ProcessorFormatter`` renders every record alike, with ``level``,
``logger``, ``event`` and ``timestamp``, so a log shipper never meets a line it cannot parse.
Python warnings are routed there too.

Libraries are held above the levels at which they dump what they send, receive or bind,
whatever ``TELLONCE_LOG_LEVEL`` says (measured with kafka-python 3.0.12, SQLAlchemy 2.0):

- kafka-python at DEBUG logs every request and response with its records and keys
  (``kafka.protocol.parser`` "Send"/"Recv", ``kafka.net.connection`` "Request"/"Response",
  ``kafka.producer.kafka`` "Sending (key=... value=...)", ``kafka.producer.sender``): held at
  INFO when debugging, at ERROR otherwise (its INFO and WARNING lines are group chatter).
- SQLAlchemy at INFO echoes every statement with its bound parameters: WARNING.
- psycopg (server notices), httpx and httpcore (URLs, headers), urllib3 and PyMySQL: WARNING.
- Alembic and any other library: INFO when debugging, WARNING otherwise.

Second line of defence: bytes in a library record's arguments (kafka-python logs a response
buffer it cannot decode at ERROR) and kafka-python's protocol objects are replaced by their
size or class name before the record is rendered.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# Our own packages: the level asked for, debug included.
OWN_LOGGERS = ("hub", "consent", "connectors")
# Library logger -> (level when debugging, least level otherwise). Never below the first.
LIBRARY_LEVELS = {
    "kafka": (logging.INFO, logging.ERROR),
    "sqlalchemy": (logging.WARNING, logging.WARNING),
    "alembic": (logging.INFO, logging.WARNING),
    "psycopg": (logging.WARNING, logging.WARNING),
    "httpx": (logging.WARNING, logging.WARNING),
    "httpcore": (logging.WARNING, logging.WARNING),
    "urllib3": (logging.WARNING, logging.WARNING),
    "pymysql": (logging.WARNING, logging.WARNING),
}
OTHER_LIBRARIES = (logging.INFO, logging.WARNING)
# Modules whose objects carry records, keys or raw buffers when printed.
OPAQUE_MODULES = ("kafka.protocol", "kafka.record", "kafka.consumer.fetcher", "kafka.producer")

_handler: logging.Handler | None = None


def configure(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Send every log record, ours and the libraries', through one structlog formatter, to
    ``stream`` (standard error by default)."""
    global _handler
    wanted = LEVELS[level]
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(wanted),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # Tracebacks as plain text: never the frames' local variables.
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    handler.addFilter(redact_library_record)
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    _handler = handler
    debugging = wanted == logging.DEBUG
    root.setLevel(OTHER_LIBRARIES[0] if debugging else max(wanted, OTHER_LIBRARIES[1]))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(wanted)
    for name, (when_debugging, least) in LIBRARY_LEVELS.items():
        logging.getLogger(name).setLevel(when_debugging if debugging else max(wanted, least))
    logging.captureWarnings(True)


def redact_library_record(record: logging.LogRecord) -> bool:
    """Render a library record's message with bytes and protocol objects left out."""
    if isinstance(record.msg, dict):  # structlog's own: already an event dict
        return True
    args = record.args
    if not args:
        return True
    safe: Any = (
        {key: _opaque(value) for key, value in args.items()}
        if isinstance(args, dict)
        else tuple(_opaque(value) for value in args)
    )
    try:
        message = str(record.msg) % safe
    except (TypeError, ValueError, KeyError):
        message = f"{record.msg} (arguments withheld)"
    record.msg, record.args = message, None
    return True


def _opaque(value: Any) -> Any:
    """``value``, or a stand-in when printing it could show a payload."""
    if isinstance(value, bytes | bytearray | memoryview):
        return _Stand(f"<{len(value)} bytes>")
    module = type(value).__module__
    if module.startswith(OPAQUE_MODULES):
        return _Stand(f"<{type(value).__name__}>")
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # TopicPartition and the like
        inner = ", ".join(f"{f}={_text(v)}" for f, v in zip(value._fields, value, strict=True))
        return _Stand(f"{type(value).__name__}({inner})")
    if isinstance(value, list | tuple | set | frozenset):
        return _Stand(_container(value))
    if isinstance(value, dict):
        inner = ", ".join(f"{_text(k)}: {_text(v)}" for k, v in value.items())
        return _Stand("{" + inner + "}")
    return value


def _container(value: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any]) -> str:
    inner = ", ".join(_text(item) for item in value)
    return f"[{inner}]" if isinstance(value, list) else f"({inner})"


def _text(value: Any) -> str:
    safe = _opaque(value)
    return str(safe) if isinstance(safe, _Stand) else repr(safe)


class _Stand(str):
    """A stand-in that prints the same with %s and %r."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)
