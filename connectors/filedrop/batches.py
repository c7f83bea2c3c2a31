"""``format=jsonl`` and ``format=csv``: notifications appended to a batch file that is renamed
into view when it reaches ``rotate_bytes`` or ``rotate_seconds``.

Layout of the drop folder (the back office reads only the names without a leading dot)::

    batch-20250101T120000Z-00000007.jsonl       published: complete, never written again
    .batch-20250101T120100Z-00000008.jsonl.tmp  the open batch (at most one)
    .delivered-batches.jsonl                    index of published batches and their ids
    .filedrop.lock                              held by the one sink writing this folder

``<ts>`` is when the batch was opened (UTC), ``<n>`` a sequence that only grows, so the names
sort in the order the batches were written.

Writing: each record is appended at the end of the good data and fdatasync'ed before deliver
answers DELIVERED. Once the runner is seen calling ``flush()`` (the contract: before it commits
offsets), deliver stops syncing and ``flush()`` syncs the batch once per runner batch. If that
sync fails, the records since the last good sync are cut and forgotten, so their redelivery
writes them again instead of answering DUPLICATE. Publishing syncs the batch, appends its ids
to the index (synced), renames it into view and syncs the folder.

Recovery at start, after a kill at any moment: each temporary batch is cut after its last
complete record (what follows was never acknowledged, so the runner redelivers it), synced, its
ids added to the known set, then published; the newest is continued instead when it has the
configured format and is not yet due. A crash between the index line and the rename leaves both:
the batch is published under the same name and its ids stay known.
"""

from __future__ import annotations

import calendar
import errno
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from connectors.contract import DeliveryResult, Notification, Outcome
from connectors.filedrop.durable import read_bytes, sync_dir, sync_file, truncate, write_at
from connectors.filedrop.formats import BY_EXTENSION, RecordFormat
from connectors.filedrop.ledger import BatchIndex

log = structlog.get_logger(__name__)

Clock = Callable[[], float]  # seconds since the epoch, as time.time

_NAME = re.compile(
    r"(?P<dot>\.?)batch-(?P<ts>\d{8}T\d{6}Z)-(?P<seq>\d+)\.(?P<ext>\w+)(?P<tmp>\.tmp)?"
)
_TS = "%Y%m%dT%H%M%SZ"
_PUBLISH_RETRY_S = 5.0  # how soon the rotation thread tries again after a failed publish
_LONGEST_WAIT_S = 60.0  # the rotation thread looks at least this often


@dataclass(slots=True)
class OpenBatch:
    stem: str  # batch-<ts>-<n>
    seq: int
    extension: str
    opened_at: float
    fd: int
    size: int  # end of the last complete record
    ids: list[str] = field(default_factory=list)
    synced_size: int = 0  # bytes known to be on disk
    synced_count: int = 0  # records known to be on disk
    indexed: bool = False  # its index line is written
    renamed: bool = False  # it is in view: only the folder sync is left

    @property
    def temp_name(self) -> str:
        return f".{self.stem}.{self.extension}.tmp"

    @property
    def final_name(self) -> str:
        return f"{self.stem}.{self.extension}"

    def mark_synced(self) -> None:
        self.synced_size, self.synced_count = self.size, len(self.ids)


