"""The ``tellonce`` command.

Exit codes: 0 success; 1 the work failed (a broker or database error, a demo outcome that did not
match); 2 the request was wrong (usage, settings, the broker refusing this client's TLS or SASL
credentials, unknown program, person or event type, a file that cannot be read, a payload the hub
would refuse); 130 interrupted (Ctrl-C).

Every failure is one ``tellonce: ...`` line saying what was wrong and what to do, never a
traceback. An error nobody foresaw is logged as one JSON line naming its class (never its
message, which may quote personal data) and exits 1.

Parsing and printing only: ``main`` reads the settings once and hands them to the command's
handler, which calls one use-case (in ``hub.delivery``, ``hub.consents``, ``hub.audit``,
``hub.privacy``, ``hub.wire``) through the composition root and prints its typed result.
``parser`` builds the argument parser from the command modules (``runtime``, ``connectors``,
``consent``, ``person``, ``audit``, ``keys``, ``wire``). It is argparse, not Typer: the
standard library, no click underneath, and the exit codes, messages and ``--help`` behaviour
the e2e tests pin stay as they are.

May import: everything in the hub, adapters only through ``hub.bootstrap`` where it builds
them; nothing imports the CLI.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from hub.cli.common import Handler
from hub.cli.parser import build_parser, command_words
from hub.config import logs
from hub.errors import (
    BrokerSecurityError,
    ConfigError,
    ConflictError,
    NotFoundError,
    PayloadError,
    SchemaCompatibilityError,
    TellonceError,
)

__all__ = ["Handler", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    if unknown := _unknown_variables():
        print(unknown, file=sys.stderr)
        return 2
    try:
        return _run(args)
    except KeyboardInterrupt:  # Ctrl-C: a line, not a traceback
        print("tellonce: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last resort: one JSON line naming the class, exit 1
        _log_unexpected(exc, command_words(parser, sys.argv[1:] if argv is None else argv))
        return 1


def _run(args: argparse.Namespace) -> int:
    # Settings are read once, here, and handed to the command: every handler sees the same.
    try:
        from hub.config.settings import Settings

        settings = Settings()
    except ValidationError as exc:
        print(f"tellonce: invalid settings: {_pydantic_problems(exc)}", file=sys.stderr)
        return 2
    logs.configure(args.log_level or settings.log_level, settings.log_format)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except BrokenPipeError:  # output piped into head or similar
        return 0
    except (
        ConfigError,
        BrokerSecurityError,
        NotFoundError,
        ConflictError,
        SchemaCompatibilityError,
        PayloadError,
    ) as exc:
        print(f"tellonce: {exc}", file=sys.stderr)
        return 2
    except TellonceError as exc:
        print(f"tellonce: {exc}", file=sys.stderr)
        return 1


def _log_unexpected(exc: Exception, command: str) -> None:
    """One JSON line on standard error: the error's class, the command and where it was
    raised. Never the message: it can quote the data being handled."""
    import traceback

    import structlog

    frames = traceback.extract_tb(exc.__traceback__)
    where = None
    if frames:
        where = f"{'/'.join(Path(frames[-1].filename).parts[-2:])}:{frames[-1].lineno}"
    logs.configure("error", "json")
    structlog.get_logger("hub.cli").error(
        "unexpected error; the command stopped. Please report this line (it holds no data "
        "from the request)",
        error=f"{type(exc).__module__}.{type(exc).__qualname__}",
        command=command,
        where=where,
    )


def _unknown_variables() -> str | None:
    """The message for TELLONCE_* variables that name no setting (a typo must not fall back to
    a default store silently), or None."""
    from hub.config.settings import unknown_variables

    problems = unknown_variables(os.environ)
    if not problems:
        return None
    return (
        "\n".join(f"tellonce: {problem}" for problem in problems)
        + f"\ntellonce: rename or unset {'it' if len(problems) == 1 else 'them'}; "
        "nested settings use a double underscore "
        "(TELLONCE_STORE__URL), and the README's Settings section lists them all"
    )


def _pydantic_problems(exc: ValidationError) -> str:
    return "; ".join(
        f"TELLONCE_{'__'.join(str(p).upper() for p in e['loc'])}: "
        + e["msg"].removeprefix("Value error, ")
        for e in exc.errors(include_url=False, include_input=False)
    )


if __name__ == "__main__":
    raise SystemExit(main())
