"""tellonce as production runs it: ``tellonce hub run`` and ``tellonce connector run`` as
processes of their own, on the test's store and cluster, stopped with SIGTERM (the totals line
they print then is read back) and SIGKILLed only when they outlast the bound. Only the
processes started here are ever signalled, by their pid."""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...harness import Harness
from ...test_crash_recovery import TELLONCE

STOP_LIMIT_S = 60.0  # a hub ends its batch, closes the relay's producer and the fence's reader


@dataclass
class Tellonce:
    """One tellonce process: its command, its standard output (the totals line) and its log."""

    name: str
    process: subprocess.Popen[bytes]
    out: Path
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def check(self) -> bool:
        """True while it runs; an AssertionError with its log once it has exited."""
        if self.alive():
            return True
        raise AssertionError(
            f"{self.name} exited with {self.process.returncode} during the run:\n{self.tail()}"
        )

    def stop(self) -> dict[str, Any]:
        """SIGTERM, wait for it to finish (bounded), and return the totals it printed."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=STOP_LIMIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(
                f"{self.name} did not stop within {STOP_LIMIT_S:.0f} s of SIGTERM:\n{self.tail()}"
            ) from None
        assert code == 0, f"{self.name} exited with {code}:\n{self.tail()}"
        lines = self.out.read_text().strip().splitlines()
        assert lines, f"{self.name} printed no totals:\n{self.tail()}"
        totals: dict[str, Any] = json.loads(lines[-1])
        return totals

    def kill(self) -> None:
        """SIGKILL, when a failed test leaves it running."""
        if self.alive():
            self.process.kill()
            self.process.wait(timeout=10)


def start(harness: Harness, folder: Path, name: str, *args: str, **env: str) -> Tellonce:
    """``tellonce *args`` on the harness's store and cluster, its output in ``folder``."""
    out, log = folder / f"{name}.out", folder / f"{name}.log"
    with open(out, "wb") as stdout, open(log, "wb") as stderr:
        process = subprocess.Popen(
            [TELLONCE, *args],
            env=harness.env(**env),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    return Tellonce(name, process, out, log)


def run(harness: Harness, *args: str, limit_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``tellonce *args`` to its end (an audit command, say), bounded."""
    return subprocess.run(
        [TELLONCE, *args],
        env=harness.env(),
        capture_output=True,
        text=True,
        timeout=limit_s,
        check=False,
    )
