"""The webhook sink against a real HTTP server on 127.0.0.1 that answers, dedupes and fails
in each of the ways a recipient's endpoint does."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from structlog.testing import capture_logs

from connectors import webhook
from connectors.contract import Notification, Outcome
from connectors.testing import SinkContract, crash
from connectors.webhook import WebhookSink
from connectors.webhook.signing import verify_signature

from .http_server import LocalHTTPServer, Reply, Request, loopback_tls, refused_port

pytestmark = pytest.mark.integration

SECRET = "test-only-webhook-secret-0123456789abcdef"
RECIPIENT = "cra-individual"
# Personal values that must reach the receiver's store and nowhere else.
STREET = "1742 Rue Saint-Denis"
POSTAL_CODE = "H2X 3K4"
SUBJECT = "CRA-884422"
# Something the receiver puts in an error answer, which must never be echoed.
ANSWER_MARKER = "receiver-said-this-about-H2X-3K4"


def notice(number: int = 1) -> Notification:
    return Notification(
        notification_id=f"0190d6a4-7c1e-7000-8000-{number:012d}",
        recipient=RECIPIENT,
        subject_id=SUBJECT,
        event_type="AddressChanged",
        event_id=f"evt-{number}",
        event_source="bc-service-bc",
        event_time=datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC),
        consent_revision="rev-1",
        fields={"street": STREET, "postal_code": POSTAL_CODE, "moved_on": date(2025, 3, 1)},
    )


@dataclass
class Receiver:
    """A recipient's back office: checks the signature, stores each Idempotency-Key once.

    While ``down`` it answers 503 to everything; ``failures`` are answered first, one per
    request, before anything is stored. A repeat of a stored key answers 409 echoing the key, or
    200 with ``Idempotent-Replayed: true``.
    """

    key: str | Ed25519PublicKey = SECRET
    success: int = 201
    repeat: str = "409"
    stall_after_store_s: float = 0.0
    failures: list[Reply] = field(default_factory=list)
    stored: dict[str, bytes] = field(default_factory=dict)
    forged: int = 0
    down: bool = False

    def __call__(self, request: Request) -> Reply:
        headers = request.headers
        if not verify_signature(
            self.key,
            headers.get("x-tellonce-timestamp", ""),
            request.body,
            headers.get("x-tellonce-signature", ""),
        ):
            self.forged += 1
            return Reply(401, body=b"bad signature")
        if self.down:
            return Reply(503)
        if self.failures:
            return self.failures.pop(0)
        key = headers["idempotency-key"]
        if key in self.stored:
            if self.repeat == "409":
                return Reply(409, {"Idempotency-Key": key})
            return Reply(200, {"Idempotent-Replayed": "true"})
        self.stored[key] = request.body
        stall, self.stall_after_store_s = self.stall_after_store_s, 0.0
        return Reply(self.success, stall_s=stall)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def server(receiver: Receiver) -> Iterator[LocalHTTPServer]:
    with LocalHTTPServer(receiver) as running:
        yield running
    assert not running.errors, running.errors


SinkMaker = Callable[..., WebhookSink]


@pytest.fixture
def make_sink(server: LocalHTTPServer) -> Iterator[SinkMaker]:
    """Builds sinks aimed at the test's server (options override the defaults); closes them."""
    sinks: list[WebhookSink] = []

    def make(**options: str) -> WebhookSink:
        sink = WebhookSink(RECIPIENT, {"url": server.url, "secret": SECRET, **options})
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close()


@pytest.mark.parametrize("status", [200, 201, 204])
def test_2xx_delivers_signed_json_once(
    status: int, receiver: Receiver, server: LocalHTTPServer, make_sink: SinkMaker
) -> None:
    """A 2xx is DELIVERED: the receiver got the exact JSON, keyed and signed as documented."""
    receiver.success = status
    notification = notice()

    before = int(time.time())
    result = make_sink().deliver(notification)
    after = int(time.time())

    assert result.outcome is Outcome.DELIVERED
    assert (result.reason, result.error, result.retry_after) == ("", "", None)
    assert receiver.forged == 0
    assert receiver.stored == {notification.notification_id: notification.to_json().encode()}
    (request,) = server.requests
    assert request.path == "/inbox"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == notification.notification_id
    assert request.headers["x-tellonce-recipient"] == RECIPIENT
    assert request.headers["x-tellonce-signature"].startswith("v1=")
    assert before <= int(request.headers["x-tellonce-timestamp"]) <= after  # signed when sent
    assert request.headers["user-agent"].startswith("tellonce-webhook/")


@pytest.mark.parametrize("repeat", ["409", "replayed"])
def test_redelivery_is_duplicate_and_stored_once(
    repeat: str, receiver: Receiver, server: LocalHTTPServer, make_sink: SinkMaker
) -> None:
    """A repeat the receiver recognises (409 echoing the key, or a replayed 2xx) is DUPLICATE."""
    receiver.repeat = repeat
    sink = make_sink()

    first = sink.deliver(notice())
    second = sink.deliver(notice())

    assert (first.outcome, second.outcome) == (Outcome.DELIVERED, Outcome.DUPLICATE)
    assert len(server.requests) == 2
    assert list(receiver.stored) == [notice().notification_id]


