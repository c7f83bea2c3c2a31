"""The hub worker on the memory store: a record whose writes the database refuses is set aside
(``unstorable``) and the rest of its batch committed once; a failing database still pauses it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from consent.model import ConsentState, Evidence
from hub.adapters.avro import AvroCodec
from hub.adapters.memory import MemoryStore, MemoryTransaction
from hub.adapters.signing import FileSigner
from hub.audit.log import CheckpointPolicy, Notary
from hub.audit.oversight import reconcile, verify_store
from hub.config.directory import Directory
from hub.consents.service import ConsentService
from hub.errors import RecordStoreError, StoreError
from hub.model import AcceptedEvent, AppliedConsentEvent, Headers, InboundMessage, notification_id
from hub.privacy.erasure import ErasureService
from hub.processing import pacing
from hub.processing import worker as worker_module
from hub.processing.consent_events import ConsentIntake, consent_message
from hub.processing.life_events import BatchProcessor
from hub.processing.receipts import RECEIPT_SCHEMA, DeliveryIntake
from hub.processing.relay import Relay
from hub.processing.worker import HubWorker, Totals, stored_offsets
from hub.testing.fakes import ListSource, RecordingProducer
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.publishing import event_message
from hub.wire.topics import CONSENT_TOPIC, LIFEEVENTS_TOPIC, RECEIPTS_TOPIC, REJECTED_TOPIC
from tests.samples import address_changed, consent_grant
from tests.unit.conftest import PSEUDONYMS
from tests.watchdog import watchdog

GROUP = "tellonce-hub"
PUBLISHER, SUBJECT = "bc-service-bc", "SBC-4242"
PORTAL, PORTAL_ID = "canada-ca-portal", "GCKEY-4242"
RECIPIENT = "cra-individual"
REFUSED = "boom"  # the value the database's own rule refuses (a ce_id, or a receipt's sink)
UNAVAILABLE = "audit log unavailable; not accepting events until it recovers"
SET_ASIDE = "record set aside: it cannot be stored"
RUN_LIMIT_S = 20.0


def check_violation() -> Exception:
    return RecordStoreError("the database refused a write of the batch", cause="CheckViolation")


class FragileStore(MemoryStore):
    """The memory store with a rule the hub's checks do not know, as a CHECK constraint or a
    trigger would add: writing an event or consent event whose ce_id is ``REFUSED``, or a
    delivery whose sink is, raises ``refusal()`` (with ``refuse_rejections``, every rejection
    row too). ``down`` transactions fail first, as a database that is down; ``outage`` = (n, k)
    makes k more fail right after the n-th refusal. ``meanwhile`` holds writes of another
    worker, committed before our next transaction. ``committed`` keeps the stored offsets after
    every committed transaction."""

    def __init__(
        self,
        refusal: Callable[[], Exception] = check_violation,
        *,
        outage: tuple[int, int] = (0, 0),
        refuse_rejections: bool = False,
    ) -> None:
        super().__init__()
        self.refusal = refusal
        self.outage = outage
        self.refuse_rejections = refuse_rejections
        self.down = 0
        self.refusals = 0
        self.outages = 0
        self.committed: list[dict[tuple[str, str, int], int]] = []
        self.meanwhile: list[Callable[[MemoryTransaction], None]] = []
        self.on_refusal: Callable[[int], None] = lambda count: None

    def refuse(self) -> Exception:
        self.refusals += 1
        if self.refusals == self.outage[0]:
            self.down += self.outage[1]
        self.on_refusal(self.refusals)
        return self.refusal()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        while self.meanwhile:
            with super().transaction() as other:
                self.meanwhile.pop(0)(other)
        if self.down:
            self.down -= 1
            self.outages += 1
            raise StoreError("database error (OperationalError); the batch was rolled back")
        with super().transaction() as tx:
            yield Refusing(tx, self)
        with super().transaction() as stored:
            self.committed.append(
                {
                    (GROUP, topic, partition): offset
                    for topic in (LIFEEVENTS_TOPIC, CONSENT_TOPIC, RECEIPTS_TOPIC)
                    for partition, offset in stored.offsets(GROUP, topic).items()
                }
            )


class Refusing:
    """A memory transaction whose writes of the refused value raise, as the database would."""

    def __init__(self, tx: MemoryTransaction, store: FragileStore) -> None:
        self._tx = tx
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def _check(self, value: str) -> None:
        if value == REFUSED:
            raise self._store.refuse()

    def add_events(self, events: Sequence[AcceptedEvent]) -> None:
        for event in events:
            self._check(event.event_id)
        self._tx.add_events(events)

    def add_consent_events(self, applied: Sequence[AppliedConsentEvent]) -> None:
        for row in applied:
            self._check(row.event_id)
        self._tx.add_consent_events(applied)

    def save_deliveries(self, deliveries: Sequence[Any], *, new: bool) -> None:
        for delivery in deliveries:
            self._check(delivery.sink)
        self._tx.save_deliveries(deliveries, new=new)

    def add_rejections(self, rejections: Sequence[Any]) -> None:
        if self._store.refuse_rejections:
            raise self._store.refuse()
        self._tx.add_rejections(rejections)


@dataclass
class World:
    """A linked, consenting client, the hub's parts around one store, and what goes on the
    wire: ``publish``, ``grant`` and ``receipt`` add records to the source."""

    store: FragileStore
    codec: AvroCodec
    directory: Directory
    now: datetime
    signer: FileSigner
    source: ListSource
    producer: RecordingProducer = field(default_factory=RecordingProducer)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def add(self, topic: str, key: bytes, value: bytes, headers: Headers, partition: int) -> None:
        offset = self.offsets.get((topic, partition), 0)
        self.offsets[(topic, partition)] = offset + 1
        self.source.messages.append(
            InboundMessage(topic, partition, offset, key, value, list(headers))
        )

    def publish(self, ce_id: str, partition: int = 0) -> None:
        payload = address_changed(SUBJECT, self.now.date())
        key, value, headers, _ = event_message(
            self.codec,
            source=PUBLISHER,
            event_type="AddressChanged",
            payload=payload,
            at=self.now - timedelta(minutes=1),
            event_id=ce_id,
        )
        self.add(LIFEEVENTS_TOPIC, key, value, headers, partition)

    def grant(self, ce_id: str, recipient: str = RECIPIENT) -> None:
        record = consent_grant(PORTAL_ID, recipient, self.now - timedelta(minutes=1))
        key, value, headers, _ = consent_message(
            self.codec, source=PORTAL, record=record, at=self.now, event_id=ce_id
        )
        self.add(CONSENT_TOPIC, key, value, headers, 0)

    def receipt(self, ce_id: str, *, sink: str) -> None:
        """A DELIVERED receipt for the notice of life event ``ce_id``."""
        value = self.codec.encode(
            RECEIPT_SCHEMA,
            {
                "notification_id": notification_id(PUBLISHER, ce_id, RECIPIENT),
                "recipient": RECIPIENT,
                "event_id": ce_id,
                "status": "DELIVERED",
                "sink": sink,
                "detail": None,
                "recorded_at": self.now,
            },
        )
        headers = cloudevent_headers("r", RECEIPT_SCHEMA, self.now, source="tellonce-connector")
        self.add(RECEIPTS_TOPIC, RECIPIENT.encode(), value, headers, 0)

    def worker(self) -> HubWorker:
        clock = lambda: self.now  # noqa: E731
        service = ConsentService(self.store, self.directory, clock=clock)
        common = {"codec": self.codec, "clock": clock, "group_id": GROUP, "pseudonyms": PSEUDONYMS}
        return HubWorker(
            store=self.store,
            source=self.source,
            processor=BatchProcessor(directory=self.directory, **common),
            relay=Relay(self.store, self.producer, clock),
            clock=clock,
            notary=Notary(self.signer, CheckpointPolicy(every_leaves=1_000, every_seconds=3_600)),
            intakes=[
                ConsentIntake(
                    directory=self.directory,
                    service=service,
                    erasure=ErasureService(
                        self.store, resolve=service.resolve, pseudonyms=PSEUDONYMS, clock=clock
                    ),
                    **common,
                ),
                DeliveryIntake(**common),
            ],
        )

    def run(self, stop: threading.Event | None = None) -> Totals:
        """One worker run until it has nothing left to read (or ``stop`` is set)."""
        stop = stop or threading.Event()
        with watchdog(stop, "the worker", RUN_LIMIT_S):
            return self.worker().run(stop, idle_exit_s=0.0)

    def stored(self, topic: str) -> dict[int, int]:
        with MemoryStore.transaction(self.store) as tx:
            return tx.offsets(GROUP, topic)

    def rejected(self) -> dict[tuple[str, int, int], str]:
        return {(r.topic, r.partition, r.offset): r.reason for r in self.store.rejections()}

    def audit_holds(self) -> None:
        """The audit log verifies and reconciles with the facts in the store."""
        verdict = verify_store(self.store, lambda message, signature: True, None)
        assert verdict.ok, verdict.problem
        result = reconcile(self.store, PSEUDONYMS)
        assert result.ok, (result.tallies, result.problems)


def make_world(
    store: FragileStore, codec: AvroCodec, directory: Directory, now: datetime, tmp_path: Path
) -> World:
    service = ConsentService(store, directory, clock=lambda: now)
    evidence = Evidence("counter", "staff-1", now - timedelta(days=1))
    person = service.link(PUBLISHER, SUBJECT, evidence)
    service.link(RECIPIENT, "CRA-4242", evidence, to=person)
    service.link(PORTAL, PORTAL_ID, evidence, to=person)
    service.record(person, RECIPIENT, ["AddressChanged"], ConsentState.GIVEN, evidence)
    signer = FileSigner(tmp_path / "audit.pem", create=True)
    source = ListSource(offset_lookup=stored_offsets(store, GROUP))
    return World(store, codec, directory, now, signer, source)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries come at once: the tests wait for conditions, never for the backoff."""
    monkeypatch.setattr(pacing, "RETRY_DELAYS", (0.0,))


