"""The store fence as an operator meets it: a second `tellonce hub run` on another store is
refused while the group works with the first; on the same store it joins."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import TELLONCE, full_env, run
from tests.watchdog import wait_until

pytestmark = pytest.mark.e2e

FENCE_PASSED_S = 60.0


@pytest.fixture
def bootstrap() -> Iterator[str]:
    """A `tellonce broker` running for the test; its address."""
    broker = subprocess.Popen(
        [TELLONCE, "broker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert broker.stdout is not None
        first = broker.stdout.readline()
        assert "listening on 127.0.0.1:" in first, first
        yield first.rsplit(" ", 1)[1].strip()
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.communicate(timeout=10)


def _env(tmp_path: Path, name: str, bootstrap: str) -> dict[str, str]:
    return {
        "TELLONCE_STORE__URL": f"sqlite:///{tmp_path / name}.db",
        "TELLONCE_AUDIT__SIGNING_KEY": str(tmp_path / f"{name}-key.pem"),
        "TELLONCE_BROKER__BOOTSTRAP_SERVERS": bootstrap,
        "TELLONCE_LOG_LEVEL": "info",
    }


def _wait_for_log(process: subprocess.Popen[str], log: Path, event: str) -> None:
    """Wait until the process logged ``event`` (JSON lines in ``log``); fail if it exits or
    never does."""

    def logged() -> bool:
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("event") == event:
                return True
        assert process.poll() is None, f"the hub exited: {log.read_text()}"
        return False

    wait_until(
        logged, FENCE_PASSED_S, f"no {event!r} log line within {FENCE_PASSED_S:.0f} s", every_s=0.2
    )


def test_second_hub_on_another_store_is_refused_and_the_same_store_joins(
    tmp_path: Path, bootstrap: str
) -> None:
    """While a hub works with store A, a hub on store B exits 2 naming the group and both store
    ids; a hub on store A joins (exit 0); store B with its own group runs too."""
    first = _env(tmp_path, "hub", bootstrap)
    stray = _env(tmp_path, "stray", bootstrap)
    log = tmp_path / "hub.log"
    with log.open("w") as stderr:
        hub = subprocess.Popen(
            [TELLONCE, "hub", "run"],
            env=full_env(first),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        _wait_for_log(hub, log, "store fence passed")

        refused = run("hub", "run", "--idle-exit", "1", env=stray)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        group_store = run("db", "id", env=first).stdout.strip()
        stray_store = run("db", "id", env=stray).stdout.strip()
        assert len(group_store) == len(stray_store) == 36  # UUIDs
        assert group_store != stray_store
        message = refused.stderr
        assert "consumer group 'tellonce-hub' works with another store" in message
        assert group_store in message
        assert stray_store in message
        assert "TELLONCE_STORE__URL" in message
        assert "TELLONCE_HUB__GROUP_ID" in message
        assert str(tmp_path) not in message  # store ids, never URLs or paths
        assert refused.stdout == ""  # refused before the join: no totals

        same_store = run("hub", "run", "--idle-exit", "1", env=first)
        assert same_store.returncode == 0, same_store.stderr

        own_group = run(
            "hub", "run", "--idle-exit", "1", env={**stray, "TELLONCE_HUB__GROUP_ID": "stray-hub"}
        )
        assert own_group.returncode == 0, own_group.stderr
    finally:
        hub.send_signal(signal.SIGTERM)
        out, _ = hub.communicate(timeout=30)
    assert hub.returncode == 0
    assert "hub" in json.loads(out)
