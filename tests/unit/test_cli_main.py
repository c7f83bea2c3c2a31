"""The command's last resort: an error nobody foresaw is one JSON line and exit 1, Ctrl-C is
one line and exit 130; never a traceback."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator

import pytest
import structlog

from hub import cli
from hub.cli import wire as cli_wire

SECRET = "Jane Doe, 1 Water Street"  # what an exception message might quote


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [n for n in os.environ if n.upper().startswith("TELLONCE_")]:
        monkeypatch.delenv(name)
    yield
    structlog.reset_defaults()  # main() configured logging for the whole process


def failing_with(error: BaseException) -> cli.Handler:
    def handler(_args: argparse.Namespace, _settings: object) -> int:
        raise error

    return handler


def test_unexpected_error_is_one_json_line_naming_its_class(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unforeseen exception exits 1 with one JSON line: its class, the command and where it
    was raised, but not its message (which may quote personal data)."""
    monkeypatch.setattr(cli_wire, "cmd_directory_show", failing_with(RuntimeError(SECRET)))
    code = cli.main(["directory", "show"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "error"
    assert entry["error"] == "builtins.RuntimeError"
    assert entry["command"] == "directory show"
    assert entry["where"].startswith("unit/test_cli_main.py:")
    assert SECRET not in err


def test_ctrl_c_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """KeyboardInterrupt from any command exits 130 with `tellonce: interrupted`."""
    monkeypatch.setattr(cli_wire, "cmd_directory_show", failing_with(KeyboardInterrupt()))
    assert cli.main(["directory", "show"]) == 130
    assert capsys.readouterr().err == "tellonce: interrupted\n"