@pytest.fixture
def world(codec: AvroCodec, directory: Directory, now: datetime, tmp_path: Path) -> World:
    return make_world(FragileStore(), codec, directory, now, tmp_path)


def events_by_id(world: World) -> list[str]:
    return sorted(e.event_id for e in world.store.events())


# -- one record the database refuses ---------------------------------------------------------


def test_a_record_the_database_refuses_is_set_aside_and_the_rest_committed_once(
    world: World,
) -> None:
    """The batch's other events are accepted once, the refused one is rejected as unstorable
    (row, rejected topic, leaf), the offsets move past it, and a warning names its position and
    the error class."""
    for ce_id in ("e-1", "e-2", "e-3", REFUSED, "e-5", "e-6"):
        world.publish(ce_id)
    with capture_logs() as logs:
        totals = world.run()

    assert (totals.accepted, totals.rejected, totals.disclosed) == (5, 1, 5)
    assert events_by_id(world) == ["e-1", "e-2", "e-3", "e-5", "e-6"]
    assert world.rejected() == {(LIFEEVENTS_TOPIC, 0, 3): "unstorable"}
    (row,) = world.store.rejections()
    assert "CheckViolation" in row.detail
    assert (row.source, row.event_id) == (PUBLISHER, PSEUDONYMS.of(REFUSED))
    assert world.stored(LIFEEVENTS_TOPIC) == {0: 6}
    (on_wire,) = world.producer.to(REJECTED_TOPIC)
    wire = world.codec.decode(on_wire.value).record
    assert (wire["reason"], wire["offset"], wire["ce_id"]) == ("unstorable", 3, REFUSED)
    assert [m.topic for m in world.producer.sent].count(f"tellonce.notify.{RECIPIENT}.v1") == 5
    (warning,) = [e for e in logs if e["event"] == SET_ASIDE]
    assert warning["log_level"] == "warning"
    assert (warning["position"], warning["error_class"]) == (
        f"{LIFEEVENTS_TOPIC}/0/3",
        "CheckViolation",
    )
    assert not [e for e in logs if e["log_level"] == "error"]
    world.audit_holds()


