"""What the command modules share: the app, evidence from options, signal handling, and the
files a user names (read or written with a message, never a traceback)."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hub.errors import ConfigError

Handler = Callable[[argparse.Namespace], int]


def app_from_settings(*, read_only: bool = False) -> Any:
    """The composition root; ``read_only`` for commands that only read, which must never
    create or migrate a database (nor mint a signing key)."""
    from hub.bootstrap import App

    return App.from_settings(read_only=read_only)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def evidence_from(args: argparse.Namespace) -> Any:
    from consent.model import Evidence
    from hub.bootstrap import utc_now

    return Evidence(channel=args.channel, actor=args.actor, recorded_at=utc_now())


def read_text(path: str | Path, what: str, hint: str) -> str:
    """The text of a file the user named, or a ConfigError (exit 2) saying why not and what
    to do: ``cannot read the payload file x.json: no such file; <hint>``."""
    file = Path(path)
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        reason = "no such file"
    except IsADirectoryError:
        reason = "it is a folder, not a file"
    except PermissionError:
        reason = "permission denied"
    except UnicodeDecodeError:
        reason = "it is not UTF-8 text"
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise ConfigError(f"cannot read {what} {file}: {reason}; {hint}")


def output_file(path: str | Path, what: str, example: str) -> Path:
    """A file the command is about to write: its folder must exist and it must not be a folder
    (checked before any work starts, so a typo costs nothing)."""
    file = Path(path)
    folder = file.parent
    if not folder.is_dir():
        raise ConfigError(
            f"cannot write {what} {file}: the folder {folder} does not exist; create it first "
            f"(mkdir -p {folder}) or choose another path"
        )
    if file.is_dir():
        raise ConfigError(
            f"cannot write {what} {file}: it is a folder; give a file name, e.g. {file / example}"
        )
    return file
