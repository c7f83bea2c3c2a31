"""File drop: notifications as files in a folder a batch back office reads.

Options (``--option KEY=VALUE``):

``directory`` (required)
    The drop folder; created if missing. Give each connector its own folder: a batch sink locks
    it (``.filedrop.lock``) and a second one on the same folder refuses to start.
``format`` = ``json`` (default) | ``jsonl`` | ``csv``
    ``json``: one ``<notification_id>.json`` per notification (see ``single``).
    ``jsonl``, ``csv``: batch files ``batch-<ts>-<n>.jsonl|csv`` (see ``batches``; the record
    layouts and the CSV columns are in ``formats``).
``rotate_bytes`` (batch formats; default 1048576)
    Publish a batch before a record would take it past this size (a single larger record gets
    a batch of its own).
``rotate_seconds`` (batch formats; default 60)
    Publish a batch this long after its first record, with or without further traffic.
``csv_formula_guard`` = ``on`` (default) | ``off`` (csv only)
    Prefix ``'`` to cells a spreadsheet would run as a formula (see ``formats``).

In every format a file appears under its final name only complete (temporary name in the same
folder, fsync, atomic rename, fsync of the folder), a DELIVERED notification is on disk when
``deliver`` returns (or, once the runner calls ``flush()``, when that returns), and a
redelivery answers DUPLICATE, also after a restart and after the back office took the files.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from connectors.contract import DeliveryResult, Notification, Outcome
from connectors.filedrop.batches import BatchFileDrop, Clock, recover
from connectors.filedrop.durable import lock_folder, safe_id
from connectors.filedrop.formats import Csv, JsonLines, RecordFormat
from connectors.filedrop.ledger import BatchIndex, marked_ids
from connectors.filedrop.single import SingleFileDrop

FORMATS = ("json", "jsonl", "csv")
DEFAULT_ROTATE_BYTES = 1024 * 1024
DEFAULT_ROTATE_SECONDS = 60.0
_BATCH_OPTIONS = {"rotate_bytes", "rotate_seconds", "csv_formula_guard"}
_OPTIONS = {"directory", "format", *_BATCH_OPTIONS}
_SWITCH = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False}
_SWITCH |= {"no": False, "0": False}


class FileDropSink:
    name = "filedrop"

    def __init__(
        self, recipient: str, options: dict[str, str], *, clock: Clock = time.time
    ) -> None:
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            known = ", ".join(sorted(_OPTIONS))
            raise ValueError(f"unknown filedrop option(s) {', '.join(unknown)}; known: {known}")
        if "directory" not in options:
            raise ValueError("the filedrop sink needs --option directory=PATH")
        fmt = options.get("format", "json")
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        misplaced = sorted(_BATCH_OPTIONS & set(options)) if fmt == "json" else []
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)} apply to format=jsonl or csv only")
        self.recipient = recipient
        self.format = fmt
        self.inbox = Path(options["directory"])
        self._lock_fd: int | None = None
        self._drop: SingleFileDrop | BatchFileDrop
        try:
            self.inbox.mkdir(parents=True, exist_ok=True)
            if fmt == "json":
                self._drop = self._single()
            else:
                self._drop = self._batches(_record_format(fmt, options), options, clock)
        except OSError as exc:
            self._unlock()
            raise ValueError(f"cannot use the drop folder {self.inbox}: {exc.strerror}") from None
        except ValueError:
            self._unlock()
            raise

    def deliver(self, notification: Notification) -> DeliveryResult:
        if not safe_id(notification.notification_id):
            return DeliveryResult(
                Outcome.FAILED, "notification id is not a safe file name token", error="BadId"
            )
        return self._drop.deliver(notification)

    def flush(self) -> None:
        """Make every DELIVERED notification durable; publish a batch that is due. Raises
        OSError when it cannot: then do not commit, redeliver."""
        self._drop.flush()

    def close(self) -> None:
        """Publish the open batch and release the folder. Safe to call twice."""
        try:
            self._drop.close()
        finally:
            self._unlock()

    def abandon(self) -> None:
        """Let go of the folder as a killed process would (for crash tests): nothing synced,
        published or cleaned up."""
        if isinstance(self._drop, BatchFileDrop):
            self._drop.abandon()
        self._unlock()

    # -- wiring -----------------------------------------------------------------------------

    def _single(self) -> SingleFileDrop:
        # Finish batches a jsonl or csv run left, if no batch sink is writing here right now.
        fd = lock_folder(self.inbox)
        index = BatchIndex.load(self.inbox, repair=fd is not None)
        if fd is not None:
            try:
                recover(self.inbox, index, keep=None)
            finally:
                os.close(fd)
        return SingleFileDrop(self.inbox, index.ids)

    def _batches(self, fmt: RecordFormat, options: dict[str, str], clock: Clock) -> BatchFileDrop:
        rotate_bytes = _number(options, "rotate_bytes", DEFAULT_ROTATE_BYTES, int, 1)
        rotate_seconds = _number(options, "rotate_seconds", DEFAULT_ROTATE_SECONDS, float, 0)
        self._lock_fd = lock_folder(self.inbox)
        if self._lock_fd is None:
            raise ValueError(
                f"another filedrop sink is writing to {self.inbox}; "
                "give each connector its own directory"
            )
        index = BatchIndex.load(self.inbox, repair=True)
        index.ids |= marked_ids(self.inbox)  # delivered as json before the format changed
        return BatchFileDrop(
            self.inbox,
            fmt,
            index,
            rotate_bytes=int(rotate_bytes),
            rotate_seconds=float(rotate_seconds),
            clock=clock,
        )

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _record_format(fmt: str, options: dict[str, str]) -> RecordFormat:
    if fmt == "jsonl":
        if "csv_formula_guard" in options:
            raise ValueError("csv_formula_guard applies to format=csv only")
        return JsonLines()
    guard = options.get("csv_formula_guard", "on").lower()
    if guard not in _SWITCH:
        raise ValueError(f"csv_formula_guard must be on or off, not {guard!r}")
    return Csv(formula_guard=_SWITCH[guard])


def _number(
    options: dict[str, str], key: str, default: float, kind: type[int] | type[float], least: float
) -> float:
    if key not in options:
        return default
    try:
        value = kind(options[key])
    except ValueError:
        raise ValueError(f"{key} must be a number, not {options[key]!r}") from None
    if not math.isfinite(value) or value < least:
        raise ValueError(f"{key} must be a number of at least {least:g}, not {options[key]!r}")
    return value


__all__ = ["DEFAULT_ROTATE_BYTES", "DEFAULT_ROTATE_SECONDS", "FORMATS", "FileDropSink"]
