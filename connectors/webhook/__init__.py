"""Webhook: POST each notification as JSON to the recipient's HTTPS endpoint, signed.

Options (``--option key=value``): ``url`` (required, http or https); ``secret_file`` or
``secret`` (the shared HMAC key, at least 32 bytes); ``signing`` = ``hmac-sha256`` (default) or
``ed25519`` with ``key_file`` (an Ed25519 private key, PEM); ``timeout`` (seconds per connect,
read and write, default 10); ``verify_tls`` (default true); ``ca_file`` (PEM bundle to trust).

The request::

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <notification_id>
    X-Tellonce-Recipient: <recipient id>
    X-Tellonce-Timestamp: <Unix seconds>
    X-Tellonce-Signature: v1=<hex HMAC-SHA256> | ed25519=<base64>   (see ``signing``)
    User-Agent: tellonce-webhook/<version>

    <Notification.to_json(), UTF-8>

The receiver's side of the convention (what makes "never twice" hold across retries):

- it stores the notification and answers **2xx** once it is durable: DELIVERED;
- it dedupes on ``Idempotency-Key``; a repeat of a key it already stored answers either
  **409 Conflict** echoing the same ``Idempotency-Key`` header, or **2xx** with
  ``Idempotent-Replayed: true``: DUPLICATE. A 409 that does not echo the key may mean the first
  request is still being processed (IETF httpapi idempotency-key draft), so it is RETRY;
- **5xx**, **429** and **408** are passing: RETRY, with ``retry_after`` from ``Retry-After``
  (delta-seconds or HTTP-date) when the receiver sent one; so are timeouts and connection
  failures (a request that timed out may have been stored: the retry's key dedupes it);
- any other **4xx**, and 3xx (redirects are not followed), is FAILED: it will not succeed as it is.

The sink never retries by itself: the runner's middleware decides when to try again. Reasons
and logs carry ids and status codes, never the body, the receiver's answer or field values.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version

import httpx
import structlog

from connectors.contract import DeliveryResult, Notification, Outcome
from connectors.webhook.options import WebhookOptions, parse_options
from connectors.webhook.signing import verify_signature

log = structlog.get_logger(__name__)

IDEMPOTENCY_KEY = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
RETRYABLE_4XX = frozenset({408, 429})
MAX_ANSWER_BYTES = 64 * 1024  # read and dropped so the connection can be reused; never kept


class WebhookSink:
    name = "webhook"

    def __init__(
        self,
        recipient: str,
        options: dict[str, str],
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.recipient = recipient
        self.options: WebhookOptions = parse_options(options)
        self._clock = clock
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.options.timeout_s),
            verify=self.options.verify,
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": f"tellonce-webhook/{_version()}"},
        )
        self._closed = False

    def deliver(self, notification: Notification) -> DeliveryResult:
        body = notification.to_json().encode("utf-8")
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_KEY: notification.notification_id,
            "X-Tellonce-Recipient": self.recipient,
            "X-Tellonce-Timestamp": timestamp,
            "X-Tellonce-Signature": self.options.signer.sign(timestamp, body),
        }
        started = time.monotonic()
        try:
            with self._client.stream(
                "POST", self.options.url, content=body, headers=headers
            ) as response:
                _drain(response)
        except httpx.TimeoutException as exc:
            result = DeliveryResult(
                Outcome.RETRY, f"no answer in time ({type(exc).__name__})", "Timeout"
            )
        except httpx.TransportError as exc:
            result = _transport_failure(exc)
        else:
            result = classify(response, notification.notification_id, now=self._clock())
        log.debug(
            "webhook answered",
            notification=notification.notification_id,
            recipient=self.recipient,
            outcome=result.outcome.value,
            error=result.error or None,
            elapsed_ms=round((time.monotonic() - started) * 1000),
        )
        return result

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()


def classify(response: httpx.Response, key: str, *, now: float) -> DeliveryResult:
    """The outcome a receiver's answer means, under the convention in this module's docstring."""
    status = response.status_code
    error = f"HTTP{status}"
    said = f"the receiver answered {status} {_phrase(status)}".rstrip()
    if 200 <= status < 300:
        if response.headers.get(REPLAYED, "").strip().lower() == "true":
            return DeliveryResult(Outcome.DUPLICATE, f"{said}, replayed")
        return DeliveryResult(Outcome.DELIVERED)
    if status == HTTPStatus.CONFLICT:
        if response.headers.get(IDEMPOTENCY_KEY) == key:
            return DeliveryResult(Outcome.DUPLICATE, f"{said} for this Idempotency-Key")
        return DeliveryResult(Outcome.RETRY, f"{said} without echoing the Idempotency-Key", error)
    if status >= 500 or status in RETRYABLE_4XX:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        return DeliveryResult(Outcome.RETRY, said, error, retry_after)
    if 300 <= status < 400:
        return DeliveryResult(
            Outcome.FAILED,
            f"{said}; redirects are not followed: set url to the final address",
            error,
        )
    return DeliveryResult(Outcome.FAILED, said, error)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (RFC 9110: delta-seconds or HTTP-date)."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; "-0000" parses as naive
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _drain(response: httpx.Response) -> None:
    """Read a bounded amount of the answer so keep-alive works; the content is dropped."""
    if response.is_stream_consumed:  # already read (a transport that buffers)
        return
    read = 0
    for chunk in response.iter_raw():
        read += len(chunk)
        if read > MAX_ANSWER_BYTES:
            break


def _transport_failure(exc: httpx.TransportError) -> DeliveryResult:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            detail = getattr(cause, "reason", None) or type(cause).__name__
            return DeliveryResult(Outcome.RETRY, f"TLS failed: {detail}", "TLSError")
        cause = cause.__cause__ or cause.__context__
    return DeliveryResult(
        Outcome.RETRY, f"cannot reach the receiver ({type(exc).__name__})", type(exc).__name__
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _version() -> str:
    try:
        return version("tellonce")
    except PackageNotFoundError:
        return "0"


__all__ = ["WebhookSink", "classify", "parse_retry_after", "verify_signature"]
