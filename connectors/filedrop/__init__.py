"""File drop: one JSON file per notification in a folder a batch back office reads.

Files are written under a temporary name in the same folder and renamed into place, so a reader
never sees a partial file. A marker in ``.delivered/`` records each delivery; it is written after
the rename, so a crash between the two repeats an identical rename, never loses a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from connectors.contract import DeliveryResult, Notification, Outcome


class FileDropSink:
    name = "filedrop"

    def __init__(self, recipient: str, options: dict[str, str]) -> None:
        if "directory" not in options:
            raise ValueError("the filedrop sink needs --option directory=PATH")
        self.inbox = Path(options["directory"])
        self._marks = self.inbox / ".delivered"
        self._marks.mkdir(parents=True, exist_ok=True)
        self.recipient = recipient

    def deliver(self, notification: Notification) -> DeliveryResult:
        mark = self._marks / notification.notification_id
        if mark.exists():
            return DeliveryResult(Outcome.DUPLICATE)
        final = self.inbox / f"{notification.notification_id}.json"
        temp = self.inbox / f".{notification.notification_id}.json.tmp"
        try:
            with open(temp, "w", encoding="utf-8") as out:
                out.write(notification.to_json() + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, final)
            _fsync_dir(self.inbox)
            mark.touch()
        except OSError as exc:
            return DeliveryResult(Outcome.RETRY, f"cannot write to the drop folder: {exc.strerror}")
        return DeliveryResult(Outcome.DELIVERED)

    def close(self) -> None:
        _fsync_dir(self._marks)


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable, not just the file's bytes.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
