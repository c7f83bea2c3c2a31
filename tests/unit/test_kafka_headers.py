"""kafka-python reads a record whose header name is not UTF-8 instead of stalling the consumer."""

from __future__ import annotations

from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from hub.adapters.kafka_headers import tolerate_bad_header_names


class RawName(str):
    """A header name that kafka-python's builder writes as bytes that are not UTF-8."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"ce_\xff\xfe"


def batch(*headers: list[tuple[str, bytes]]) -> DefaultRecordBatch:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for offset, record_headers in enumerate(headers):
        builder.append(offset, timestamp=0, key=b"k", value=b"v%d" % offset, headers=record_headers)
    return DefaultRecordBatch(bytes(builder.build()))


def test_a_header_name_that_is_not_utf8_is_read_with_a_replacement_character() -> None:
    """The bad name arrives with U+FFFD (as the Java client reads it); the records around it
    are read unchanged."""
    tolerate_bad_header_names()
    records = list(batch([("ok", b"1")], [(RawName("x"), b"2")], [("ok", b"3")]))
    assert [(r.offset, r.value, r.headers) for r in records] == [
        (0, b"v0", [("ok", b"1")]),
        (1, b"v1", [("ce_\ufffd\ufffd", b"2")]),
        (2, b"v2", [("ok", b"3")]),
    ]


def test_tolerating_twice_wraps_the_reader_once() -> None:
    """Every consumer applies it; the second call changes nothing."""
    tolerate_bad_header_names()
    reader = DefaultRecordBatch._read_msg
    tolerate_bad_header_names()
    assert DefaultRecordBatch._read_msg is reader
