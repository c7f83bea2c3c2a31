"""The connector runner on in-memory ports: retries in place, dead letters, receipts, commits;
and the hub's side of a dead letter (the receipt, the replay, the delivery after it)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors.contract import DeliveryResult, Notification, Outcome
from hub.adapters.avro import AvroCodec
from hub.adapters.memory import MemoryStore
from hub.adapters.record_keys import RecordKey, verify_ed25519
from hub.audit.log import AuditLog
from hub.audit.oversight import reconcile, verify_store
from hub.delivery import dead_letters
from hub.delivery.dead_letters import DeadLetter, dlq_topic, record_replays, replayed
from hub.delivery.middleware import Chain, Middleware
from hub.delivery.replay import DeadLetterOffice
from hub.delivery.retries import RetryPolicy
from hub.delivery.runner import ConnectorRunner, ConnectorStopped, DeliveryTotals
from hub.errors import BrokerError, ConfigError
from hub.model import AcceptedEvent, Decision, InboundMessage
from hub.model import DecisionOutcome as Decided
from hub.processing.receipts import DeliveryIntake
from hub.testing.fakes import FaultyCodec, ListSource, RecordingProducer, Sent
from hub.wire.cloudevents import cloudevent_headers
from hub.wire.signatures import (
    EVENT_CONTEXT,
    NOTICE_CONTEXT,
    NoticeSignatures,
    SignaturePolicy,
    signed,
)
from hub.wire.topics import RECEIPTS_TOPIC, notify_topic
from tests.unit.conftest import PSEUDONYMS

RECIPIENT = "bc-msp"
TOPIC = notify_topic(RECIPIENT)
DLQ = dlq_topic(RECIPIENT)
NOTICE = "ca.tellonce.notify.AddressChangeNotice"
T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
SOURCE = "bc-service-bc"
STREET, TOWN, POSTAL = "77 Quillback Lane", "Tofino-Ucluelet", "V0R 2Z0"
# Fast retries: waits of 1, 2, 4, 5, 5 ... ms (the jitter picks the cap).
QUICK = RetryPolicy(timeout_ms=-1, delay_initial_ms=1, delay_max_ms=5, jitter=lambda cap: cap)


# -- a scripted sink, the topic, the rig (the ports are hub.testing.fakes) ------------------


Answer = DeliveryResult | BaseException


class ScriptedSink:
    """Answers each notification from its script, in order; DELIVERED once the script runs out
    (or ``forever``, when given, for every attempt)."""

    name = "scripted"

    def __init__(
        self,
        scripts: dict[str, list[Answer]] | None = None,
        forever: dict[str, Answer] | None = None,
    ) -> None:
        self.scripts = {k: list(v) for k, v in (scripts or {}).items()}
        self.forever = forever or {}
        self.calls: list[str] = []
        self.closed = False
        self.journal: list[str] = []  # the rig shares its journal

    def deliver(self, notification: Notification) -> DeliveryResult:
        nid = notification.notification_id
        self.calls.append(nid)
        self.journal.append(f"deliver {nid}")
        script = self.scripts.get(nid)
        answer: Answer = self.forever.get(nid) or (
            script.pop(0) if script else DeliveryResult(Outcome.DELIVERED)
        )
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


class FlushingSink(ScriptedSink):
    """A buffering sink: records each flush in the journal."""

    def flush(self) -> None:
        self.journal.append("flush")


RETRY = DeliveryResult(Outcome.RETRY, "the back office answered 503", "HTTP503")
FAILED = DeliveryResult(Outcome.FAILED, "the back office refused the record", "HTTP422")


# -- building notices ------------------------------------------------------------------------


def notice_record(nid: str, subject: str) -> dict[str, Any]:
    """An AddressChangeNotice as the hub builds it, with distinctive personal values."""
    return {
        "notification_id": nid,
        "recipient": RECIPIENT,
        "subject_id": subject,
        "event_id": f"evt-{nid}",
        "event_source": SOURCE,
        "event_time": T0,
        "disclosed_fields": ["new_address"],
        "consent_revision": "c" * 64,
        "new_address": {
            "lines": [STREET],
            "municipality": TOWN,
            "province": "BC",
            "postal_code": POSTAL,
        },
    }


@dataclass
class Topic:
    """The recipient's topic, as the relay filled it."""

    codec: AvroCodec
    messages: list[InboundMessage] = field(default_factory=list)

    def notice(self, nid: str, subject: str = "MSP-90210-QX", partition: int = 0) -> Topic:
        value = self.codec.encode(NOTICE, notice_record(nid, subject))
        self.raw(value, key=subject.encode(), ce_id=nid, partition=partition, subject=subject)
        return self

    def signed_notice(
        self, nid: str, by: RecordKey, context: str = NOTICE_CONTEXT, recipient: str = RECIPIENT
    ) -> Topic:
        """A notice for ``recipient`` signed by ``by`` (the hub's key, or anyone's), over
        ``context``."""
        subject = "MSP-90210-QX"
        record = notice_record(nid, subject) | {"recipient": recipient}
        value = self.codec.encode(NOTICE, record)
        headers = cloudevent_headers(nid, NOTICE, T0, subject=subject)
        headers = signed(subject.encode(), value, headers, by, context)
        offset = len(self.messages)
        self.messages.append(InboundMessage(TOPIC, 0, offset, subject.encode(), value, headers))
        return self

    def raw(
        self,
        value: bytes | None,
        *,
        key: bytes | None = b"MSP-1",
        ce_id: str = "junk",
        partition: int = 0,
        subject: str | None = None,
    ) -> Topic:
        headers = cloudevent_headers(ce_id, NOTICE, T0, subject=subject)
        offset = sum(1 for m in self.messages if m.partition == partition)
        self.messages.append(InboundMessage(TOPIC, partition, offset, key, value, headers))
        return self