def test_refused_records_in_one_batch_are_each_set_aside_and_offsets_only_move_forward(
    world: World,
) -> None:
    """Two refused records on two partitions: each is set aside, every other event is accepted
    once, and no committed offset ever goes back."""
    for n in range(8):
        world.publish(REFUSED if n in (2, 5) else f"a-{n}", partition=0)
        world.publish(f"b-{n}", partition=1)
    world.publish(REFUSED, partition=1)  # the same ce_id again, refused again

    totals = world.run()

    assert (totals.accepted, totals.rejected) == (14, 3)
    assert events_by_id(world) == sorted(
        [f"a-{n}" for n in range(8) if n not in (2, 5)] + [f"b-{n}" for n in range(8)]
    )
    assert world.rejected() == {
        (LIFEEVENTS_TOPIC, 0, 2): "unstorable",
        (LIFEEVENTS_TOPIC, 0, 5): "unstorable",
        (LIFEEVENTS_TOPIC, 1, 8): "unstorable",
    }
    assert world.stored(LIFEEVENTS_TOPIC) == {0: 8, 1: 9}
    for before, after in zip(world.store.committed, world.store.committed[1:], strict=False):
        assert all(after.get(position, 0) >= offset for position, offset in before.items())
    world.audit_holds()


def test_an_unforeseen_exception_on_a_records_write_sets_it_aside_naming_only_its_class(
    codec: AvroCodec, directory: Directory, now: datetime, tmp_path: Path
) -> None:
    """Anything but a TellonceError raised while writing one record (a bug, a library) sets
    that record aside, naming the error class and never its text; the hub does not exit."""
    store = FragileStore(lambda: KeyError("Jane Doe, 12 Nightshade Row"))
    world = make_world(store, codec, directory, now, tmp_path)
    for ce_id in ("e-1", REFUSED, "e-3"):
        world.publish(ce_id)

    totals = world.run()

    assert (totals.accepted, totals.rejected) == (2, 1)
    (row,) = world.store.rejections()
    assert row.reason == "unstorable"
    assert "KeyError" in row.detail
    assert "Jane" not in row.detail
    assert "Nightshade" not in row.detail
    world.audit_holds()


