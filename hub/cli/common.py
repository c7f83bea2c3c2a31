"""What the command modules share: the handler type, the app, evidence from options, signal
handling, and the files a user names (read or written with a message, never a traceback).

A handler gets the parsed arguments and the settings ``main`` read once for this invocation.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hub.config.files import unreadable
from hub.errors import ConfigError

if TYPE_CHECKING:  # the composition root imports every adapter: load it when a command runs
    from consent.model import Evidence
    from hub.bootstrap import App
    from hub.config.settings import Settings

    # What ``add_subparsers`` returns: each command group registers its commands on one.
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]

Handler = Callable[[argparse.Namespace, "Settings"], int]


def app_from_settings(settings: Settings, *, read_only: bool = False) -> App:
    """The composition root; ``read_only`` for commands that only read, which must never
    create or migrate a database (nor mint a signing key)."""
    from hub.bootstrap import App

    return App.from_settings(settings, read_only=read_only)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def evidence_from(args: argparse.Namespace) -> Evidence:
    from consent.model import Evidence
    from hub.bootstrap import utc_now

    return Evidence(channel=args.channel, actor=args.actor, recorded_at=utc_now())


def read_text(path: str | Path, what: str, hint: str) -> str:
    """The text of a file the user named, or a ConfigError (exit 2) saying why not and what
    to do: ``cannot read the payload file x.json: no such file; <hint>``."""
    file = Path(path)
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {file}: {unreadable(exc)}; {hint}") from None


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


# -- parser construction -------------------------------------------------------------------------


def group(commands: Commands, name: str, help: str) -> Commands:
    """A command group (``tellonce dlq``) whose actions are added to what this returns."""
    return commands.add_parser(name, help=help).add_subparsers(metavar="ACTION")


def command(
    commands: Commands,
    name: str,
    handler: Handler,
    help: str,
    *,
    description: str | None = None,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """One command, run by ``handler``; its arguments are added to what this returns."""
    parser = commands.add_parser(name, help=help, description=description, epilog=epilog)
    parser.set_defaults(handler=handler)
    return parser


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")


def idle_exit_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--idle-exit", type=float, metavar="SECONDS", help="exit after this long with no work"
    )