def hub_notices(hub: RecordKey, *, required: bool) -> NoticeSignatures:
    """What a connector checks notices against: ``hub`` listed as the hub's key."""
    return NoticeSignatures(
        (hub.directory_entry(datetime(2025, 1, 1, tzinfo=UTC)),),
        SignaturePolicy(verify_ed25519, required=required),
    )


@dataclass
class Rig:
    """One runner on in-memory ports, and everything it touched."""

    codec: AvroCodec
    topic: Topic
    sink: ScriptedSink
    retry: RetryPolicy = QUICK
    middleware: Middleware | None = None
    progress_every_s: float = 10.0
    notices: NoticeSignatures | None = None
    journal: list[str] = field(default_factory=list)
    given_source: ListSource | None = None  # default: the topic's records, journalled

    def __post_init__(self) -> None:
        self.sink.journal = self.journal
        self.source = self.given_source or ListSource(self.topic.messages, journal=self.journal)
        self.producer = RecordingProducer(self.journal)
        self.runner = ConnectorRunner(
            recipient=RECIPIENT,
            source=self.source,
            codec=self.codec,
            sink=self.sink,
            producer=self.producer,
            clock=lambda: T0,
            retry=self.retry,
            middleware=self.middleware,
            progress_every_s=self.progress_every_s,
            notices=self.notices,
        )

    def run(self, stop: threading.Event | None = None) -> DeliveryTotals:
        return self.runner.run(stop or threading.Event(), idle_exit_s=0.0)

    def receipts(self) -> list[dict[str, Any]]:
        return [self.codec.decode(s.value).record for s in self.producer.to(RECEIPTS_TOPIC)]

    def dead(self) -> list[Sent]:
        return self.producer.to(DLQ)


@pytest.fixture
def topic(codec: AvroCodec) -> Topic:
    return Topic(codec)


def rig(codec: AvroCodec, topic: Topic, sink: ScriptedSink | None = None, **kw: Any) -> Rig:
    return Rig(codec, topic, sink or ScriptedSink(), **kw)


# -- retries and dead letters ----------------------------------------------------------------


def test_retry_twice_then_delivered_sends_one_receipt_with_three_attempts(
    codec: AvroCodec, topic: Topic
) -> None:
    """RETRY, RETRY, DELIVERED: one DELIVERED receipt (attempts 3), two retries, batch committed."""
    topic.notice("n-1")
    r = rig(codec, topic, ScriptedSink({"n-1": [RETRY, RETRY]}))
    totals = r.run()

    assert r.sink.calls == ["n-1", "n-1", "n-1"]
    assert (totals.delivered, totals.retries, totals.failed) == (1, 2, 0)
    [receipt] = r.receipts()
    assert (receipt["notification_id"], receipt["status"], receipt["attempts"]) == (
        "n-1",
        "DELIVERED",
        3,
    )
    assert receipt["dead_letter_topic"] is None
    assert receipt["sink"] == "scripted"
    assert r.dead() == []
    assert r.source.committed == 1
    assert r.producer.to(RECEIPTS_TOPIC)[0].key == RECIPIENT.encode()


def test_receipts_use_schema_v2(codec: AvroCodec, topic: Topic) -> None:
    """Receipts are written with Receipt v2 (schema id 10), which carries the attempt count."""
    topic.notice("n-1")
    r = rig(codec, topic)
    r.run()
    [sent] = r.producer.to(RECEIPTS_TOPIC)
    decoded = codec.decode(sent.value)
    assert (decoded.entry.id, decoded.entry.version) == (10, 2)
    assert sent.header("ce_id") == "n-1:delivered"
    assert sent.header("ce_source") == f"tellonce-connector/{RECIPIENT}"


def test_retry_budget_spent_dead_letters_the_original_record(
    codec: AvroCodec, topic: Topic
) -> None:
    """RETRY until the 50 ms budget is spent: the original record goes to the DLQ with error
    headers, a FAILED receipt names the DLQ, and the batch is committed."""
    topic.notice("n-1", subject="MSP-1").notice("n-2", subject="MSP-2")
    policy = RetryPolicy(timeout_ms=50, delay_initial_ms=1, delay_max_ms=5, jitter=lambda c: c)
    r = rig(codec, topic, ScriptedSink(forever={"n-1": RETRY}), retry=policy)
    # Timed, not awaited: the budget is time itself. The runner reads time.monotonic, so the
    # lower bound cannot fail by chance; the upper one only bounds a runner that never gives up.
    started = time.monotonic()
    totals = r.run()
    elapsed = time.monotonic() - started

    attempts = r.sink.calls.count("n-1")
    assert attempts >= 3
    assert 0.04 <= elapsed < 5.0
    assert (totals.failed, totals.delivered, totals.retries) == (1, 1, attempts - 1)
    [letter] = r.dead()
    original = topic.messages[0]
    assert (letter.key, letter.value) == (original.key, original.value)
    for name, value in original.headers:  # the original headers are kept, unchanged
        assert letter.header(name) == value.decode()
    assert letter.header(dead_letters.CLASS) == "HTTP503"
    assert letter.header(dead_letters.MESSAGE) == "the back office answered 503"
    assert letter.header(dead_letters.ATTEMPTS) == str(attempts)
    assert letter.header(dead_letters.TOPIC) == TOPIC
    assert (letter.header(dead_letters.PARTITION), letter.header(dead_letters.OFFSET)) == (
        "0",
        "0",
    )
    assert letter.header(dead_letters.TIME) == T0.isoformat()
    first, second = r.receipts()
    assert (first["notification_id"], first["status"], first["dead_letter_topic"]) == (
        "n-1",
        "FAILED",
        DLQ,
    )
    assert (first["attempts"], first["detail"]) == (attempts, "the back office answered 503")
    assert (second["notification_id"], second["status"]) == ("n-2", "DELIVERED")
    assert r.source.committed == 2


