"""The fakes ``hub.testing.fakes`` ships for tests of the hub and of outside adapters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.adapters.avro import AvroCodec
from hub.errors import BrokerError, SignerError
from hub.model import InboundMessage
from hub.testing.fakes import (
    FaultyCodec,
    ListSource,
    ManualClock,
    RecordingProducer,
    ShortSigner,
    UnusableSigner,
)
from hub.wire.catalog import Catalog

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def records(topic: str, partition: int, count: int) -> list[InboundMessage]:
    return [InboundMessage(topic, partition, n, None, b"v") for n in range(count)]


def test_manual_clock_stands_still_until_moved() -> None:
    """The clock reads the same time until the test moves it."""
    clock = ManualClock(T0)
    assert (clock(), clock()) == (T0, T0)
    clock.now += timedelta(seconds=61)
    assert clock() == T0 + timedelta(seconds=61)


def test_producer_keeps_what_was_sent_and_what_was_flushed() -> None:
    """Records count as sent at once and as flushed only after a flush."""
    journal: list[str] = []
    producer = RecordingProducer(journal)
    producer.send("a", b"k", b"1", [("ce_id", b"n-1")])
    producer.send("b", None, b"2", [])
    assert [s.header("ce_id") for s in producer.sent] == ["n-1", None]
    assert producer.flushed == []
    producer.flush()
    assert [s.value for s in producer.flushed] == [b"1", b"2"]
    assert [s.topic for s in producer.to("b")] == ["b"]
    assert journal == ["send a", "send b"]


def test_source_reads_in_list_order_and_rewinds_to_the_commit() -> None:
    """Polls continue where the last one stopped; a rewind goes back to the last commit."""
    source = ListSource([*records("t", 0, 2), *records("t", 1, 2)])
    assert [(m.partition, m.offset) for m in source.poll(3, 0)] == [(0, 0), (0, 1), (1, 0)]
    source.commit()
    assert [(m.partition, m.offset) for m in source.poll(3, 0)] == [(1, 1)]
    assert source.poll(3, 0) == []
    source.rewind()
    assert (source.committed, source.rewinds) == (3, 1)
    assert [(m.partition, m.offset) for m in source.poll(3, 0)] == [(1, 1)]


def test_source_with_an_offset_lookup_rewinds_to_the_stored_offsets() -> None:
    """Given the store's offsets, a rewind seeks there, as the Kafka source does."""
    source = ListSource(records("t", 0, 3), offset_lookup=lambda topic, partition: 1)
    assert len(source.poll(10, 0)) == 3
    source.rewind()
    assert [m.offset for m in source.poll(10, 0)] == [1, 2]


def test_source_refuses_as_many_commits_as_asked() -> None:
    """A refused commit raises BrokerError and leaves the committed position where it was."""
    journal: list[str] = []
    source = ListSource(records("t", 0, 2), journal=journal)
    source.poll(1, 0)
    source.refuse_commits = 1
    with pytest.raises(BrokerError):
        source.commit()
    source.commit()
    assert source.committed == 1
    assert journal == ["commit refused", "commit 1"]


def test_faulty_codec_raises_on_poison_only(catalog: Catalog) -> None:
    """A value ending in ``poison`` fails with the chosen error; encoding the poison event
    overflows."""
    codec = FaultyCodec(AvroCodec(catalog), KeyError("x"), poison_event="e-9")
    with pytest.raises(KeyError):
        codec.decode(b"\x00poison")
    with pytest.raises(OverflowError):
        codec.encode("any", {"event_id": "e-9"})


def test_unusable_signers_give_no_usable_signature() -> None:
    """One signer raises SignerError; the other returns 32 zero bytes, not a 64-byte signature."""
    with pytest.raises(SignerError):
        UnusableSigner().sign(b"m")
    assert ShortSigner().sign(b"m") == b"\x00" * 32
