"""The file drop sink: per-notification JSON files and JSON Lines / CSV batch files."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from structlog.testing import capture_logs

import connectors.filedrop.batches as batches_module
import connectors.filedrop.single as single_module
from connectors.contract import Notification, Outcome
from connectors.filedrop import FileDropSink
from connectors.filedrop.durable import sync_file, write_at
from connectors.filedrop.formats import CSV_COLUMNS
from connectors.filedrop.ledger import INDEX_NAME
from connectors.testing import SimulatedCrash, SinkContract, sample_notification
from hub.testing.fakes import ManualClock
from tests.watchdog import wait_until

START = 1_750_000_000.0  # 2025-06-15T15:06:40Z


def visible(folder: Path) -> list[Path]:
    """The files a back office reads: no leading dot, sorted as it would take them."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())


def records(path: Path) -> list[dict[str, Any]]:
    """Every record of a published file; fails on anything partial or malformed."""
    data = path.read_bytes()
    if path.suffix == ".csv":
        assert data.endswith(b"\r\n"), f"{path.name} ends in a partial row"
        reader = csv.DictReader(io.StringIO(data.decode(), newline=""), strict=True)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = list(reader)
        assert all(None not in row and len(row) == len(CSV_COLUMNS) for row in rows)
        return rows
    assert data.endswith(b"\n"), f"{path.name} ends in a partial line"
    return [json.loads(line) for line in data.splitlines()]


def visible_ids(folder: Path) -> list[str]:
    return [r["notification_id"] for p in visible(folder) for r in records(p)]


def temp_batches(folder: Path) -> list[Path]:
    return sorted(folder.glob(".batch-*.tmp"))


def notice(**overrides: Any) -> Notification:
    return sample_notification(**overrides)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "inbox"


@pytest.fixture
def clock() -> ManualClock[float]:
    return ManualClock(START)


@pytest.fixture
def open_drop(folder: Path, clock: ManualClock[float]) -> Iterator[Callable[..., FileDropSink]]:
    """Opens sinks on ``folder`` (fake clock, 60 s rotation unless told) and closes them all."""
    opened: list[FileDropSink] = []

    def open_(fmt: str = "jsonl", **options: str) -> FileDropSink:
        sink = FileDropSink(
            "bc-msp", {"directory": str(folder), "format": fmt, **options}, clock=clock
        )
        opened.append(sink)
        return sink

    yield open_
    for sink in opened:
        sink.close()


# -- contract --------------------------------------------------------------------------------