def test_failed_is_dead_lettered_at_once(codec: AvroCodec, topic: Topic) -> None:
    """FAILED is never retried: one attempt, straight to the dead-letter topic."""
    topic.notice("n-1")
    r = rig(codec, topic, ScriptedSink({"n-1": [FAILED]}))
    totals = r.run()
    assert r.sink.calls == ["n-1"]
    assert (totals.failed, totals.retries) == (1, 0)
    [letter] = r.dead()
    assert (letter.header(dead_letters.CLASS), letter.header(dead_letters.ATTEMPTS)) == (
        "HTTP422",
        "1",
    )
    [receipt] = r.receipts()
    assert (receipt["status"], receipt["dead_letter_topic"], receipt["attempts"]) == (
        "FAILED",
        DLQ,
        1,
    )
    assert r.source.committed == 1


def test_retry_timeout_zero_dead_letters_after_one_attempt(codec: AvroCodec, topic: Topic) -> None:
    """errors.retry.timeout=0: a RETRY answer is dead-lettered after the first attempt."""
    topic.notice("n-1")
    policy = RetryPolicy(timeout_ms=0, jitter=lambda cap: 0.0)
    r = rig(codec, topic, ScriptedSink(forever={"n-1": RETRY}), retry=policy)
    totals = r.run()
    assert r.sink.calls == ["n-1"]
    assert (totals.failed, totals.retries) == (1, 0)
    assert r.dead()[0].header(dead_letters.ATTEMPTS) == "1"


@pytest.mark.parametrize(
    "value", [b"\x00\x00\x00\x00\x05\xff\xff", b"not avro", None], ids=["body", "framing", "none"]
)
def test_undecodable_record_is_dead_lettered_without_a_receipt(
    codec: AvroCodec, topic: Topic, value: bytes | None
) -> None:
    """A record the connector cannot decode goes to the DLQ as DecodeError, with no receipt,
    and the notifications after it are still delivered."""
    topic.raw(value, ce_id="n-broken").notice("n-2")
    r = rig(codec, topic)
    totals = r.run()
    [letter] = r.dead()
    assert letter.header(dead_letters.CLASS) == "DecodeError"
    assert (letter.header(dead_letters.MESSAGE) or "").startswith("undecodable: ")
    assert (letter.key, letter.value) == (b"MSP-1", value or b"")
    assert [rec["notification_id"] for rec in r.receipts()] == ["n-2"]
    assert r.sink.calls == ["n-2"]
    assert (totals.failed, totals.delivered) == (1, 1)
    assert r.source.committed == 2


def test_an_undecodable_record_is_logged_by_position_unless_its_ce_id_is_a_notification_id(
    codec: AvroCodec, topic: Topic
) -> None:
    """Anyone can write a notify topic: the dead-letter log line names an unreadable record by
    its ce_id only when that is a UUID (an id the hub mints), else by its position."""
    minted = "0b6f2c1e-3c52-5d9e-9a44-2f0f6a1c9b10"
    topic.raw(b"junk", ce_id="Jane-Doe-1984").raw(b"junk", ce_id=minted)
    with capture_logs() as logs:
        rig(codec, topic).run()
    named = [e["notification"] for e in logs if e["event"] == "notification dead-lettered"]
    assert named == [f"{TOPIC}/0/0", minted]
    assert not [e for e in logs if "Jane" in repr(e)]


def test_any_exception_a_notice_provokes_dead_letters_it_naming_the_class(
    codec: AvroCodec, topic: Topic
) -> None:
    """A record whose reading raises OverflowError (not a RejectedEvent) is dead-lettered with
    that class and no receipt; the notice after it is delivered and both are committed."""
    broken = codec.encode(NOTICE, notice_record("n-1", "MSP-1")) + b"poison"
    topic.raw(broken, ce_id="n-1").notice("n-2")
    r = rig(FaultyCodec(codec, OverflowError("date value out of range")), topic)
    totals = r.run()
    [letter] = r.dead()
    assert letter.header(dead_letters.CLASS) == "OverflowError"
    assert letter.header(dead_letters.MESSAGE) == "undecodable: the notice raised OverflowError"
    assert [rec["notification_id"] for rec in r.receipts()] == ["n-2"]
    assert (totals.failed, totals.delivered) == (1, 1)
    assert r.source.committed == 2


def test_a_notice_with_a_time_out_of_range_is_dead_lettered(codec: AvroCodec, topic: Topic) -> None:
    """A notice stamped after 2100 (a hub fed a far-future ce_time) is dead-lettered as
    out_of_range instead of crashing the connector; the next notice is delivered."""
    late = notice_record("n-1", "MSP-1") | {"event_time": datetime(2150, 1, 1, tzinfo=UTC)}
    topic.raw(codec.encode(NOTICE, late), ce_id="n-1").notice("n-2")
    r = rig(codec, topic)
    totals = r.run()
    [letter] = r.dead()
    assert letter.header(dead_letters.CLASS) == "DecodeError"
    assert letter.header(dead_letters.MESSAGE) == "undecodable: out_of_range"
    assert (totals.failed, totals.delivered) == (1, 1)


