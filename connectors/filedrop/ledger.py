"""The durable record of what the drop folder already holds, so a redelivery answers DUPLICATE
even after the back office has taken the files away.

``.delivered-batches.jsonl`` gets one line per published batch, written and fsynced *before*
the batch is renamed into view: ``{"batch": name, "seq": n, "ids": [...]}``. Ids of the open
batch are in its temporary file; ids of per-notification files are markers in ``.delivered/``.
At start all three are read into one set; each deliver is then a set lookup.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import structlog

from connectors.filedrop.durable import read_bytes, safe_id, sync_dir, sync_file, write_at

log = structlog.get_logger(__name__)

INDEX_NAME = ".delivered-batches.jsonl"
MARKS_NAME = ".delivered"


class BatchIndex:
    def __init__(self, directory: Path) -> None:
        self.path = directory / INDEX_NAME
        self.ids: set[str] = set()
        self.last_seq = 0
        self._size = 0  # end of the last complete line: where the next line goes

    @classmethod
    def load(cls, directory: Path, *, repair: bool) -> BatchIndex:
        """Read the index; with ``repair``, cut an unterminated last line left by a crash (its
        batch was never renamed into view, so its ids are still in the temporary file)."""
        index = cls(directory)
        try:
            data = read_bytes(index.path)
        except FileNotFoundError:
            return index
        index._size = data.rfind(b"\n") + 1
        skipped = 0
        for line in data[: index._size].splitlines():
            try:
                entry = json.loads(line)
                ids = [str(i) for i in entry["ids"]]
                seq = int(entry["seq"])
            except (ValueError, TypeError, KeyError):
                skipped += 1  # a crash-mangled line whose batch is still in a temporary file
                continue
            index.ids.update(ids)
            index.last_seq = max(index.last_seq, seq)
        if skipped:
            log.warning("filedrop index lines skipped", index=str(index.path), lines=skipped)
        if repair and index._size < len(data):
            log.warning("filedrop index torn line cut", bytes=len(data) - index._size)
            os.truncate(index.path, index._size)
        return index

    def append(self, batch: str, seq: int, ids: list[str]) -> None:
        """Record a batch durably; call before renaming it into view."""
        line = json.dumps({"batch": batch, "seq": seq, "ids": ids}, separators=(",", ":"))
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            # Cut whatever a failed earlier append may have left after the last good line.
            os.ftruncate(fd, self._size)
            write_at(fd, line.encode() + b"\n", self._size)
            sync_file(fd)
        finally:
            os.close(fd)
        if created:
            sync_dir(self.path.parent)
        self._size += len(line) + 1
        self.ids.update(ids)
        self.last_seq = max(self.last_seq, seq)


def marked_ids(directory: Path) -> set[str]:
    """Ids delivered as one-file-per-notification (``format=json``) into ``directory``."""
    try:
        return {name for name in os.listdir(directory / MARKS_NAME) if safe_id(name)}
    except FileNotFoundError:
        return set()