def test_a_consent_event_and_a_receipt_the_database_refuses_are_set_aside_and_the_next_apply(
    world: World,
) -> None:
    """On the consent topic the refused change is rejected (row, rejected topic, leaf) and the
    grant behind it applied; on the receipts topic the refused receipt is refused and the one
    behind it recorded."""
    world.publish("e-1")
    world.grant(REFUSED)
    world.grant("c-2", recipient="bc-msp")
    world.run()
    world.receipt("e-1", sink=REFUSED)
    world.receipt("e-1", sink="webhook")

    world.run()

    assert world.rejected() == {
        (CONSENT_TOPIC, 0, 0): "unstorable",
        (RECEIPTS_TOPIC, 0, 0): "unstorable",
    }
    assert [(c.recipient, c.evidence.channel) for c in world.store.consents()] == [
        (RECIPIENT, "counter"),
        ("bc-msp", "online"),
    ]
    assert [(d.sink, d.status) for d in world.store.deliveries()] == [("webhook", "delivered")]
    assert world.stored(CONSENT_TOPIC) == {0: 2}
    assert world.stored(RECEIPTS_TOPIC) == {0: 2}
    kinds = [r.kind for r in world.store.audit_records()]
    assert kinds.count("rejected") == 1
    assert kinds.count("receipt_refused") == 1
    assert [m.topic for m in world.producer.sent].count(REJECTED_TOPIC) == 1  # consent only
    world.audit_holds()


# -- what still pauses the hub ---------------------------------------------------------------


def test_a_failing_database_pauses_and_retries_and_rejects_nothing(
    codec: AvroCodec, directory: Directory, now: datetime, tmp_path: Path
) -> None:
    """While the database fails, the worker logs that it accepts nothing and retries; then each
    event is accepted once and nothing is set aside."""
    store = FragileStore()
    world = make_world(store, codec, directory, now, tmp_path)
    for ce_id in ("e-1", "e-2", "e-3"):
        world.publish(ce_id)
    store.down = 4

    with capture_logs() as logs:
        totals = world.run()

    assert store.outages == 4
    assert len([e for e in logs if e["event"] == UNAVAILABLE]) >= 2
    assert not [e for e in logs if e["event"] == SET_ASIDE]
    assert (totals.accepted, totals.rejected) == (3, 0)
    assert events_by_id(world) == ["e-1", "e-2", "e-3"]
    assert world.store.rejections() == []
    world.audit_holds()