def test_only_notices_signed_by_a_listed_hub_key_are_delivered(
    codec: AvroCodec, topic: Topic
) -> None:
    """With signed notices required, an unsigned notice, one signed by a key the directory
    does not list for the hub, and one whose hub signature was made as a life event's are each
    dead-lettered with the reason, with no receipt and nothing delivered; the hub's own
    notice is delivered."""
    hub, stranger = RecordKey.generate(), RecordKey.generate()
    topic.notice("n-unsigned").signed_notice("n-stranger", stranger)
    topic.signed_notice("n-as-event", hub, EVENT_CONTEXT).signed_notice("n-good", hub)
    r = rig(codec, topic, notices=hub_notices(hub, required=True))
    totals = r.run()
    assert r.sink.calls == ["n-good"]
    assert [rec["notification_id"] for rec in r.receipts()] == ["n-good"]
    reasons = [(letter.header(dead_letters.MESSAGE) or "").split(":")[0] for letter in r.dead()]
    assert reasons == ["unsigned", "unknown_key", "bad_signature"]
    assert {letter.header(dead_letters.CLASS) for letter in r.dead()} == {"NoticeSignatureError"}
    assert all(
        STREET.encode() not in (letter.header(dead_letters.MESSAGE) or "").encode()
        for letter in r.dead()
    )
    assert (totals.failed, totals.delivered) == (3, 1)
    assert r.source.committed == 4


def test_the_hubs_notice_for_another_recipient_copied_onto_this_topic_is_not_delivered(
    codec: AvroCodec, topic: Topic
) -> None:
    """A notice the hub signed for cra-individual, copied onto bc-msp's topic (by a broker
    operator, say), passes the signature check but is dead-lettered as misdirected: no
    delivery to bc-msp's back office, no receipt; the next notice is delivered."""
    hub = RecordKey.generate()
    topic.signed_notice("n-cra", hub, recipient="cra-individual").signed_notice("n-msp", hub)
    r = rig(codec, topic, notices=hub_notices(hub, required=True))
    totals = r.run()
    assert r.sink.calls == ["n-msp"]
    assert [rec["notification_id"] for rec in r.receipts()] == ["n-msp"]
    (letter,) = r.dead()
    assert (letter.header(dead_letters.MESSAGE) or "").startswith("misdirected:")
    assert letter.header(dead_letters.CLASS) == "MisdirectedNotice"
    assert "cra-individual" not in (letter.header(dead_letters.MESSAGE) or "")
    assert (totals.failed, totals.delivered) == (1, 1)


def test_unsigned_notices_are_delivered_while_signed_notices_are_not_required(
    codec: AvroCodec, topic: Topic
) -> None:
    """Before the switch (hub keys listed, signatures not required), an unsigned notice is
    delivered, and a signed one is still checked."""
    hub = RecordKey.generate()
    topic.notice("n-unsigned").signed_notice("n-stranger", RecordKey.generate())
    r = rig(codec, topic, notices=hub_notices(hub, required=False))
    r.run()
    assert r.sink.calls == ["n-unsigned"]
    assert len(r.dead()) == 1


def test_a_broker_failure_while_reading_is_redelivered_not_dead_lettered(
    codec: AvroCodec, topic: Topic
) -> None:
    """A retriable error while reading a notice is no reason to dead-letter it: the batch is
    rewound for redelivery and nothing goes to the dead-letter topic."""
    topic.raw(codec.encode(NOTICE, notice_record("n-1", "MSP-1")) + b"poison", ce_id="n-1")
    r = rig(FaultyCodec(codec, BrokerError("schema registry unreachable")), topic)
    stop = threading.Event()
    r.runner.run(stop, idle_exit_s=0.0, on_batch=lambda _totals: stop.set())
    assert r.dead() == []
    assert r.source.committed == 0
    assert r.source.rewinds >= 1


class RestartingCluster(ListSource):
    """A source whose first commit is refused and whose broker then cannot answer the next
    ``outages`` rewinds and polls, as while a whole Kafka cluster restarts."""

    def __init__(self, messages: list[InboundMessage], outages: int) -> None:
        super().__init__(messages)
        self.refuse_commits = 1
        self.outages = outages

    def _down(self) -> None:
        if self.outages:
            self.outages -= 1
            raise BrokerError("cannot read the committed offsets: KafkaConnectionError")

    def rewind(self) -> None:
        self._down()
        super().rewind()

    def poll(self, max_records: int, timeout_ms: int) -> list[InboundMessage]:
        self._down()
        return super().poll(max_records, timeout_ms)