def test_conflict_without_the_key_is_retry(receiver: Receiver, make_sink: SinkMaker) -> None:
    """A 409 that does not echo the Idempotency-Key (maybe still in progress) is RETRY."""
    receiver.failures = [Reply(409)]

    result = make_sink().deliver(notice())

    assert (result.outcome, result.error) == (Outcome.RETRY, "HTTP409")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retry_and_a_later_attempt_delivers(
    status: int, receiver: Receiver, make_sink: SinkMaker
) -> None:
    """A 5xx is RETRY (error HTTP5xx, answer not echoed); once the receiver recovers it lands."""
    receiver.failures = [Reply(status, body=ANSWER_MARKER.encode())]
    sink = make_sink()

    failed = sink.deliver(notice())
    again = sink.deliver(notice())

    assert (failed.outcome, failed.error, failed.retry_after) == (
        Outcome.RETRY,
        f"HTTP{status}",
        None,
    )
    assert str(status) in failed.reason
    assert ANSWER_MARKER not in failed.reason
    assert again.outcome is Outcome.DELIVERED
    assert list(receiver.stored) == [notice().notification_id]


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_honoured(
    status: int, form: str, receiver: Receiver, make_sink: SinkMaker
) -> None:
    """429 (and 503) with Retry-After as delta-seconds or HTTP-date: RETRY, retry_after as asked."""
    # An HTTP-date has one-second resolution and ages while the request runs (seconds on a busy
    # machine), so it is 30 s out and checked to a few seconds; delta-seconds are exact.
    if form == "seconds":
        value, low, high = "3", 3.0, 3.0
    else:
        value, low, high = formatdate(time.time() + 30, usegmt=True), 25.0, 30.0
    receiver.failures = [Reply(status, {"Retry-After": value})]

    result = make_sink().deliver(notice())

    assert (result.outcome, result.error) == (Outcome.RETRY, f"HTTP{status}")
    assert result.retry_after is not None
    assert low <= result.retry_after <= high
    assert receiver.stored == {}


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_is_failed_without_echoing_the_answer(
    status: int, receiver: Receiver, make_sink: SinkMaker
) -> None:
    """400/401/404/422 are FAILED with the status in the reason and the answer body left out."""
    receiver.failures = [Reply(status, body=ANSWER_MARKER.encode())]

    result = make_sink().deliver(notice())

    assert (result.outcome, result.error, result.retry_after) == (
        Outcome.FAILED,
        f"HTTP{status}",
        None,
    )
    assert str(status) in result.reason
    assert ANSWER_MARKER not in result.reason
    assert receiver.stored == {}


def test_wrong_secret_is_refused_by_the_receiver(receiver: Receiver, make_sink: SinkMaker) -> None:
    """A request signed with another secret fails the receiver's check: 401, FAILED."""
    result = make_sink(secret="not-the-shared-secret-0123456789abcdef").deliver(notice())

    assert (result.outcome, result.error) == (Outcome.FAILED, "HTTP401")
    assert receiver.forged == 1
    assert receiver.stored == {}


def test_slow_receiver_is_retry_timeout(receiver: Receiver, make_sink: SinkMaker) -> None:
    """A receiver slower than the timeout is RETRY with error Timeout, within the timeout."""
    receiver.failures = [Reply(200, stall_s=10)]
    sink = make_sink(timeout="0.3")

    with ThreadPoolExecutor(max_workers=1) as pool:
        # Awaited far under the 10 s stall: only the sink's timeout can have ended it.
        result = pool.submit(sink.deliver, notice()).result(timeout=8)

    assert (result.outcome, result.error) == (Outcome.RETRY, "Timeout")
    assert receiver.stored == {}


def test_timeout_after_the_receiver_stored_it_is_never_stored_twice(
    receiver: Receiver, server: LocalHTTPServer, make_sink: SinkMaker
) -> None:
    """Stored, but the answer came too late: RETRY, and the retry is DUPLICATE, stored once."""
    receiver.stall_after_store_s = 10
    sink = make_sink(timeout="0.3")

    first = sink.deliver(notice())
    retried = sink.deliver(notice())

    assert (first.outcome, first.error) == (Outcome.RETRY, "Timeout")
    assert retried.outcome is Outcome.DUPLICATE
    assert len(server.requests) == 2
    assert list(receiver.stored) == [notice().notification_id]


def test_connection_refused_is_retry() -> None:
    """Nothing listening on the port: RETRY with error ConnectError."""
    holder = refused_port()
    port = holder.getsockname()[1]
    sink = WebhookSink(RECIPIENT, {"url": f"http://127.0.0.1:{port}/inbox", "secret": SECRET})
    try:
        result = sink.deliver(notice())
    finally:
        sink.close()
        holder.close()

    assert (result.outcome, result.error) == (Outcome.RETRY, "ConnectError")