class BatchFileDrop:
    def __init__(
        self,
        directory: Path,
        fmt: RecordFormat,
        index: BatchIndex,
        *,
        rotate_bytes: int,
        rotate_seconds: float,
        clock: Clock = time.time,
    ) -> None:
        self.directory = directory
        self._fmt = fmt
        self._index = index
        self._known = index.ids  # every id delivered here: published, open or single files
        self._rotate_bytes = rotate_bytes
        self._rotate_seconds = rotate_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._flush_seen = False
        self._cut_since_flush = False  # a failed sync forgot DELIVERED records: flush must fail
        self._closed = False
        self._batch = recover(directory, index, keep=fmt, due=self._due)
        self._next_seq = next_seq(directory, index)
        self._stop = threading.Event()
        self._timer = threading.Thread(
            target=self._publish_when_due, name=f"filedrop-rotation-{directory.name}", daemon=True
        )
        self._timer.start()

    # -- the sink ---------------------------------------------------------------------------

    def deliver(self, notification: Notification) -> DeliveryResult:
        nid = notification.notification_id
        record = self._fmt.render(notification)
        with self._lock:
            if nid in self._known:
                return DeliveryResult(Outcome.DUPLICATE)
            try:
                if self._batch is not None and self._due(self._batch, len(record)):
                    self._publish()
                batch = self._batch or self._open()
                self._append(batch, nid, record)
            except OSError as exc:
                return _retry(exc)
            if self._due(batch):
                failure = self._try_publish()  # a rename that fails can wait for the next try
                if failure is not None and nid not in self._known:
                    return _retry(failure)  # ... but a failed sync cut the record
        return DeliveryResult(Outcome.DELIVERED)

    def flush(self) -> None:
        """Make every DELIVERED record durable (raises OSError if it cannot: the runner must
        not commit, and the cut records are DELIVERED again when redelivered); publish the
        batch if it is due."""
        with self._lock:
            self._flush_seen = True
            try:
                if self._batch is not None:
                    self._sync(self._batch)
                if self._cut_since_flush:
                    raise OSError(errno.EIO, "a failed sync cut records since the last flush")
            finally:
                self._cut_since_flush = False  # this flush reports it: the runner redelivers
            if self._batch is not None and self._due(self._batch):
                self._try_publish()

    def close(self) -> None:
        """Publish the open batch. Safe to call twice; a failure leaves it for the next start."""
        self._stop_timer()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._batch is None:
                return
            try:
                self._publish()
            except OSError as exc:
                log.warning("filedrop batch left for the next start", error=exc.strerror)
                os.close(self._batch.fd)
                self._batch = None

    def abandon(self) -> None:
        """Let go as a killed process would: nothing synced, published or removed."""
        self._stop_timer()
        with self._lock:
            self._closed = True
            if self._batch is not None:
                os.close(self._batch.fd)
                self._batch = None

    # -- steps ------------------------------------------------------------------------------

    def _due(self, batch: OpenBatch, incoming: int = 0) -> bool:
        """Publish now: old enough, full, or the next record would overfill it."""
        now = self._clock()
        aged = now - batch.opened_at >= self._rotate_seconds or now < batch.opened_at - 1
        full = bool(batch.ids) and (
            batch.size >= self._rotate_bytes or batch.size + incoming > self._rotate_bytes
        )
        return aged or full

    def _open(self) -> OpenBatch:
        opened_at = self._clock()
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        stem = f"batch-{time.strftime(_TS, time.gmtime(opened_at))}-{seq:08d}"
        batch = OpenBatch(stem, seq, self._fmt.extension, opened_at, fd=-1, size=0)
        path = self.directory / batch.temp_name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            header = self._fmt.header()
            write_at(fd, header, 0)
            sync_file(fd)
            sync_dir(self.directory)  # the temporary file itself must survive a crash
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        batch.fd, batch.size = fd, len(header)
        batch.mark_synced()
        self._batch = batch
        return batch

    def _append(self, batch: OpenBatch, nid: str, record: bytes) -> None:
        try:
            write_at(batch.fd, record, batch.size)
            if not self._flush_seen:
                sync_file(batch.fd)
        except OSError:
            _cut(batch, batch.size)  # no torn record after the good ones
            raise
        batch.size += len(record)
        batch.ids.append(nid)
        self._known.add(nid)
        if not self._flush_seen:
            batch.mark_synced()

    def _sync(self, batch: OpenBatch) -> None:
        if batch.synced_size == batch.size:
            return
        try:
            sync_file(batch.fd)
        except OSError:
            # After a failed fsync the kernel may have dropped those pages: do not trust them.
            cut = len(batch.ids) - batch.synced_count
            log.warning("filedrop sync failed; unsynced records cut", records=cut)
            self._cut_since_flush = True
            _cut(batch, batch.synced_size)
            for nid in batch.ids[batch.synced_count :]:
                self._known.discard(nid)
            del batch.ids[batch.synced_count :]
            batch.size = batch.synced_size
            raise
        batch.mark_synced()

    def _publish(self) -> None:
        batch = self._batch
        assert batch is not None
        self._sync(batch)
        publish(self.directory, self._index, batch)
        self._batch = None

    def _try_publish(self) -> OSError | None:
        try:
            self._publish()
        except OSError as exc:
            log.warning("filedrop batch not published; will retry", error=exc.strerror)
            return exc
        return None

    def _publish_when_due(self) -> None:
        """Publish by age while no deliveries come (deliver and flush check it too)."""
        wait = min(self._rotate_seconds, _LONGEST_WAIT_S)
        while not self._stop.wait(wait):
            with self._lock:
                batch = self._batch
                if batch is not None and self._due(batch) and self._try_publish() is not None:
                    wait = _PUBLISH_RETRY_S
                    continue
                age = self._clock() - self._batch.opened_at if self._batch else 0.0
            wait = min(max(self._rotate_seconds - age, 0.05), _LONGEST_WAIT_S)

    def _stop_timer(self) -> None:
        self._stop.set()
        if self._timer is not threading.current_thread():
            self._timer.join()