def test_a_broker_down_while_rewinding_is_waited_out(
    codec: AvroCodec, topic: Topic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit refused, then a broker that cannot say where to rewind to nor serve polls:
    the connector waits and asks again instead of stopping, then delivers and commits."""
    monkeypatch.setattr("hub.delivery.runner.BROKER_RETRY_S", (0.01,))
    topic.notice("n-1")
    source = RestartingCluster(topic.messages, outages=3)
    r = rig(codec, topic, given_source=source)
    r.run()
    assert (source.outages, source.rewinds, source.committed) == (0, 1, 1)
    assert [x["notification_id"] for x in r.receipts()] == ["n-1", "n-1"]


def test_a_receipt_on_a_notify_topic_is_dead_lettered(codec: AvroCodec, topic: Topic) -> None:
    """A well-formed record of another schema (a receipt) is no notice: DecodeError, no retry."""
    receipt = codec.encode(
        "ca.tellonce.receipts.Receipt",
        {
            "notification_id": "x",
            "recipient": RECIPIENT,
            "event_id": "e",
            "status": "DELIVERED",
            "sink": "s",
            "recorded_at": T0,
        },
    )
    topic.raw(receipt)
    r = rig(codec, topic)
    r.run()
    [letter] = r.dead()
    assert letter.header(dead_letters.CLASS) == "DecodeError"
    assert letter.header(dead_letters.MESSAGE) == "undecodable: unexpected_schema"
    assert r.receipts() == []


@pytest.mark.parametrize("answer", [FAILED, "budget"], ids=["failed", "retry-budget-spent"])
def test_tolerance_none_stops_and_commits_nothing(
    codec: AvroCodec, topic: Topic, answer: DeliveryResult | str
) -> None:
    """errors.tolerance=none: ConnectorStopped (not retriable), no DLQ record, no receipt for
    the batch, nothing committed."""
    topic.notice("n-0").notice("n-1").notice("n-2")
    policy = RetryPolicy(
        timeout_ms=20, delay_initial_ms=1, delay_max_ms=2, tolerate_all=False, jitter=lambda c: c
    )
    sink = ScriptedSink(forever={"n-1": RETRY if answer == "budget" else FAILED})
    r = rig(codec, topic, sink, retry=policy)
    with pytest.raises(ConnectorStopped) as stopped:
        r.run()
    assert not stopped.value.retriable
    assert "errors.tolerance is none" in str(stopped.value)
    assert "n-1" in str(stopped.value)
    assert r.dead() == []
    assert r.producer.sent == []
    assert r.source.committed == 0
    assert "n-2" not in r.sink.calls


def test_a_sink_exception_is_a_retry(codec: AvroCodec, topic: Topic) -> None:
    """A sink that raises counts as a failed attempt to retry, not a crash; its message (which
    may hold personal data) is not logged."""
    topic.notice("n-1")
    boom = RuntimeError(f"cannot store {STREET}")
    r = rig(codec, topic, ScriptedSink({"n-1": [boom, RETRY]}))
    with capture_logs() as logs:
        totals = r.run()
    assert r.sink.calls == ["n-1"] * 3
    assert (totals.delivered, totals.retries) == (1, 2)
    [receipt] = r.receipts()
    assert (receipt["status"], receipt["attempts"]) == ("DELIVERED", 3)
    retried = [e for e in logs if e["event"] == "delivery to retry"]
    assert [e["error"] for e in retried] == ["RuntimeError", "HTTP503"]
    assert retried[0]["reason"] == "the sink raised RuntimeError"
    assert STREET not in json.dumps(logs, default=str)


def test_a_sink_exception_past_the_budget_is_dead_lettered_with_its_class(
    codec: AvroCodec, topic: Topic
) -> None:
    """A sink that keeps raising is dead-lettered with the exception's class as error class."""
    topic.notice("n-1")
    policy = RetryPolicy(timeout_ms=0)
    r = rig(codec, topic, ScriptedSink(forever={"n-1": ValueError("bad")}), retry=policy)
    r.run()
    [letter] = r.dead()
    assert letter.header(dead_letters.CLASS) == "ValueError"
    assert letter.header(dead_letters.MESSAGE) == "the sink raised ValueError"


class StopOnRetry(Middleware):
    """Sets ``stop`` as the runner begins to wait for a retry, so the stop lands during that
    wait however fast or slow the machine is (a timer would race the deliveries before it)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def after_retry_scheduled(
        self, notification: Notification, result: DeliveryResult, delay_s: float
    ) -> None:
        self.stop.set()


def test_stop_during_a_retry_wait_returns_without_committing(
    codec: AvroCodec, topic: Topic
) -> None:
    """Stopped while waiting to retry: the runner returns at once, rewinds, commits nothing."""
    topic.notice("n-0").notice("n-1").notice("n-2")
    slow = RetryPolicy(
        timeout_ms=-1, delay_initial_ms=30_000, delay_max_ms=60_000, jitter=lambda cap: cap
    )
    stop = threading.Event()
    sink = ScriptedSink(forever={"n-1": RETRY})
    r = rig(codec, topic, sink, retry=slow, middleware=StopOnRetry(stop))
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(r.run, stop)
        try:
            # Awaited far short of the 30 s retry wait: only the stop can have ended it.
            totals = running.result(timeout=5.0)
        finally:
            stop.set()
    assert r.sink.calls == ["n-0", "n-1"]
    assert r.source.rewinds == 1
    assert r.source.committed == 0
    assert "commit" not in " ".join(r.journal)
    assert r.dead() == []
    assert (totals.delivered, totals.retries) == (1, 1)
    # What was delivered before the stop is reported; the rest is read again on restart.
    assert [rec["notification_id"] for rec in r.receipts()] == ["n-0"]


def test_a_refused_commit_redelivers_the_batch_instead_of_crashing(
    codec: AvroCodec, topic: Topic
) -> None:
    """A commit the broker refuses (a rebalance) rewinds and redelivers the batch, which the
    sink answers DUPLICATE; the runner goes on and commits."""
    topic.notice("n-1")
    duplicate = DeliveryResult(Outcome.DUPLICATE)
    r = rig(codec, topic, ScriptedSink({"n-1": [DeliveryResult(Outcome.DELIVERED), duplicate]}))
    r.source.refuse_commits = 1
    with capture_logs() as logs:
        totals = r.run()
    assert r.sink.calls == ["n-1", "n-1"]
    assert (totals.delivered, totals.duplicates) == (1, 1)
    assert [rec["status"] for rec in r.receipts()] == ["DELIVERED", "DUPLICATE"]
    assert "commit refused" in r.journal
    assert (r.source.rewinds, r.source.committed) == (1, 1)
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert warning["event"] == "batch not acknowledged or committed; will redeliver"


def test_a_retried_notification_is_delivered_before_the_next_one(
    codec: AvroCodec, topic: Topic
) -> None:
    """Order per key: the next notice for the same client waits until the retried one is done."""
    topic.notice("n-1", subject="MSP-1").notice("n-2", subject="MSP-1")
    r = rig(codec, topic, ScriptedSink({"n-1": [RETRY, RETRY]}))
    r.run()
    assert r.sink.calls == ["n-1", "n-1", "n-1", "n-2"]
    assert [rec["notification_id"] for rec in r.receipts()] == ["n-1", "n-2"]


def test_flush_comes_before_receipts_and_commit(codec: AvroCodec, topic: Topic) -> None:
    """A buffering sink is flushed once per batch, before its receipts go and before commit."""
    topic.notice("n-1").notice("n-2")
    r = rig(codec, topic, FlushingSink())
    r.run()
    assert r.journal == [
        "deliver n-1",
        "deliver n-2",
        "flush",
        f"send {RECEIPTS_TOPIC}",
        f"send {RECEIPTS_TOPIC}",
        "commit 2",
    ]


def test_flush_precedes_receipts_even_when_stopped_mid_batch(
    codec: AvroCodec, topic: Topic
) -> None:
    """Stopped mid-batch: deliveries so far are flushed before their receipts; no commit."""
    topic.notice("n-1").notice("n-2")
    slow = RetryPolicy(
        timeout_ms=-1, delay_initial_ms=30_000, delay_max_ms=60_000, jitter=lambda cap: cap
    )
    stop = threading.Event()
    sink = FlushingSink(forever={"n-2": RETRY})
    r = rig(codec, topic, sink, retry=slow, middleware=StopOnRetry(stop))
    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(r.run, stop)
        try:
            running.result(timeout=5.0)  # far short of the 30 s retry wait
        finally:
            stop.set()
    assert r.journal == ["deliver n-1", "deliver n-2", "flush", f"send {RECEIPTS_TOPIC}", "rewind"]


class Recorder(Middleware):
    """Writes each hook call into a shared list."""

    def __init__(self, name: str, calls: list[tuple[Any, ...]]) -> None:
        self.name = name
        self.calls = calls

    def before_delivery(self, notification: Notification, attempt: int) -> None:
        self.calls.append((self.name, "before", notification.notification_id, attempt))

    def after_delivery(
        self, notification: Notification, result: DeliveryResult, attempt: int
    ) -> None:
        self.calls.append((self.name, "after", notification.notification_id, result.outcome))

    def after_retry_scheduled(
        self, notification: Notification, result: DeliveryResult, delay_s: float
    ) -> None:
        self.calls.append((self.name, "retry", notification.notification_id, delay_s))

    def after_dead_letter(
        self, notification_id: str, result: DeliveryResult, attempts: int
    ) -> None:
        self.calls.append((self.name, "dead", notification_id, attempts))


def test_middleware_hooks_are_called_in_order(codec: AvroCodec, topic: Topic) -> None:
    """Hooks run around every attempt in order, each middleware of a Chain in its turn."""
    topic.notice("n-1").notice("n-2").raw(b"junk", ce_id="n-3")
    calls: list[tuple[Any, ...]] = []
    chain = Chain(Recorder("a", calls), Recorder("b", calls))
    r = rig(codec, topic, ScriptedSink({"n-1": [RETRY], "n-2": [FAILED]}), middleware=chain)
    r.run()
    each = [
        ("before", "n-1", 1),
        ("after", "n-1", Outcome.RETRY),
        ("retry", "n-1", 0.001),
        ("before", "n-1", 2),
        ("after", "n-1", Outcome.DELIVERED),
        ("before", "n-2", 1),
        ("after", "n-2", Outcome.FAILED),
        ("dead", "n-2", 1),
        # undecodable, and its ce_id is no notification id the hub minted: its position
        ("dead", f"{TOPIC}/0/2", 1),
    ]
    assert calls == [(name, *call) for call in each for name in ("a", "b")]


def test_the_default_middleware_does_nothing(codec: AvroCodec, topic: Topic) -> None:
    """Without middleware= the runner uses the no-op base class and still delivers."""
    topic.notice("n-1")
    r = rig(codec, topic, ScriptedSink({"n-1": [RETRY]}))
    assert r.run().delivered == 1


def test_progress_is_logged_without_personal_values(codec: AvroCodec, topic: Topic) -> None:
    """A progress line with the counts is logged; no log line carries the notice's address or
    the client's id."""
    subject = "MSP-7310-QUILLIQ"
    topic.notice("n-1", subject=subject).notice("n-2", subject=subject)
    topic.notice("n-3", subject=subject).raw(b"junk", key=subject.encode(), subject=subject)
    sink = ScriptedSink({"n-1": [RETRY], "n-2": [FAILED]})
    r = rig(codec, topic, sink, progress_every_s=0.0)
    with capture_logs() as logs:
        r.run()
    progress = [e for e in logs if e["event"] == "connector progress"]
    assert progress, [e["event"] for e in logs]
    last = progress[-1]
    assert last["recipient"] == RECIPIENT
    assert (last["delivered"], last["duplicates"], last["dead_lettered"], last["retries"]) == (
        2,
        0,
        2,
        1,
    )
    assert last["log_level"] == "info"
    events = {e["event"] for e in logs}
    assert {"delivery to retry", "notification dead-lettered", "notification handled"} <= events
    text = json.dumps(logs, default=str)
    for personal in (subject, STREET, TOWN, POSTAL):
        assert personal not in text


def test_close_closes_source_sink_and_producer(codec: AvroCodec, topic: Topic) -> None:
    """close() releases the consumer, the sink and the producer."""
    r = rig(codec, topic)
    r.runner.close()
    assert (r.source.closed, r.sink.closed, r.producer.closed) == (True, True, True)


# -- the hub's side: receipts of dead letters, replays, reconciliation ------------------------


@pytest.fixture
def decided(store: MemoryStore) -> MemoryStore:
    """Notifications n-1 and n-2 disclosed to the recipient, with the leaves the hub writes."""
    with store.transaction() as tx:
        chain = AuditLog(tx.last_audit())
        for nid in ("n-1", "n-2"):
            event = f"evt-{nid}"
            tx.add_events([AcceptedEvent(SOURCE, event, "AddressChanged", T0, None, "t", 0, 0, T0)])
            tx.add_decisions(
                [
                    Decision(
                        SOURCE,
                        event,
                        RECIPIENT,
                        Decided.DISCLOSED,
                        "consent_given",
                        "c" * 64,
                        nid,
                        ("new_address",),
                        T0,
                    )
                ]
            )
            ref = PSEUDONYMS.event(SOURCE, event)
            chain.append("accepted", {"event": ref, "recipients": 1}, T0)
            chain.append(
                "disclosed", {"event": ref, "recipient": RECIPIENT, "notification": nid}, T0
            )
        chain.write(tx)
    return store


def take_receipts(store: MemoryStore, codec: AvroCodec, r: Rig, start: int = 0) -> int:
    """Feed the receipts the runner sent (from ``start``) to the hub's DeliveryIntake."""
    intake = DeliveryIntake(
        codec=codec, clock=lambda: T0, group_id="tellonce-hub", pseudonyms=PSEUDONYMS
    )
    sent = r.producer.to(RECEIPTS_TOPIC)[start:]
    messages = [
        InboundMessage(RECEIPTS_TOPIC, 0, start + i, s.key, s.value, s.headers)
        for i, s in enumerate(sent)
    ]
    with store.transaction() as tx:
        intake.process(tx, messages)
    return start + len(sent)


def kinds(store: MemoryStore) -> list[tuple[str, str]]:
    """The delivery leaves, after the decisions the fixture recorded."""
    skip = {"accepted", "disclosed"}
    return [(r.kind, r.data["notification"]) for r in store.audit_records() if r.kind not in skip]


def test_dead_letter_receipt_then_replay_then_delivery_on_the_hub(
    decided: MemoryStore, codec: AvroCodec, topic: Topic
) -> None:
    """A v2 FAILED receipt naming the DLQ records dead_lettered (one leaf); after a replay the
    DELIVERED receipt records delivered (one more leaf) and keeps dead_lettered_at; the log
    reconciles and verifies throughout."""
    topic.notice("n-1").notice("n-2")
    first = rig(codec, topic, ScriptedSink({"n-1": [FAILED]}))
    first.run()
    seen = take_receipts(decided, codec, first)

    by_id = {d.notification_id: d for d in decided.deliveries()}
    dead = by_id["n-1"]
    assert (dead.status, dead.dead_lettered_at, dead.detail) == (
        "dead_lettered",
        T0,
        "the back office refused the record",
    )
    assert by_id["n-2"].status == "delivered"
    assert by_id["n-2"].dead_lettered_at is None
    assert kinds(decided) == [("dead_lettered", "n-1"), ("delivered", "n-2")]
    assert reconcile(decided, PSEUDONYMS).ok, reconcile(decided, PSEUDONYMS)

    # The operator replays the dead letter: the original record, without the error headers.
    [record] = first.dead()
    letter = DeadLetter.from_record(
        InboundMessage(DLQ, 1, 0, record.key, record.value, record.headers)
    )
    assert (letter.notification_id, letter.error, letter.attempts) == ("n-1", "HTTP422", 1)
    assert letter.original == f"{TOPIC}/0/0"
    assert letter.replay_headers() == topic.messages[0].headers
    record_replays(decided, RECIPIENT, [letter], T0, PSEUDONYMS)
    assert replayed(decided, RECIPIENT) == {(1, 0)}
    assert replayed(decided, "cra-individual") == set()

    replay = Topic(
        codec,
        [
            InboundMessage(
                TOPIC, 0, 2, letter.record.key, letter.record.value, letter.replay_headers()
            )
        ],
    )
    second = rig(codec, replay)
    second.run()
    take_receipts(decided, codec, second)
    take_receipts(decided, codec, first, seen)  # nothing new from the first run

    delivery = {d.notification_id: d for d in decided.deliveries()}["n-1"]
    assert (delivery.status, delivery.dead_lettered_at) == ("delivered", T0)
    assert kinds(decided) == [
        ("dead_lettered", "n-1"),
        ("delivered", "n-2"),
        ("dlq_replayed", "n-1"),
        ("delivered", "n-1"),
    ]
    result = reconcile(decided, PSEUDONYMS)
    assert result.ok, result
    tallies = {t.fact: (t.leaves, t.facts) for t in result.tallies}
    assert tallies["dead letters"] == (1, 1)
    assert tallies["confirmed deliveries"] == (2, 2)
    verdict = verify_store(decided, lambda message, signature: False, None)
    assert verdict.ok, verdict.problem


def test_a_repeated_dead_letter_receipt_adds_no_leaf(
    decided: MemoryStore, codec: AvroCodec, topic: Topic
) -> None:
    """The same notification dead-lettered twice (a replay that failed again) is one leaf."""
    topic.notice("n-1").notice("n-1")
    r = rig(codec, topic, ScriptedSink(forever={"n-1": FAILED}))
    r.run()
    assert len(r.dead()) == 2
    take_receipts(decided, codec, r)
    assert kinds(decided) == [("dead_lettered", "n-1")]
    assert reconcile(decided, PSEUDONYMS).ok


def test_a_late_dead_letter_receipt_does_not_undo_a_delivery(
    decided: MemoryStore, codec: AvroCodec, topic: Topic
) -> None:
    """Delivered is final: a dead-letter receipt arriving after it records nothing."""
    topic.notice("n-1")
    ok = rig(codec, topic)
    ok.run()
    take_receipts(decided, codec, ok)
    failing = rig(codec, Topic(codec).notice("n-1"), ScriptedSink({"n-1": [FAILED]}))
    failing.run()
    take_receipts(decided, codec, failing)
    [delivery] = decided.deliveries()
    assert (delivery.status, delivery.dead_lettered_at) == ("delivered", None)
    assert kinds(decided) == [("delivered", "n-1")]
    assert reconcile(decided, PSEUDONYMS).ok


# -- replaying dead letters (tellonce dlq replay) --------------------------------------------


def replay(
    store: MemoryStore, letters: list[DeadLetter], *positions: tuple[int | None, int]
) -> RecordingProducer:
    """Replay the dead letters at ``positions`` (partition or None, offset) through the use-case
    ``tellonce dlq replay`` runs; returns the producer it published with."""
    producer = RecordingProducer()
    office = DeadLetterOffice(
        store=store,
        read=lambda topic: [d.record for d in letters if d.record.topic == topic],
        open_producer=lambda: producer,
        pseudonyms=PSEUDONYMS,
        clock=lambda: T0,
    )
    office.replay(RECIPIENT, positions)
    return producer


def letters_in_two_partitions(codec: AvroCodec) -> list[DeadLetter]:
    """Two dead letters, both at offset 0: one in partition 0, one in partition 1."""
    out = []
    for partition, nid in ((0, "n-1"), (1, "n-2")):
        message = Topic(codec).notice(nid).messages[0]
        headers = dead_letters.dead_letter_headers(
            message, error="HTTP422", reason="refused", attempts=1, at=T0
        )
        record = InboundMessage(DLQ, partition, 0, message.key, message.value, headers)
        out.append(DeadLetter.from_record(record))
    return out


def test_replay_offset_present_in_two_partitions_is_refused(
    store: MemoryStore, codec: AvroCodec
) -> None:
    """--offset 0 when partitions 0 and 1 both hold offset 0 is ambiguous: nothing is replayed."""
    letters = letters_in_two_partitions(codec)
    with pytest.raises(ConfigError, match=r"partitions 0, 1 .* PARTITION/0"):
        replay(store, letters, (None, 0))
    assert list(store.audit_records()) == []


def test_a_replayed_letter_the_hub_never_issued_is_kept_as_a_keyed_hash(
    decided: MemoryStore,
) -> None:
    """Anyone can write a dead-letter topic: a replayed letter whose ce_id names no notification
    of this hub gets a leaf with the keyed hash of that ce_id, never its text."""
    letters = [
        DeadLetter.from_record(InboundMessage(DLQ, 0, offset, b"k", b"v", [("ce_id", ce_id)]))
        for offset, ce_id in enumerate([b"n-1", b"Jane-Doe-1984"])
    ]
    record_replays(decided, RECIPIENT, letters, T0, PSEUDONYMS)
    named = [r.data["notification"] for r in decided.audit_records() if r.kind == "dlq_replayed"]
    assert named == ["n-1", PSEUDONYMS.of("Jane-Doe-1984")]


def test_replay_partition_slash_offset_replays_exactly_that_letter(
    store: MemoryStore, codec: AvroCodec
) -> None:
    """--offset 1/0 replays only the letter at partition 1, offset 0, without error headers,
    and records one dlq_replayed leaf for it."""
    letters = letters_in_two_partitions(codec)
    producer = replay(store, letters, (1, 0))
    [sent] = producer.sent
    assert sent.topic == TOPIC
    assert codec.decode(sent.value).record["notification_id"] == "n-2"
    assert not any(k.startswith(dead_letters.PREFIX) for k, _ in sent.headers)
    [leaf] = store.audit_records()
    assert (leaf.kind, leaf.data["partition"], leaf.data["offset"]) == ("dlq_replayed", 1, 0)
    assert replayed(store, RECIPIENT) == {(1, 0)}


def test_replay_skips_replayed_letters_unless_forced(store: MemoryStore, codec: AvroCodec) -> None:
    """A dead letter replayed once is not sent again without force (and no producer is opened
    for nothing); with force it is sent again and gets a second leaf."""
    letters = letters_in_two_partitions(codec)
    replay(store, letters, (1, 0))
    opened: list[RecordingProducer] = []

    def open_producer() -> RecordingProducer:
        opened.append(RecordingProducer([]))
        return opened[-1]

    office = DeadLetterOffice(
        store=store,
        read=lambda topic: [d.record for d in letters],
        open_producer=open_producer,
        pseudonyms=PSEUDONYMS,
        clock=lambda: T0,
    )
    assert office.replay(RECIPIENT, [(1, 0)]).letters == ()
    assert opened == []
    again = office.replay(RECIPIENT, [(1, 0)], force=True)
    assert [(d.partition, d.offset) for d in again.letters] == [(1, 0)]
    assert [sent.topic for sent in opened[0].sent] == [TOPIC]
    assert [leaf.kind for leaf in store.audit_records()] == ["dlq_replayed", "dlq_replayed"]
