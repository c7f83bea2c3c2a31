"""What the command modules share: the app, evidence from options, signal handling."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from typing import Any

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