def publish(directory: Path, index: BatchIndex, batch: OpenBatch) -> None:
    """Index a synced batch, rename it into view, sync the folder; it is never written again."""
    assert batch.synced_size == batch.size
    if os.fstat(batch.fd).st_size != batch.size:
        # Bytes past the last whole record: a write interrupted by something other than an
        # OSError (which cuts them at once). They never go into view.
        os.ftruncate(batch.fd, batch.size)
        sync_file(batch.fd)
    if not batch.ids:
        (directory / batch.temp_name).unlink(missing_ok=True)  # a header at most: nothing new
    elif not batch.renamed:
        if not batch.indexed:
            index.append(batch.final_name, batch.seq, batch.ids)
            batch.indexed = True
        os.rename(directory / batch.temp_name, directory / batch.final_name)
        batch.renamed = True
        log.info("filedrop batch published", batch=batch.final_name, records=len(batch.ids))
    sync_dir(directory)
    os.close(batch.fd)


def recover(
    directory: Path,
    index: BatchIndex,
    *,
    keep: RecordFormat | None,
    due: Callable[[OpenBatch], bool] | None = None,
) -> OpenBatch | None:
    """Finish what a killed run left: cut each temporary batch after its last complete record,
    sync it, then publish it, or continue the newest if it has ``keep``'s format and is not
    ``due``. Every id found is added to ``index.ids``."""
    found = sorted(
        (int(m["seq"]), m)
        for m in map(_NAME.fullmatch, os.listdir(directory))
        if m is not None and m["dot"] and m["tmp"]
    )
    kept: OpenBatch | None = None
    for position, (seq, match) in enumerate(found):
        fmt = BY_EXTENSION.get(match["ext"])
        if fmt is None:
            log.warning("filedrop unknown batch format left alone", file=match.string)
            continue
        path = directory / match.string
        data = read_bytes(path)
        scan = fmt.scan(data)
        if scan.good_bytes < len(data):
            truncate(path, scan.good_bytes)
            log.warning(
                "filedrop torn batch cut",
                batch=match.string,
                bytes=len(data) - scan.good_bytes,
                records=len(scan.ids),
            )
        index.ids.update(scan.ids)
        opened_at = float(calendar.timegm(time.strptime(match["ts"], _TS)))
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        stem = f"batch-{match['ts']}-{match['seq']}"
        batch = OpenBatch(stem, seq, match["ext"], opened_at, fd, scan.good_bytes, scan.ids)
        try:
            sync_file(fd)  # a killed run may have left it in the page cache only
        except OSError:
            os.close(fd)
            raise
        batch.mark_synced()
        newest = position == len(found) - 1
        same_format = keep is not None and keep.extension == batch.extension
        if newest and same_format and batch.ids and (due is None or not due(batch)):
            log.info("filedrop open batch continued", batch=stem, records=len(batch.ids))
            kept = batch
            continue
        publish(directory, index, batch)
    return kept


def next_seq(directory: Path, index: BatchIndex) -> int:
    """One past every sequence number in use: indexed, open, or still in view."""
    seen = [int(m["seq"]) for m in map(_NAME.fullmatch, os.listdir(directory)) if m is not None]
    return max([index.last_seq, *seen]) + 1


def _retry(exc: OSError) -> DeliveryResult:
    return DeliveryResult(
        Outcome.RETRY, f"cannot write to the drop folder: {exc.strerror}", error="OSError"
    )


def _cut(batch: OpenBatch, size: int) -> None:
    try:
        os.ftruncate(batch.fd, size)
    except OSError:
        log.warning("filedrop torn record left; cut at the next start", batch=batch.stem)
