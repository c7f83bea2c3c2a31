"""Record formats of batch files: how a notification becomes bytes, and how a batch file that
may end in a torn record is read back to its last complete one.

JSON Lines: one ``Notification.to_json()`` per line, ``\\n`` terminated, UTF-8 (ASCII in
practice: ``to_json`` escapes non-ASCII).

CSV (RFC 4180: comma, ``"`` quoting when needed, doubled quotes, CRLF after every record,
UTF-8 without a byte-order mark): a header row, then one row per notification with the
columns of ``CSV_COLUMNS``. The disclosed fields differ by event type and agreement, so they
travel as one JSON object in the ``fields`` column (sorted keys, nested values as JSON) rather
than as columns the header would have to know in advance.

Formula injection: every free-text value the client gave (names, addresses, dates) is inside
the ``fields`` cell, which always starts with ``{`` and so is never evaluated by a spreadsheet.
The other cells are identifiers, two of which other systems choose (the publisher's ``event_id``
and the recipient's ``subject_id``). With ``csv_formula_guard`` on (the default), a cell that
starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'`` as OWASP
advises; no id the hub issues starts so, and notification ids are checked to never need it.
Turn it off for a reader that must see those two ids byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.contract import Notification
from connectors.filedrop.durable import safe_id

CSV_COLUMNS = (
    "notification_id",
    "recipient",
    "subject_id",
    "event_type",
    "event_id",
    "event_source",
    "event_time",
    "consent_revision",
    "fields",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(slots=True)
class Scan:
    """What a batch file holds up to its last complete record."""

    good_bytes: int = 0  # length of the complete prefix: header plus whole records
    ids: list[str] = field(default_factory=list)


class RecordFormat(Protocol):
    extension: str

    def header(self) -> bytes: ...

    def render(self, notification: Notification) -> bytes: ...

    def scan(self, data: bytes) -> Scan: ...


class JsonLines:
    extension = "jsonl"

    def header(self) -> bytes:
        return b""

    def render(self, notification: Notification) -> bytes:
        return notification.to_json().encode() + b"\n"

    def scan(self, data: bytes) -> Scan:
        scan = Scan()
        for line in _lines(data):
            try:
                body = json.loads(line)
            except ValueError:
                break
            if not isinstance(body, dict) or not safe_id(str(body.get("notification_id", ""))):
                break
            scan.ids.append(body["notification_id"])
            scan.good_bytes += len(line)
        return scan


class Csv:
    extension = "csv"

    def __init__(self, *, formula_guard: bool = True) -> None:
        self.formula_guard = formula_guard

    def header(self) -> bytes:
        return _csv_row(CSV_COLUMNS)

    def render(self, notification: Notification) -> bytes:
        body: dict[str, Any] = json.loads(notification.to_json())
        fields = json.dumps(body["fields"], sort_keys=True, ensure_ascii=False)
        cells = [str(body[name]) for name in CSV_COLUMNS[:-1]] + [fields]
        if self.formula_guard:
            cells = [f"'{c}" if c.startswith(_FORMULA_START) else c for c in cells]
        return _csv_row(cells)

    def scan(self, data: bytes) -> Scan:
        scan = Scan()
        consumed = 0  # bytes of the lines the reader has taken so far

        def lines() -> Iterator[str]:
            nonlocal consumed
            for line in _lines(data):
                consumed += len(line)
                yield line.decode()  # a torn multi-byte character raises: the record is bad

        reader = csv.reader(lines(), strict=True)
        try:
            if next(reader, None) != list(CSV_COLUMNS):
                return scan
            scan.good_bytes = consumed
            for row in reader:
                if len(row) != len(CSV_COLUMNS) or not safe_id(row[0]):
                    break
                if not isinstance(json.loads(row[-1]), dict):
                    break
                scan.ids.append(row[0])
                scan.good_bytes = consumed
        except (csv.Error, ValueError):
            pass  # the first bad record and everything after it were never acknowledged
        return scan


BY_EXTENSION: dict[str, RecordFormat] = {"jsonl": JsonLines(), "csv": Csv()}


def _lines(data: bytes) -> Iterator[bytes]:
    """Newline-terminated lines with their terminator; an unterminated tail is left out."""
    start = 0
    while (end := data.find(b"\n", start)) != -1:
        yield data[start : end + 1]
        start = end + 1


def _csv_row(cells: tuple[str, ...] | list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue().encode()