def test_a_database_failure_during_the_search_keeps_what_was_committed_and_finishes_later(
    codec: AvroCodec, directory: Directory, now: datetime, tmp_path: Path
) -> None:
    """The database going down while the worker looks for the refused record pauses it, and
    the half committed before stays committed; once back, it resumes from the stored offsets:
    every event accepted once, the refused one set aside once."""
    store = FragileStore(outage=(2, 3))  # the first half is in, the second just refused
    world = make_world(store, codec, directory, now, tmp_path)
    for ce_id in ("e-1", "e-2", "e-3", "e-4", REFUSED, "e-6"):
        world.publish(ce_id)

    with capture_logs() as logs:
        totals = world.run()

    assert store.outages == 3
    assert any(e["event"] == UNAVAILABLE for e in logs)
    assert {(GROUP, LIFEEVENTS_TOPIC, 0): 3} in store.committed  # kept through the outage
    assert (totals.accepted, totals.rejected) == (5, 1)
    assert events_by_id(world) == ["e-1", "e-2", "e-3", "e-4", "e-6"]
    assert world.rejected() == {(LIFEEVENTS_TOPIC, 0, 4): "unstorable"}
    assert world.stored(LIFEEVENTS_TOPIC) == {0: 6}
    world.audit_holds()


@pytest.mark.parametrize("batch", [(REFUSED,), ("e-1", REFUSED, "e-3")], ids=["alone", "amid"])
def test_a_key_another_worker_took_meanwhile_is_a_duplicate_not_unstorable(
    codec: AvroCodec, directory: Directory, now: datetime, tmp_path: Path, batch: tuple[str, ...]
) -> None:
    """A unique violation because another worker stored the same event first passes when the
    record is tried again, even alone in its batch: it reads as a duplicate, nothing is set
    aside."""
    store = FragileStore(lambda: RecordStoreError("taken", cause="UniqueViolation"))
    world = make_world(store, codec, directory, now, tmp_path)
    for ce_id in batch:
        world.publish(ce_id)
    theirs = AcceptedEvent(PUBLISHER, REFUSED, "AddressChanged", now, None, "t", 9, 0, now)
    store.on_refusal = lambda count: store.meanwhile.append(lambda tx: tx.add_events([theirs]))

    totals = world.run()

    assert store.refusals == 1
    assert (totals.accepted, totals.duplicates, totals.rejected) == (len(batch) - 1, 1, 0)
    assert world.store.rejections() == []
    assert events_by_id(world) == sorted(batch)
    assert world.stored(LIFEEVENTS_TOPIC) == {0: len(batch)}


def test_a_database_that_refuses_even_the_rejection_pauses_instead_of_exiting(
    codec: AvroCodec, directory: Directory, now: datetime, tmp_path: Path
) -> None:
    """When the rejection of the refused record is refused as well, the worker fails closed:
    it logs why, retries, keeps the good events, and never moves the offset past that record."""
    store = FragileStore(refuse_rejections=True)
    world = make_world(store, codec, directory, now, tmp_path)
    for ce_id in ("e-1", REFUSED, "e-3"):
        world.publish(ce_id)
    stop = threading.Event()
    store.on_refusal = lambda count: stop.set() if count >= 8 else None

    with capture_logs() as logs:
        totals = world.run(stop)

    errors = [e for e in logs if e["event"] == UNAVAILABLE]
    assert len(errors) >= 2
    assert (
        "refused to record the rejection of record tellonce.lifeevents.v1/0/1"
        in (errors[0]["error"])
    )
    assert (totals.accepted, totals.rejected) == (1, 0)
    assert events_by_id(world) == ["e-1"]
    assert world.stored(LIFEEVENTS_TOPIC) == {0: 1}
    assert world.store.rejections() == []


# -- workers sharing the audit log -----------------------------------------------------------


def test_a_worker_queued_for_the_audit_head_keeps_alive_until_it_gets_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While other workers' batches hold the audit head, the worker waits in bounded turns and
    polls with its partitions paused between them (a wait without bound outlasts the max poll
    interval), then commits its batch once."""
    steps: list[str] = []
    held_elsewhere = iter([True, True])  # two waits run out; then the head is free

    def lock_audit_head(self: MemoryTransaction, wait_s: float | None = None) -> bool:
        busy = wait_s is not None and next(held_elsewhere, False)
        steps.append("wait ran out" if busy else "head held")
        return not busy

    monkeypatch.setattr(MemoryTransaction, "lock_audit_head", lock_audit_head)
    monkeypatch.setattr(ListSource, "keep_alive", lambda self: steps.append("keep alive"))
    monkeypatch.setattr(worker_module, "KEEP_ALIVE_S", 0.0)
    world.publish("e-1")
    totals = world.run()
    assert totals.accepted == 1
    assert steps[:5] == ["wait ran out", "keep alive", "wait ran out", "keep alive", "head held"]
    assert events_by_id(world) == ["e-1"]
