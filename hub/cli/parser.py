"""The ``tellonce`` argument parser: the top-level options and every command group.

Each group module (``runtime``, ``connectors``, ``consent``, ``person``, ``audit``, ``wire``)
registers its own commands, each with the handler it runs; this module only puts them in
``--help`` order.
Why argparse rather than Typer: see the module docstring of ``hub.cli``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hub.cli import audit, connectors, consent, person, runtime, wire
from hub.cli.common import Handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tellonce",
        description="Tell us once: pass a client's life event to every program they agreed to "
        "tell. Settings come from TELLONCE_* environment variables (see README).",
    )
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="override the log level"
    )
    commands = parser.add_subparsers(metavar="COMMAND")
    runtime.register(commands)
    connectors.register(commands)
    consent.register(commands)
    person.register(commands)
    audit.register(commands)
    wire.register(commands)
    runtime.register_db(commands)
    wire.register_directory(commands)
    _help_for_groups(parser)
    return parser


def command_words(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str:
    """The command words of ``argv`` (``audit prove``), without arguments or options."""
    words = []
    current = parser
    for token in argv:
        groups = _groups(current)
        if not groups:
            break
        if token in groups[0].choices:
            words.append(token)
            current = groups[0].choices[token]
    return " ".join(words) or "tellonce"


def _groups(
    parser: argparse.ArgumentParser,
) -> list[argparse._SubParsersAction[argparse.ArgumentParser]]:
    # argparse has no public way to walk its subcommands; _actions is stable since 3.2.
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def _help_for_groups(parser: argparse.ArgumentParser) -> None:
    """A command group run without an action (``tellonce dlq``) prints its own help, exit 2."""
    for action in _groups(parser):
        for child in action.choices.values():
            if _groups(child):
                child.set_defaults(handler=_usage(child))
                _help_for_groups(child)


def _usage(parser: argparse.ArgumentParser) -> Handler:
    def handler(_args: argparse.Namespace, _settings: object) -> int:
        parser.print_help(sys.stderr)
        return 2

    return handler
