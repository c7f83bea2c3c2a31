"""Records whose header names are not UTF-8 reach the hub instead of stopping its consumer.

kafka-python 3.0 decodes header names strictly. One record carrying a name that is not UTF-8
(any client can write one; brokers do not check) raises CorruptRecordError, and every later
poll then spins on that partition at full CPU: the record can be neither read nor skipped, so a
single record stops the hub for good. The Java client and librdkafka replace the bad bytes
instead. ``tolerate_bad_header_names`` makes kafka-python do the same, on that failure path
only: the record arrives with U+FFFD in the name, and the hub rejects it (``bad_header``) like
any other bad header. Applied by ``KafkaSource`` before it reads anything; never at import.
"""

from __future__ import annotations

from typing import Any

from kafka.record.default_records import DefaultRecordBatch

_MARK = "_tellonce_lenient_header_names"


class _LenientBytes(bytes):
    """A slice of a record batch whose ``decode`` replaces bytes that are not UTF-8."""

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes.decode(self, encoding, "replace")


class _LenientBuffer:
    """A record batch's buffer whose slices are ``_LenientBytes``; indexing is unchanged."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def __getitem__(self, index: int | slice) -> Any:
        item = self._raw[index]
        return _LenientBytes(item) if isinstance(index, slice) else item

    def __len__(self) -> int:
        return len(self._raw)


def tolerate_bad_header_names() -> None:
    """Make kafka-python read a record with a non-UTF-8 header name (idempotent)."""
    strict = DefaultRecordBatch._read_msg
    if getattr(strict, _MARK, False):
        return

    def read_msg(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return strict(self, *args, **kwargs)
        except UnicodeDecodeError:
            # _read_msg moves the batch's position only once the record is read: read it again,
            # from the same position, with header names decoded leniently.
            raw = self._buffer
            self._buffer = _LenientBuffer(raw)
            try:
                return strict(self, *args, **kwargs)
            finally:
                self._buffer = raw

    setattr(read_msg, _MARK, True)
    DefaultRecordBatch._read_msg = read_msg