class FileDropContract(SinkContract):
    options: ClassVar[dict[str, str]] = {}

    @pytest.fixture(autouse=True)
    def far_side(self, tmp_path: Path) -> None:
        self.folder = tmp_path / "drop"

    def make_sink(self) -> FileDropSink:
        return FileDropSink("bc-msp", {"directory": str(self.folder), **self.options})

    def delivered(self) -> list[str]:
        return visible_ids(self.folder)

    @contextmanager
    def break_far_side(self) -> Iterator[None]:
        def full(*_args: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(batches_module, "write_at", full)
            patch.setattr(single_module, "write_at", full)
            yield

    @contextmanager
    def crash_mid_delivery(self, sink: Any) -> Iterator[None]:
        real = write_at

        def half_then_crash(fd: int, data: bytes, offset: int) -> None:
            if b"bc-msp" in data:  # the record, not a CSV header
                real(fd, data[: len(data) // 2], offset)
                raise SimulatedCrash
            real(fd, data, offset)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(batches_module, "write_at", half_then_crash)
            patch.setattr(single_module, "write_at", half_then_crash)
            yield


class TestJsonFileDropContract(FileDropContract):
    options: ClassVar[dict[str, str]] = {}


class TestJsonLinesFileDropContract(FileDropContract):
    options: ClassVar[dict[str, str]] = {"format": "jsonl"}


class TestCsvFileDropContract(FileDropContract):
    options: ClassVar[dict[str, str]] = {"format": "csv"}


# -- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs --option directory"),
        ({"directory": "x", "format": "xml"}, "format must be one of json, jsonl, csv"),
        ({"directory": "x", "rotate_bytes": "10"}, "apply to format=jsonl or csv only"),
        ({"directory": "x", "format": "csv", "rotate_bytes": "0"}, "rotate_bytes must be"),
        ({"directory": "x", "format": "csv", "rotate_seconds": "soon"}, "must be a number"),
        ({"directory": "x", "format": "csv", "rotate_seconds": "nan"}, "rotate_seconds must"),
        ({"directory": "x", "format": "jsonl", "csv_formula_guard": "on"}, "format=csv only"),
        ({"directory": "x", "format": "csv", "csv_formula_guard": "maybe"}, "on or off"),
        ({"directory": "x", "rotate": "1"}, "unknown filedrop option(s) rotate"),
    ],
)
def test_bad_options_are_refused_with_what_to_fix(
    options: dict[str, str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wrong or misplaced options raise ValueError (a ConfigError to the user) naming them."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FileDropSink("bc-msp", options)


def test_second_batch_sink_on_one_folder_is_refused(
    open_drop: Callable[..., FileDropSink],
) -> None:
    """Two batch sinks never share a folder: the second refuses to start."""
    open_drop("jsonl")
    with pytest.raises(ValueError, match="another filedrop sink is writing"):
        open_drop("csv")


def test_unsafe_notification_id_fails_without_writing(
    open_drop: Callable[..., FileDropSink], folder: Path
) -> None:
    """An id that is no safe file-name token answers FAILED and touches no file."""
    sink = open_drop("json")
    result = sink.deliver(notice(notification_id="../../etc/passwd"))
    assert (result.outcome, result.error) == (Outcome.FAILED, "BadId")
    assert visible(folder) == []


# -- content ---------------------------------------------------------------------------------


def test_jsonl_lines_round_trip(open_drop: Callable[..., FileDropSink], folder: Path) -> None:
    """Each JSON Lines record is the notification's to_json(), one per line, in order."""
    sink = open_drop("jsonl")
    sent = [notice(), notice(fields={"note": 'a "quoted",\nmulti-line é'}), notice(fields={})]
    assert [sink.deliver(n).outcome for n in sent] == [Outcome.DELIVERED] * 3
    sink.close()

    (batch,) = visible(folder)
    assert batch.name.startswith("batch-20250615T150640Z-")
    assert batch.suffix == ".jsonl"
    assert batch.read_bytes() == b"".join(n.to_json().encode() + b"\n" for n in sent)
    assert records(batch) == [json.loads(n.to_json()) for n in sent]


def test_csv_rows_round_trip(open_drop: Callable[..., FileDropSink], folder: Path) -> None:
    """CSV rows carry the fixed columns verbatim and the disclosed fields as one JSON cell,
    RFC 4180 quoted, CRLF terminated, UTF-8 without a byte-order mark."""
    sink = open_drop("csv")
    tricky = {"lines": ['12 "Old" Mill Rd, Unit 3', "line\r\ntwo"], "city": "Trois-Rivières"}
    sent = [notice(), notice(subject_id='MSP,1 "x"', fields={"new_address": tricky})]
    for n in sent:
        assert sink.deliver(n).outcome is Outcome.DELIVERED
    sink.close()

    (batch,) = visible(folder)
    data = batch.read_bytes()
    assert data.startswith(b"notification_id,recipient,subject_id,event_type,event_id,")
    assert not data.startswith(b"\xef\xbb\xbf")
    assert b'"MSP,1 ""x"""' in data  # quoted, inner quotes doubled
    assert "Trois-Rivières".encode() in data  # UTF-8, not escaped
    rows = records(batch)
    for row, n in zip(rows, sent, strict=True):
        body = json.loads(n.to_json())
        assert {c: row[c] for c in CSV_COLUMNS[:-1]} == {c: body[c] for c in CSV_COLUMNS[:-1]}
        assert json.loads(row["fields"]) == body["fields"]


@pytest.mark.parametrize(
    ("guard", "expected"), [("on", "'=HYPERLINK(1)"), ("off", "=HYPERLINK(1)")]
)
def test_csv_formula_guard(
    guard: str, expected: str, open_drop: Callable[..., FileDropSink], folder: Path
) -> None:
    """With the guard on, a cell a spreadsheet would evaluate gets a leading quote; off, it is
    verbatim; the fields cell (always '{...') is never changed."""
    sink = open_drop("csv", csv_formula_guard=guard)
    sink.deliver(notice(event_id="=HYPERLINK(1)", fields={"a": "=1+1"}))
    sink.close()

    (row,) = records(visible(folder)[0])
    assert row["event_id"] == expected
    assert json.loads(row["fields"]) == {"a": "=1+1"}


# -- rotation --------------------------------------------------------------------------------


def test_rotation_by_size_keeps_each_batch_within_the_limit(
    open_drop: Callable[..., FileDropSink], folder: Path
) -> None:
    """A batch is published before the next record would overfill it; close publishes the rest."""
    record = len(notice().to_json()) + 1
    sink = open_drop("jsonl", rotate_bytes=str(record * 3 + 10))
    sent = [notice() for _ in range(7)]
    for n in sent:
        sink.deliver(n)

    assert [len(records(p)) for p in visible(folder)] == [3, 3]
    assert len(temp_batches(folder)) == 1
    sink.close()
    assert [len(records(p)) for p in visible(folder)] == [3, 3, 1]
    assert all(p.stat().st_size <= record * 3 + 10 for p in visible(folder))
    assert visible_ids(folder) == [n.notification_id for n in sent]


def test_record_larger_than_the_limit_gets_a_batch_of_its_own(
    open_drop: Callable[..., FileDropSink], folder: Path
) -> None:
    """A record bigger than rotate_bytes is still delivered, alone in its batch."""
    sink = open_drop("jsonl", rotate_bytes="100")
    sent = [notice(), notice()]
    assert [sink.deliver(n).outcome for n in sent] == [Outcome.DELIVERED] * 2
    assert [len(records(p)) for p in visible(folder)] == [1, 1]
    assert temp_batches(folder) == []


def test_rotation_by_time_on_deliver_and_flush(
    open_drop: Callable[..., FileDropSink], folder: Path, clock: ManualClock[float]
) -> None:
    """A batch is published once rotate_seconds passed since its first record: by the next
    deliver (before appending) or by flush."""
    sink = open_drop("jsonl", rotate_seconds="60")
    first, second, third = notice(), notice(), notice()
    sink.deliver(first)
    clock.now += 59
    sink.deliver(second)
    sink.flush()
    assert visible(folder) == []

    clock.now += 1
    sink.deliver(third)  # publishes first + second, then opens a new batch
    assert visible_ids(folder) == [first.notification_id, second.notification_id]
    clock.now += 60
    sink.flush()
    assert visible_ids(folder)[-1] == third.notification_id
    assert temp_batches(folder) == []


def test_idle_batch_is_published_when_its_time_is_up(folder: Path) -> None:
    """With no further deliveries or flushes, the batch still appears after rotate_seconds."""
    options = {"directory": str(folder), "format": "jsonl", "rotate_seconds": "0.2"}
    sink = FileDropSink("bc-msp", options)
    try:
        n = notice()
        sink.deliver(n)
        wait_until(lambda: visible(folder), 5, "no batch published", every_s=0.02)
        assert visible_ids(folder) == [n.notification_id]
    finally:
        sink.close()


def test_close_publishes_the_open_batch_and_is_safe_twice(
    open_drop: Callable[..., FileDropSink], folder: Path
) -> None:
    """close() renames the open batch into view; a second close() changes nothing."""
    sink = open_drop("csv")
    n = notice()
    sink.deliver(n)
    assert visible(folder) == []
    sink.close()
    sink.close()
    assert visible_ids(folder) == [n.notification_id]
    assert temp_batches(folder) == []


# -- idempotency -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_redelivery_is_duplicate_in_the_open_batch_after_publish_and_after_reopening(
    fmt: str, open_drop: Callable[..., FileDropSink], folder: Path, clock: ManualClock[float]
) -> None:
    """DUPLICATE for an id in the open batch, in a published batch, after close and reopen,
    after a kill with the batch still open, and after the back office took the files."""
    sink = open_drop(fmt)
    published, still_open = notice(), notice()
    assert sink.deliver(published).outcome is Outcome.DELIVERED
    assert sink.deliver(published).outcome is Outcome.DUPLICATE  # open batch
    clock.now += 60
    sink.deliver(still_open)  # publishes the first batch
    assert sink.deliver(published).outcome is Outcome.DUPLICATE  # published
    sink.abandon()  # killed with still_open in the open batch

    after_kill = open_drop(fmt)
    assert after_kill.deliver(still_open).outcome is Outcome.DUPLICATE
    assert after_kill.deliver(published).outcome is Outcome.DUPLICATE
    after_kill.close()
    for path in visible(folder):
        path.unlink()  # the back office took them

    reopened = open_drop(fmt)
    assert reopened.deliver(published).outcome is Outcome.DUPLICATE
    assert reopened.deliver(still_open).outcome is Outcome.DUPLICATE
    assert reopened.deliver(notice()).outcome is Outcome.DELIVERED


def test_format_change_keeps_what_was_delivered(
    open_drop: Callable[..., FileDropSink], folder: Path
) -> None:
    """Ids delivered as JSON files are DUPLICATE in a batch format and the other way round,
    and a batch left open by a killed jsonl run is published by the json sink's start."""
    as_json, as_batch, left_open = notice(), notice(), notice()
    open_drop("json").deliver(as_json)
    batch_sink = open_drop("jsonl")
    assert batch_sink.deliver(as_json).outcome is Outcome.DUPLICATE
    batch_sink.deliver(as_batch)
    batch_sink.close()
    killed = open_drop("csv")
    killed.deliver(left_open)
    killed.abandon()

    json_sink = open_drop("json")
    assert json_sink.deliver(as_batch).outcome is Outcome.DUPLICATE
    assert json_sink.deliver(left_open).outcome is Outcome.DUPLICATE
    assert sorted(visible_ids(folder)) == sorted(
        n.notification_id for n in (as_json, as_batch, left_open)
    )
    assert temp_batches(folder) == []


# -- crashes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "torn"),
    [("jsonl", b'{"consent_revision": "sha'), ("csv", b'id-9,bc-msp,MSP-1,Addr,"a\r\nb')],
)
def test_torn_last_record_is_cut_and_redelivered(
    fmt: str, torn: bytes, open_drop: Callable[..., FileDropSink], folder: Path
) -> None:
    """After a kill mid-write, the open batch is cut after its last complete record: those
    stay delivered (DUPLICATE), the torn one was never acknowledged and is DELIVERED again."""
    sink = open_drop(fmt)
    kept, torn_one = [notice(), notice()], notice()
    for n in kept:
        sink.deliver(n)
    sink.abandon()
    (temp,) = temp_batches(folder)
    with open(temp, "ab") as out:
        out.write(torn)
    good = temp.stat().st_size - len(torn)

    with capture_logs() as logs:
        restarted = open_drop(fmt)
    assert {"event": "filedrop torn batch cut", "bytes": len(torn)}.items() <= logs[0].items()
    assert temp.stat().st_size == good  # continued: same batch, cut to its complete records
    assert [restarted.deliver(n).outcome for n in kept] == [Outcome.DUPLICATE] * 2
    assert restarted.deliver(torn_one).outcome is Outcome.DELIVERED
    restarted.close()
    assert visible_ids(folder) == [n.notification_id for n in [*kept, torn_one]]


def test_kill_between_index_and_rename_publishes_once(
    open_drop: Callable[..., FileDropSink], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill after the index line and before the rename: the next start takes the batch up
    again under its name, its ids stay DUPLICATE, and it is published once."""
    sink = open_drop("jsonl")
    n = notice()
    sink.deliver(n)
    with monkeypatch.context() as patch:
        patch.setattr(os, "rename", _crash)
        with pytest.raises(SimulatedCrash):
            sink.close()
    sink.abandon()
    assert visible(folder) == []
    assert len(temp_batches(folder)) == 1
    assert n.notification_id in (folder / INDEX_NAME).read_text()

    restarted = open_drop("jsonl")
    assert restarted.deliver(n).outcome is Outcome.DUPLICATE
    later = notice()
    restarted.deliver(later)
    restarted.close()
    assert visible_ids(folder) == [n.notification_id, later.notification_id]
    assert temp_batches(folder) == []


def test_close_after_an_interrupted_write_publishes_whole_records_only(
    open_drop: Callable[..., FileDropSink], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write cut short by an exception other than OSError leaves a torn tail; close() still
    puts only the whole records into view."""
    sink = open_drop("jsonl")
    whole = notice()
    sink.deliver(whole)

    def half(fd: int, data: bytes, offset: int) -> None:
        write_at(fd, data[: len(data) // 2], offset)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(batches_module, "write_at", half)
        with pytest.raises(KeyboardInterrupt):
            sink.deliver(notice())
    sink.close()
    assert visible_ids(folder) == [whole.notification_id]


def test_visible_files_are_never_partial_at_any_step(
    open_drop: Callable[..., FileDropSink], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked at every write, sync and rename while batches fill and rotate: each file under
    a final name parses whole, and is never written again once it is there."""
    seen: dict[str, bytes] = {}
    checks = 0

    def check() -> None:
        nonlocal checks
        checks += 1
        for path in visible(folder):
            records(path)
            assert seen.setdefault(path.name, path.read_bytes()) == path.read_bytes()

    def checked(call: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            check()
            result = call(*args)
            check()
            return result

        return run

    for name in ("write_at", "sync_file", "sync_dir"):
        monkeypatch.setattr(batches_module, name, checked(getattr(batches_module, name)))
    monkeypatch.setattr(os, "rename", checked(os.rename))
    record = len(notice().to_json()) + 1
    for fmt in ("jsonl", "csv"):
        sink = open_drop(fmt, rotate_bytes=str(record * 4))
        for _ in range(25):
            assert sink.deliver(notice()).outcome is Outcome.DELIVERED
        sink.close()
    assert len(visible(folder)) >= 12
    assert checks > 200
    assert len(visible_ids(folder)) == 50


# -- durability ------------------------------------------------------------------------------


def test_deliver_syncs_each_record_until_the_runner_flushes(
    open_drop: Callable[..., FileDropSink], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without flush() every DELIVERED record is synced before deliver returns; once the
    runner calls flush(), records are synced once per flush instead."""
    syncs: list[int] = []
    real = sync_file

    def counted(fd: int) -> None:
        syncs.append(fd)
        real(fd)

    monkeypatch.setattr(batches_module, "sync_file", counted)
    sink = open_drop("jsonl")
    sink.deliver(notice())  # opens the batch (one sync) and appends (one sync)
    sink.deliver(notice())
    assert len(syncs) == 3

    sink.flush()
    for _ in range(5):
        sink.deliver(notice())
    assert len(syncs) == 3
    sink.flush()
    assert len(syncs) == 4


def test_failed_flush_forgets_unsynced_records_so_they_are_delivered_again(
    open_drop: Callable[..., FileDropSink], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If flush cannot sync, it raises and cuts the records since the last good sync: their
    redelivery is DELIVERED, not a DUPLICATE of data that may not be on disk."""
    sink = open_drop("jsonl")
    synced = notice()
    sink.deliver(synced)
    sink.flush()
    unsynced = [notice(), notice()]
    for n in unsynced:
        sink.deliver(n)

    with monkeypatch.context() as patch:
        patch.setattr(batches_module, "sync_file", _io_error)
        with pytest.raises(OSError, match="Input/output error"):
            sink.flush()
    assert [sink.deliver(n).outcome for n in unsynced] == [Outcome.DELIVERED] * 2
    assert sink.deliver(synced).outcome is Outcome.DUPLICATE
    sink.close()
    assert visible_ids(folder) == [n.notification_id for n in [synced, *unsynced]]


def test_write_failure_answers_retry_without_personal_data(
    open_drop: Callable[..., FileDropSink], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error is RETRY with error OSError and the system's reason only; nothing torn
    is left behind, and the retry is DELIVERED."""
    sink = open_drop("csv")
    sink.deliver(notice())
    n = notice()
    with monkeypatch.context() as patch:
        patch.setattr(batches_module, "sync_file", _io_error)
        result = sink.deliver(n)
    assert result.outcome is Outcome.RETRY
    assert (result.error, result.reason) == (
        "OSError",
        "cannot write to the drop folder: Input/output error",
    )
    assert sink.deliver(n).outcome is Outcome.DELIVERED
    sink.close()
    assert len(visible_ids(folder)) == 2


def test_failed_publish_steps_are_retried_without_repeating_what_succeeded(
    open_drop: Callable[..., FileDropSink],
    folder: Path,
    clock: ManualClock[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failing rename makes the next deliver RETRY, a failing folder sync after the rename
    is only logged; the next tries finish the publish with one index line and one file."""
    sink = open_drop("jsonl")
    first, second = notice(), notice()
    sink.deliver(first)
    clock.now += 60
    with monkeypatch.context() as patch:
        patch.setattr(os, "rename", _io_error)
        result = sink.deliver(second)
    assert (result.outcome, result.error) == (Outcome.RETRY, "OSError")
    with monkeypatch.context() as patch:
        patch.setattr(batches_module, "sync_dir", _io_error)
        with capture_logs() as logs:
            sink.flush()  # renames, then cannot sync the folder
    assert [e["event"] for e in logs] == [
        "filedrop batch published",
        "filedrop batch not published; will retry",
    ]

    assert sink.deliver(second).outcome is Outcome.DELIVERED
    sink.close()
    assert visible_ids(folder) == [first.notification_id, second.notification_id]
    assert len((folder / INDEX_NAME).read_text().splitlines()) == 2


def test_json_mode_finishes_an_interrupted_rename_at_start(
    open_drop: Callable[..., FileDropSink], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """format=json: a kill after the delivered marker and before the rename is finished at the
    next start; a temporary file without a marker is removed."""
    sink = open_drop("json")
    n = notice(event_time=datetime(2025, 1, 2, tzinfo=UTC), fields={"d": date(2025, 1, 1)})
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", _crash)
        with pytest.raises(SimulatedCrash):
            sink.deliver(n)
    (folder / ".never-acknowledged.json.tmp").write_text("{")
    assert visible(folder) == []

    restarted = open_drop("json")
    assert [p.name for p in visible(folder)] == [f"{n.notification_id}.json"]
    assert json.loads(visible(folder)[0].read_text()) == json.loads(n.to_json())
    assert restarted.deliver(n).outcome is Outcome.DUPLICATE
    assert not list(folder.glob(".*.json.tmp"))


def _crash(*_args: object) -> None:
    raise SimulatedCrash


def _io_error(*_args: object) -> None:
    raise OSError(errno.EIO, os.strerror(errno.EIO))