def test_ed25519_signature_verifies_with_the_public_key(
    receiver: Receiver, server: LocalHTTPServer, tmp_path: Path
) -> None:
    """signing=ed25519 signs with key_file; the receiver verifies with the public key alone."""
    private = Ed25519PrivateKey.generate()
    key_file = tmp_path / "webhook-key.pem"
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    receiver.key = private.public_key()
    options = {"url": server.url, "signing": "ed25519", "key_file": str(key_file)}
    sink = WebhookSink(RECIPIENT, options)
    try:
        result = sink.deliver(notice())
    finally:
        sink.close()

    assert result.outcome is Outcome.DELIVERED
    assert receiver.forged == 0
    assert server.requests[0].headers["x-tellonce-signature"].startswith("ed25519=")
    assert list(receiver.stored) == [notice().notification_id]


@pytest.fixture
def tls_server(receiver: Receiver, tmp_path: Path) -> Iterator[tuple[LocalHTTPServer, Path]]:
    context, ca_file = loopback_tls(tmp_path)
    with LocalHTTPServer(receiver, tls=context) as running:
        yield running, ca_file
    assert not running.errors, running.errors


def test_https_with_ca_file_delivers(
    receiver: Receiver, tls_server: tuple[LocalHTTPServer, Path]
) -> None:
    """Over HTTPS, a receiver whose certificate chains to ca_file is trusted: DELIVERED."""
    server, ca_file = tls_server
    sink = WebhookSink(RECIPIENT, {"url": server.url, "secret": SECRET, "ca_file": str(ca_file)})
    try:
        result = sink.deliver(notice())
    finally:
        sink.close()

    assert result.outcome is Outcome.DELIVERED
    assert list(receiver.stored) == [notice().notification_id]


def test_https_untrusted_certificate_is_retry_tls_error(
    receiver: Receiver, tls_server: tuple[LocalHTTPServer, Path]
) -> None:
    """A certificate the sink does not trust sends nothing: RETRY with error TLSError."""
    server, _ = tls_server
    sink = WebhookSink(RECIPIENT, {"url": server.url, "secret": SECRET})
    try:
        result = sink.deliver(notice())
    finally:
        sink.close()

    assert (result.outcome, result.error) == (Outcome.RETRY, "TLSError")
    assert receiver.stored == {}


def test_one_connection_is_reused_and_close_is_idempotent(
    server: LocalHTTPServer, make_sink: SinkMaker
) -> None:
    """Deliveries share one kept-alive connection; close() may be called twice."""
    sink = make_sink()

    outcomes = [sink.deliver(notice(number)).outcome for number in (1, 2, 3)]
    sink.close()
    sink.close()

    assert outcomes == [Outcome.DELIVERED] * 3
    assert len({request.client_port for request in server.requests}) == 1


@pytest.fixture
def debug_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every log entry, debug included, whatever level an earlier test configured."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as entries:
            yield entries
    finally:
        structlog.configure(**saved)


def test_logs_and_reasons_carry_ids_never_values(
    receiver: Receiver, make_sink: SinkMaker, debug_logs: list[MutableMapping[str, Any]]
) -> None:
    """Whatever the answer, logs and reasons name the notification, never personal values."""
    receiver.failures = [
        Reply(503, body=ANSWER_MARKER.encode()),
        Reply(400, body=ANSWER_MARKER.encode()),
    ]
    sink = make_sink()

    results = [sink.deliver(notice(number)) for number in (1, 2, 3)]

    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.FAILED, Outcome.DELIVERED]
    assert [entry["notification"] for entry in debug_logs] == [
        notice(number).notification_id for number in (1, 2, 3)
    ]
    said = repr(debug_logs) + repr(results)
    for value in (STREET, POSTAL_CODE, SUBJECT, SECRET, ANSWER_MARKER):
        assert value not in said


class TestWebhookSinkContract(SinkContract):
    """The shipped sink contract, with a deduping receiver on 127.0.0.1 as the far side."""

    @pytest.fixture(autouse=True)
    def far_side(self) -> Iterator[None]:
        self.receiver = Receiver()
        with LocalHTTPServer(self.receiver) as server:
            self.server = server
            yield
        assert not server.errors, server.errors

    def make_sink(self) -> WebhookSink:
        return WebhookSink("bc-msp", {"url": self.server.url, "secret": SECRET})

    def delivered(self) -> list[str]:
        """The ids in the bodies the receiver stored (a second key for one notice shows twice)."""
        return [json.loads(body)["notification_id"] for body in self.receiver.stored.values()]

    @contextmanager
    def break_far_side(self) -> Iterator[None]:
        self.receiver.down = True
        try:
            yield
        finally:
            self.receiver.down = False

    @contextmanager
    def crash_mid_delivery(self, sink: object) -> Iterator[None]:
        """The receiver stored the notice, and the process dies as its answer comes in."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(webhook, "_drain", crash)
            yield
