"""In-memory stand-ins for the hub's ports, for tests of the hub and of outside adapters.

Each fake implements a port from ``hub.ports`` (or ``hub.ports.Clock``'s shape) with no I/O and
records what was asked of it, so a test asserts on what the code under test did:

- ``ManualClock``: a clock that stands still until the test moves it.
- ``RecordingProducer``: a ``Producer`` that keeps every record sent, and what was flushed.
- ``ListSource``: a ``MessageSource`` over a list, with commits, rewinds and refused commits.
- ``FaultyCodec``: a real ``Codec`` that raises on chosen records.
- ``UnusableSigner`` and ``ShortSigner``: ``Signer``\\ s whose signatures cannot be had or used.

Nothing here needs pytest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hub.errors import BrokerError, SignerError
from hub.model import Headers, InboundMessage
from hub.ports import Codec, OffsetLookup

__all__ = [
    "FaultyCodec",
    "ListSource",
    "ManualClock",
    "RecordingProducer",
    "Sent",
    "ShortSigner",
    "UnusableSigner",
]

_T = TypeVar("_T")


class ManualClock(Generic[_T]):
    """A clock that reads ``now`` until the test changes it (``clock.now += timedelta(...)``):
    an aware ``datetime`` for the hub's ``Clock`` port, or seconds (a ``float``) for a sink
    that takes ``time.time``'s place."""

    def __init__(self, now: _T) -> None:
        self.now = now

    def __call__(self) -> _T:
        return self.now


@dataclass(frozen=True)
class Sent:
    """One record given to a ``RecordingProducer``."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers

    def header(self, name: str) -> str | None:
        """The header's value as text, or None when the record has no such header."""
        return next((v.decode() for k, v in self.headers if k == name), None)


class RecordingProducer:
    """A ``Producer`` that keeps what it was given: ``sent`` at once, ``flushed`` once a
    flush went through. With a ``journal``, each send is noted there (``send <topic>``) beside
    what other fakes note, so a test can check the order of effects."""

    def __init__(self, journal: list[str] | None = None) -> None:
        self.sent: list[Sent] = []
        self.flushed: list[Sent] = []
        self.flushes = 0
        self.closed = False
        self._journal = journal

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None:
        self.sent.append(Sent(topic, key, value, list(headers)))
        if self._journal is not None:
            self._journal.append(f"send {topic}")

    def flush(self) -> None:
        self.flushes += 1
        self.flushed = list(self.sent)

    def close(self) -> None:
        self.closed = True

    def to(self, topic: str) -> list[Sent]:
        """What was sent to ``topic``, in order."""
        return [s for s in self.sent if s.topic == topic]


class ListSource:
    """A ``MessageSource`` over a list of records, read in list order (append to ``messages``
    to make more arrive). Each partition is read from where the last poll left it.

    ``commit`` keeps the position; ``rewind`` goes back to it, or, given ``offset_lookup``, to
    the offsets the store keeps, as the Kafka source seeks after a failed batch. Set
    ``refuse_commits`` to make that many commits fail as in a rebalance. With a ``journal``,
    commits, refusals, rewinds and keep-alives are noted there."""

    ready = True

    def __init__(
        self,
        messages: Iterable[InboundMessage] = (),
        *,
        offset_lookup: OffsetLookup | None = None,
        journal: list[str] | None = None,
    ) -> None:
        self.messages = list(messages)
        self.rewinds = 0
        self.refuse_commits = 0
        self.closed = False
        self._lookup = offset_lookup
        self._journal = journal
        self._next: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}

    @property
    def committed(self) -> int:
        """How many of the records are behind the committed position."""
        return sum(1 for m in self.messages if m.offset < self._committed.get(_at(m), 0))

    def poll(self, max_records: int, timeout_ms: int) -> list[InboundMessage]:
        batch: list[InboundMessage] = []
        for message in self.messages:
            if len(batch) < max_records and message.offset >= self._next.get(_at(message), 0):
                batch.append(message)
                self._next[_at(message)] = message.offset + 1
        return batch

    def rewind(self) -> None:
        self.rewinds += 1
        if self._lookup is None:
            self._next = dict(self._committed)
        else:
            lookup = self._lookup
            self._next = {_at(m): lookup(m.topic, m.partition) or 0 for m in self.messages}
        self._note("rewind")

    def commit(self) -> None:
        if self.refuse_commits:
            self.refuse_commits -= 1
            self._note("commit refused")
            raise BrokerError("offset commit failed: the group is rebalancing")
        self._committed = dict(self._next)
        self._note(f"commit {self.committed}")

    def keep_alive(self) -> None:
        self._note("keep alive")

    def close(self) -> None:
        self.closed = True

    def _note(self, what: str) -> None:
        if self._journal is not None:
            self._journal.append(what)


def _at(message: InboundMessage) -> tuple[str, int]:
    return (message.topic, message.partition)


class FaultyCodec:
    """A real ``Codec``, except that a value ending in ``poison`` makes decoding raise ``error``
    and, when ``poison_event`` is given, encoding a record with that ``event_id`` raises
    OverflowError: a stand-in for whatever a library or a bug might raise on one record."""

    def __init__(self, codec: Codec, error: Exception, poison_event: str | None = None) -> None:
        self.codec = codec
        self.error = error
        self.poison_event = poison_event

    def decode(self, value: bytes | None) -> Any:
        if value is not None and value.endswith(b"poison"):
            raise self.error
        return self.codec.decode(value)

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        if self.poison_event is not None and record.get("event_id") == self.poison_event:
            raise OverflowError("date value out of range")
        return self.codec.encode(name, record)

    def from_json(self, name: str, data: Any) -> dict[str, Any]:
        return self.codec.from_json(name, data)


class UnusableSigner:
    """A ``Signer`` whose key cannot be used, as when the HSM or key file is gone."""

    key_id = "ed25519:0123456789abcdef"

    def sign(self, message: bytes) -> bytes:
        raise SignerError("signing key unavailable")

    def public_key_pem(self) -> str:
        return ""


class ShortSigner(UnusableSigner):
    """A ``Signer`` that returns something that is not an Ed25519 signature."""

    def sign(self, message: bytes) -> bytes:
        return b"\x00" * 32
