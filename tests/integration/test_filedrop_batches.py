"""A batch file-drop connector killed with SIGKILL mid-stream, again and again, publishes every
notification exactly once, in whole files only."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from connectors.filedrop.formats import BY_EXTENSION, CSV_COLUMNS
from connectors.filedrop.ledger import INDEX_NAME
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.events import EVENT_TYPES
from hub.wire.topics import RECEIPTS_TOPIC, notify_topic
from tests.watchdog import wait_until

from ..keyring import connector_env
from .harness import EVENT_TYPE, PUBLISHER, Harness, address

pytestmark = pytest.mark.integration

TELLONCE = shutil.which("tellonce", path=str(Path(sys.executable).parent)) or "tellonce"
RECIPIENT = "cra-individual"
BEFORE = 400  # notices on the topic before the first start
AFTER = 200  # notices published while the connector is down after the second kill
KILL_AT = (60, 200, 420)  # notices on disk (published or open batch) when each kill is sent
PROGRESS_BOUND_S = 60.0  # start-up (about 3 s to join the group) plus the work up to a kill
EXIT_BOUND_S = 120.0


def produce(harness: Harness, count: int) -> list[str]:
    """Put ``count`` AddressChanged notices on the recipient's topic, signed by the hub, as
    its relay does."""
    schema = EVENT_TYPES[EVENT_TYPE].notice_schema
    now = datetime.now(UTC)
    producer = harness.app.producer(harness.kafka)
    ids: list[str] = []
    try:
        for n in range(count):
            nid, local_id = str(uuid.uuid4()), f"CRA-{n % 7}"
            record = {
                "notification_id": nid,
                "recipient": RECIPIENT,
                "subject_id": local_id,
                "event_id": str(uuid.uuid4()),
                "event_source": PUBLISHER,
                "event_time": now,
                "disclosed_fields": ["effective_date", "new_address"],
                "consent_revision": "sha256:" + "0" * 64,
                "effective_date": date(2025, 1, 1),
                "new_address": address(f'{n} "Vieux" Chemin, app. 2', "Trois-Rivières"),
            }
            value = harness.app.codec.encode(schema, record)
            key = local_id.encode()
            headers = cloudevent_headers(nid, schema, now, subject=local_id)
            producer.send(
                notify_topic(RECIPIENT), key, value, harness.sign_notice(key, value, headers)
            )
            ids.append(nid)
        producer.flush()
    finally:
        producer.close()
    return ids


def start_connector(
    harness: Harness, drop: Path, fmt: str, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    env = harness.env(
        # Two per poll: commits often, so kills land between and within batches, and the run is
        # slow enough (a commit and a receipt flush per two) for the watcher to kill it
        # mid-stream rather than after the last notice.
        TELLONCE_HUB__BATCH_SIZE="2",
        # A killed member holds its partitions until its session expires: keep that short.
        TELLONCE_BROKER__SESSION_TIMEOUT_MS="2000",
        TELLONCE_BROKER__HEARTBEAT_INTERVAL_MS="500",
        **connector_env(RECIPIENT),
    )
    options = {"directory": drop, "format": fmt, "rotate_bytes": 16_384, "rotate_seconds": 1}
    command = [TELLONCE, "connector", "run", RECIPIENT, "--sink", "filedrop"]
    for key, value in options.items():
        command += ["--option", f"{key}={value}"]
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*command, *extra], env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )


def parse(path: Path) -> list[str]:
    """The notification ids of a published file, read as a back office would; fails on any
    partial or malformed record."""
    data = path.read_bytes()
    if path.suffix == ".csv":
        assert data.endswith(b"\r\n"), f"{path.name}: partial last row"
        reader = csv.DictReader(io.StringIO(data.decode(), newline=""), strict=True)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS, f"{path.name}: bad header"
        rows = list(reader)
        assert all(None not in r and json.loads(r["fields"])["new_address"] for r in rows)
        return [r["notification_id"] for r in rows]
    assert data.endswith(b"\n"), f"{path.name}: partial last line"
    lines = [json.loads(line) for line in data.splitlines()]
    assert all(r["recipient"] == RECIPIENT and r["fields"]["new_address"] for r in lines)
    return [r["notification_id"] for r in lines]


class DropWatcher:
    """Reads the drop folder as the run goes: every file seen under a final name must parse
    whole at once and never change afterwards."""

    def __init__(self, drop: Path, fmt: str) -> None:
        self.drop, self.fmt = drop, fmt
        self.published: dict[str, bytes] = {}

    def visible(self) -> list[Path]:
        if not self.drop.exists():
            return []  # the sink creates it at start
        return sorted(p for p in self.drop.iterdir() if not p.name.startswith("."))

    def temps(self) -> list[Path]:
        return sorted(self.drop.glob(".batch-*.tmp"))

    def on_disk(self) -> int:
        """Ids written so far: published files plus the complete records of open batches."""
        count = 0
        for path in self.visible():
            data = self.published.setdefault(path.name, path.read_bytes())
            assert path.read_bytes() == data, f"{path.name} changed after it was published"
            count += len(parse(path))
        for temp in self.temps():
            with contextlib.suppress(FileNotFoundError):  # renamed into view as we looked
                count += len(BY_EXTENSION[self.fmt].scan(temp.read_bytes()).ids)
        return count


def wait_for(
    watcher: DropWatcher, process: subprocess.Popen[bytes], at_least: int, log: Path
) -> int:
    seen = 0

    def enough() -> bool:
        nonlocal seen
        assert process.poll() is None, f"the connector exited early: {log.read_text()[-2000:]}"
        seen = watcher.on_disk()
        return seen >= at_least

    wait_until(
        enough,
        PROGRESS_BOUND_S,
        lambda: f"only {seen} notices on disk after the bound",
        every_s=0.002,
    )
    return seen


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_sigkill_mid_stream_publishes_each_notification_once_in_whole_files(
    fmt: str, harness: Harness, tmp_path: Path
) -> None:
    """Three kill -9s mid-stream, restarts, drain: each id in exactly one published batch,
    every published file whole, no temporary file left, one DELIVERED receipt at most per id."""
    drop, log = tmp_path / "drop", tmp_path / "connector.log"
    watcher = DropWatcher(drop, fmt)
    sent = produce(harness, BEFORE)
    kills: list[tuple[int, int]] = []  # (notices on disk, open batches) at each kill

    for number, threshold in enumerate(KILL_AT):
        connector = start_connector(harness, drop, fmt, log)
        try:
            wait_for(watcher, connector, threshold, log)
            os.kill(connector.pid, signal.SIGKILL)
            assert connector.wait(timeout=10) == -signal.SIGKILL
        finally:
            stop(connector)
        kills.append((watcher.on_disk(), len(watcher.temps())))
        if number == 1:
            sent += produce(harness, AFTER)
    assert all(0 < on_disk < len(sent) for on_disk, _ in kills), kills

    connector = start_connector(harness, drop, fmt, log, "--idle-exit", "3")
    try:
        code = connector.wait(timeout=EXIT_BOUND_S)
    finally:
        stop(connector)
    assert code == 0, log.read_text()[-2000:]

    assert watcher.temps() == []
    files = watcher.visible()
    assert all(p.name.startswith("batch-") and p.suffix == f".{fmt}" for p in files)
    watcher.on_disk()  # files seen during the run are unchanged
    ids = Counter(i for path in files for i in parse(path))
    assert set(ids) == set(sent)
    assert ids.most_common(1)[0][1] == 1, "a notification was published twice"
    indexed = [json.loads(line) for line in (drop / INDEX_NAME).read_text().splitlines()]
    assert {i for entry in indexed for i in entry["ids"]} == set(sent)

    receipts = [harness.decode(r.value) for r in harness.read(RECEIPTS_TOPIC)]
    delivered = Counter(r["notification_id"] for r in receipts if r["status"] == "DELIVERED")
    duplicates = sum(r["status"] == "DUPLICATE" for r in receipts)
    assert {r["notification_id"] for r in receipts} == set(sent)
    assert max(delivered.values()) == 1, "the sink answered DELIVERED twice for one id"
    print(
        f"{fmt}: {len(sent)} notices, {len(files)} files, kills at {kills}, "
        f"{duplicates} DUPLICATE receipts"
    )
