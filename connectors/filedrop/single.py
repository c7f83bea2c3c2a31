"""``format=json``: one ``<notification_id>.json`` file per notification.

Each file is written as ``.<id>.json.tmp``, fsynced, marked delivered in ``.delivered/`` (marker
fsynced), then renamed into place. A temporary file with a marker is a rename a crash (or a
failed rename) interrupted: it is finished at start and on redelivery, never lost; one without a
marker was never acknowledged and is removed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import structlog

from connectors.contract import DeliveryResult, Notification, Outcome
from connectors.filedrop.durable import safe_id, sync_dir, sync_file, write_at
from connectors.filedrop.ledger import MARKS_NAME

log = structlog.get_logger(__name__)

_TEMP = re.compile(r"\.(?P<id>.+)\.json\.tmp")


class SingleFileDrop:
    def __init__(self, directory: Path, batch_ids: set[str]) -> None:
        self.inbox = directory
        self._marks = directory / MARKS_NAME
        self._marks.mkdir(parents=True, exist_ok=True)
        self._batch_ids = batch_ids  # delivered in batch files, should the format have changed
        self._recover()

    def deliver(self, notification: Notification) -> DeliveryResult:
        nid = notification.notification_id
        if nid in self._batch_ids:
            return DeliveryResult(Outcome.DUPLICATE)
        temp, final = self._temp(nid), self.inbox / f"{nid}.json"
        try:
            if (self._marks / nid).exists():
                if not temp.exists():
                    return DeliveryResult(Outcome.DUPLICATE)
                self._publish(temp, final)  # an earlier attempt was cut short after its marker
                return DeliveryResult(Outcome.DELIVERED)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                write_at(fd, notification.to_json().encode() + b"\n", 0)
                sync_file(fd)
            finally:
                os.close(fd)
            os.close(os.open(self._marks / nid, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
            sync_dir(self._marks)
            self._publish(temp, final)
        except OSError as exc:
            return DeliveryResult(
                Outcome.RETRY, f"cannot write to the drop folder: {exc.strerror}", error="OSError"
            )
        return DeliveryResult(Outcome.DELIVERED)

    def flush(self) -> None:
        """Nothing is buffered: each deliver is durable before it returns."""

    def close(self) -> None:
        """Nothing is held open."""

    def _temp(self, nid: str) -> Path:
        return self.inbox / f".{nid}.json.tmp"

    def _publish(self, temp: Path, final: Path) -> None:
        os.replace(temp, final)
        sync_dir(self.inbox)

    def _recover(self) -> None:
        for name in os.listdir(self.inbox):
            match = _TEMP.fullmatch(name)
            if match is None or not safe_id(match["id"]):
                continue
            temp = self.inbox / name
            if (self._marks / match["id"]).exists():
                self._publish(temp, self.inbox / f"{match['id']}.json")
                log.warning("filedrop interrupted file published", file=f"{match['id']}.json")
            else:
                temp.unlink()
