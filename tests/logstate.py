"""The process-wide logging state a test changes with ``hub.config.logs.configure``, put back
as it was afterwards: a structlog configuration left at a level filters records out of later
tests' ``capture_logs``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import structlog

from hub.config import logs


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """Run the block, then remove tellonce's handler and restore the root's and tellonce's and
    the libraries' logger levels, warnings capture and structlog's defaults."""
    root = logging.getLogger()
    names = [*logs.OWN_LOGGERS, *logs.LIBRARY_LEVELS]
    levels = {name: logging.getLogger(name).level for name in names}
    root_level = root.level
    try:
        yield
    finally:
        if logs._handler is not None:
            root.removeHandler(logs._handler)
            logs._handler = None
        root.setLevel(root_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        logging.captureWarnings(False)
        structlog.reset_defaults()
