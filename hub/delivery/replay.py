"""The dead-letter use-cases behind ``tellonce dlq``: list a recipient's dead letters, and replay
chosen ones to its topic with an audit leaf for each.

A replay is the original notification again (its error headers dropped), so the connector
delivers it once more and an idempotent sink ignores any it already has. The topic is read
through ``read`` (a broker adapter, or a list in tests); records are sent through the producer
``open_producer`` makes, and only when there is something to send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from hub.audit.pseudonyms import Pseudonyms
from hub.delivery.dead_letters import DeadLetter, record_replays, replayed
from hub.errors import ConfigError, NotFoundError
from hub.model import InboundMessage
from hub.ports import Producer, Store
from hub.wire.topics import dlq_topic, notify_topic

# Where a dead letter sits: (partition, offset); a partition of None means "any partition".
Position = tuple[int, int]
Wanted = tuple[int | None, int]


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """A recipient's dead letters, oldest first per partition, and which are replayed."""

    recipient: str
    letters: tuple[DeadLetter, ...]
    replayed: frozenset[Position]

    def is_replayed(self, letter: DeadLetter) -> bool:
        return (letter.partition, letter.offset) in self.replayed

    @property
    def replayed_count(self) -> int:
        return sum(1 for letter in self.letters if self.is_replayed(letter))


@dataclass(frozen=True, slots=True)
class Replay:
    """What a replay sent: the dead letters, in the order sent, and the topic they went to."""

    topic: str
    letters: tuple[DeadLetter, ...]


@dataclass
class DeadLetterOffice:
    """Lists and replays the dead letters of one hub's recipients."""

    store: Store
    read: Callable[[str], Iterable[InboundMessage]]
    open_producer: Callable[[], Producer]
    pseudonyms: Pseudonyms
    clock: Callable[[], datetime]

    def letters(self, recipient: str) -> DeadLetters:
        """Every dead letter of ``recipient`` on its dead-letter topic, as of now."""
        done = replayed(self.store, recipient)  # a missing database before the broker is asked
        records = self.read(dlq_topic(recipient))
        return DeadLetters(
            recipient,
            tuple(DeadLetter.from_record(r) for r in records),
            frozenset(done),
        )

    def replay(
        self,
        recipient: str,
        positions: Sequence[Wanted] = (),
        *,
        everything: bool = False,
        force: bool = False,
    ) -> Replay:
        """Send the dead letters at ``positions`` (or all of them) to the recipient's topic again.

        Letters already replayed are skipped unless ``force``. Raises ConfigError when an
        offset without a partition is in several partitions, NotFoundError when a position
        holds no dead letter; nothing is sent then. Each letter sent gets a ``dlq_replayed``
        audit leaf.
        """
        found = self.letters(recipient)
        wanted = _positions(found, positions)
        chosen = tuple(
            d
            for d in found.letters
            if (everything or (d.partition, d.offset) in wanted)
            and (force or not found.is_replayed(d))
        )
        topic = notify_topic(recipient)
        if not chosen:
            return Replay(topic, ())
        producer = self.open_producer()
        try:
            for d in chosen:
                producer.send(topic, d.record.key, d.record.value or b"", d.replay_headers())
            producer.flush()
        finally:
            producer.close()
        record_replays(self.store, recipient, list(chosen), self.clock(), self.pseudonyms)
        return Replay(topic, chosen)


def _positions(found: DeadLetters, positions: Sequence[Wanted]) -> set[Position]:
    """The (partition, offset) each wanted position names, or the error saying why not."""
    wanted: set[Position] = set()
    missing: list[str] = []
    for partition, offset in positions:
        matches = [
            d for d in found.letters if d.offset == offset and partition in (None, d.partition)
        ]
        if len(matches) > 1:  # the dead-letter topic has several partitions
            raise ConfigError(
                f"offset {offset} is in partitions "
                f"{', '.join(str(d.partition) for d in matches)} of the dead-letter topic; "
                f"name one as PARTITION/{offset}, as 'tellonce dlq list' shows it"
            )
        if matches:
            wanted.add((matches[0].partition, matches[0].offset))
        else:
            missing.append(str(offset) if partition is None else f"{partition}/{offset}")
    if missing:
        raise NotFoundError(
            f"no dead letter at offset(s) {', '.join(missing)} for "
            f"{found.recipient}; see 'tellonce dlq list {found.recipient}'"
        )
    return wanted
