"""The webhook sink's options, answer classification, Retry-After parsing and signatures,
without a network (the real server is in tests/integration/test_webhook_sink.py)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors import UnknownSinkError, resolve_sink
from connectors.contract import DeliveryResult, Notification, Outcome
from connectors.webhook import WebhookSink, parse_retry_after
from connectors.webhook.signing import Ed25519Signer, HmacSigner, verify_signature

SECRET = "unit-test-webhook-secret-0123456789abcdef"
URL = "https://backoffice.example/inbox"
NOW = 1_741_964_966.0  # 2025-03-14T15:09:26Z
BODY = b'{"notification_id": "n-1"}'


def notice() -> Notification:
    return Notification(
        notification_id="n-1",
        recipient="bc-msp",
        subject_id="MSP-1",
        event_type="AddressChanged",
        event_id="e-1",
        event_source="bc-service-bc",
        event_time=datetime(2025, 3, 14, tzinfo=UTC),
        consent_revision="rev-1",
        fields={"postal_code": "V8W 1A1"},
    )


def pem(
    key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey, password: bytes | None = None
) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Key, secret and CA files the option tests point at."""
    paths = {
        "ed25519": tmp_path / "ed25519.pem",
        "ec": tmp_path / "ec.pem",
        "encrypted": tmp_path / "encrypted.pem",
        "short": tmp_path / "short.secret",
        "garbage": tmp_path / "garbage.pem",
    }
    paths["ed25519"].write_bytes(pem(Ed25519PrivateKey.generate()))
    paths["ec"].write_bytes(pem(ec.generate_private_key(ec.SECP256R1())))
    paths["encrypted"].write_bytes(pem(Ed25519PrivateKey.generate(), b"pass"))
    paths["short"].write_text("too-short\n")
    paths["garbage"].write_text("not a pem\n")
    names = {name: str(path) for name, path in paths.items()}
    names["missing"] = str(tmp_path / "missing")
    return names


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs --option url="),
        ({"url": "ftp://host/x"}, "absolute http:// or https://"),
        ({"url": "https:///nohost"}, "absolute http:// or https://"),
        ({"url": "https://user:pw@host/x"}, "must not carry credentials"),
        ({"url": URL, "secret": SECRET, "verify_tsl": "true"}, "Did you mean 'verify_tls'?"),
        ({"url": URL}, "signs every request"),
        ({"url": URL, "secret": "short"}, "shorter than 32 bytes"),
        ({"url": URL, "secret_file": "{short}"}, "shorter than 32 bytes"),
        ({"url": URL, "secret_file": "{missing}"}, "cannot read the webhook secret_file"),
        ({"url": URL, "secret": SECRET, "secret_file": "{short}"}, "either secret or"),
        ({"url": URL, "secret": SECRET, "signing": "md5"}, "signing must be one of"),
        ({"url": URL, "signing": "ed25519"}, "needs --option key_file="),
        ({"url": URL, "signing": "ed25519", "secret": SECRET}, "drop secret/secret_file"),
        ({"url": URL, "secret": SECRET, "key_file": "{ed25519}"}, "key_file is for signing"),
        ({"url": URL, "signing": "ed25519", "key_file": "{ec}"}, "not an Ed25519 key"),
        ({"url": URL, "signing": "ed25519", "key_file": "{encrypted}"}, "is encrypted"),
        ({"url": URL, "signing": "ed25519", "key_file": "{garbage}"}, "not a readable PEM"),
        ({"url": URL, "signing": "ed25519", "key_file": "{missing}"}, "cannot read the webhook"),
        ({"url": URL, "secret": SECRET, "timeout": "soon"}, "timeout must be"),
        ({"url": URL, "secret": SECRET, "timeout": "0"}, "timeout must be"),
        ({"url": URL, "secret": SECRET, "timeout": "nan"}, "timeout must be"),
        ({"url": URL, "secret": SECRET, "verify_tls": "maybe"}, "verify_tls must be"),
        (
            {"url": URL, "secret": SECRET, "verify_tls": "false", "ca_file": "{garbage}"},
            "no effect with verify_tls=false",
        ),
        ({"url": URL, "secret": SECRET, "ca_file": "{missing}"}, "cannot load the webhook"),
        ({"url": URL, "secret": SECRET, "ca_file": "{garbage}"}, "cannot load the webhook"),
    ],
)
def test_bad_options_say_what_to_fix(
    options: dict[str, str], message: str, files: dict[str, str]
) -> None:
    """Each missing or wrong option is a ValueError naming the fix, never quoting the secret."""
    resolved = {key: value.format(**files) for key, value in options.items()}

    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        WebhookSink("bc-msp", resolved)

    assert SECRET not in str(raised.value)


@pytest.mark.parametrize(
    "options",
    [
        {"secret": SECRET},
        {"secret_file": "{secret}"},
        {"signing": "ed25519", "key_file": "{ed25519}"},
        {"secret": SECRET, "timeout": "2.5", "verify_tls": "no"},
    ],
)
def test_good_options_build_a_sink(options: dict[str, str], files: dict[str, str]) -> None:
    """Valid option sets build a sink (the secret file's trailing newline is not key material)."""
    secret_file = Path(files["short"]).with_name("good.secret")
    secret_file.write_text(SECRET + "\n")
    resolved = {k: v.format(secret=secret_file, **files) for k, v in options.items()}

    sink = WebhookSink("bc-msp", {"url": URL, **resolved})
    sink.close()

    assert sink.name == "webhook"
    assert SECRET not in repr(sink.options)


def test_secret_file_signs_like_the_secret(tmp_path: Path) -> None:
    """secret_file and secret give the same signature for the same key."""
    secret_file = tmp_path / "webhook.secret"
    secret_file.write_text(SECRET + "\n")
    by_file = WebhookSink("bc-msp", {"url": URL, "secret_file": str(secret_file)})
    by_value = WebhookSink("bc-msp", {"url": URL, "secret": SECRET})
    by_file.close()
    by_value.close()

    assert by_file.options.signer.sign("1", BODY) == by_value.options.signer.sign("1", BODY)


@pytest.fixture
def answering() -> Iterator[Callable[[httpx.Response], DeliveryResult]]:
    """Delivers one notification to a mock transport that gives the answer passed in."""
    sinks: list[WebhookSink] = []

    def deliver(answer: httpx.Response) -> DeliveryResult:
        transport = httpx.MockTransport(lambda request: answer)
        sink = WebhookSink(
            "bc-msp", {"url": URL, "secret": SECRET}, clock=lambda: NOW, transport=transport
        )
        sinks.append(sink)
        return sink.deliver(notice())

    yield deliver
    for sink in sinks:
        sink.close()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(202), (Outcome.DELIVERED, "")),
        (httpx.Response(200, headers={"Idempotent-Replayed": "true"}), (Outcome.DUPLICATE, "")),
        (httpx.Response(409, headers={"Idempotency-Key": "n-1"}), (Outcome.DUPLICATE, "")),
        (httpx.Response(409, headers={"Idempotency-Key": "n-2"}), (Outcome.RETRY, "HTTP409")),
        (httpx.Response(408), (Outcome.RETRY, "HTTP408")),
        (httpx.Response(504), (Outcome.RETRY, "HTTP504")),
        (httpx.Response(599), (Outcome.RETRY, "HTTP599")),
        (httpx.Response(301, headers={"Location": "/elsewhere"}), (Outcome.FAILED, "HTTP301")),
        (httpx.Response(403), (Outcome.FAILED, "HTTP403")),
        (httpx.Response(413), (Outcome.FAILED, "HTTP413")),
    ],
)
def test_answers_map_to_outcomes(
    answer: httpx.Response,
    expected: tuple[Outcome, str],
    answering: Callable[[httpx.Response], DeliveryResult],
) -> None:
    """Status codes and replay markers map to outcomes as the module docstring documents."""
    result = answering(answer)

    assert (result.outcome, result.error) == expected


def test_request_is_signed_over_timestamp_and_exact_body() -> None:
    """The signature header verifies over "<timestamp>." + the exact body sent."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    sink = WebhookSink(
        "bc-msp",
        {"url": URL, "secret": SECRET},
        clock=lambda: NOW,
        transport=httpx.MockTransport(record),
    )
    sink.deliver(notice())
    sink.close()

    (request,) = seen
    assert request.content == notice().to_json().encode()
    assert request.headers["X-Tellonce-Timestamp"] == str(int(NOW))
    assert verify_signature(
        SECRET, str(int(NOW)), request.content, request.headers["X-Tellonce-Signature"], now=NOW
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("3", 3.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        (format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True), 30.0),
        ("Fri, 14 Mar 2025 15:09:56 -0000", 30.0),
        (format_datetime(datetime.fromtimestamp(NOW - 30, UTC), usegmt=True), 0.0),
        ("-1", None),
        ("1.5", None),
        ("²", None),
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_parses_seconds_and_http_dates(
    value: str | None, expected: float | None
) -> None:
    """Retry-After as delta-seconds or HTTP-date becomes seconds; a past date is 0; junk None."""
    assert parse_retry_after(value, now=NOW) == expected


def hmac_header(timestamp: str = str(int(NOW)), body: bytes = BODY) -> str:
    return HmacSigner(SECRET.encode()).sign(timestamp, body)


@pytest.mark.parametrize(
    ("key", "timestamp", "body", "header", "valid"),
    [
        (SECRET, str(int(NOW)), BODY, hmac_header(), True),
        (SECRET.encode(), str(int(NOW)), BODY, hmac_header(), True),
        (SECRET, str(int(NOW)), BODY + b" ", hmac_header(), False),
        ("another-secret-0123456789abcdef0123", str(int(NOW)), BODY, hmac_header(), False),
        (SECRET, str(int(NOW) + 1), BODY, hmac_header(), False),
        (SECRET, str(int(NOW) - 301), BODY, hmac_header(str(int(NOW) - 301)), False),
        (SECRET, "yesterday", BODY, hmac_header("yesterday"), False),
        (SECRET, str(int(NOW)), BODY, "v1=" + "0" * 64 + ", " + hmac_header(), True),
        (SECRET, str(int(NOW)), BODY, "v0=" + hmac_header()[3:], False),
        (SECRET, str(int(NOW)), BODY, "", False),
    ],
    ids=[
        "valid",
        "bytes-key",
        "body-changed",
        "other-secret",
        "timestamp-changed",
        "stale",
        "not-a-timestamp",
        "rotation-second-entry",
        "unknown-scheme",
        "no-header",
    ],
)
def test_hmac_verification(
    key: str | bytes, timestamp: str, body: bytes, header: str, valid: bool
) -> None:
    """verify_signature accepts exactly the HMAC that signs timestamp and body, while fresh."""
    assert verify_signature(key, timestamp, body, header, now=NOW) is valid


def test_ed25519_verification() -> None:
    """An Ed25519 signature verifies with the public key only, and nothing else passes."""
    private = Ed25519PrivateKey.generate()
    header = Ed25519Signer(private).sign(str(int(NOW)), BODY)
    public = private.public_key()

    assert verify_signature(public, str(int(NOW)), BODY, header, now=NOW)
    assert not verify_signature(public, str(int(NOW)), BODY + b"x", header, now=NOW)
    assert not verify_signature(
        Ed25519PrivateKey.generate().public_key(), str(int(NOW)), BODY, header, now=NOW
    )
    assert not verify_signature(public, str(int(NOW)), BODY, hmac_header(), now=NOW)
    assert not verify_signature(public, str(int(NOW)), BODY, "ed25519=***", now=NOW)
    assert not verify_signature(SECRET, str(int(NOW)), BODY, header, now=NOW)


def test_signers_do_not_show_their_keys() -> None:
    """repr() of a signer never shows key material."""
    assert SECRET not in repr(HmacSigner(SECRET.encode()))
    assert "PRIVATE" not in repr(Ed25519Signer(Ed25519PrivateKey.generate()))


def test_resolves_by_name() -> None:
    """The built-in name webhook resolves to WebhookSink."""
    assert resolve_sink("webhook") is WebhookSink


def test_missing_httpx_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without httpx, resolving webhook answers with the pip extra to install."""
    for name in [n for n in sys.modules if n.startswith("connectors.webhook")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "httpx", None)

    with pytest.raises(UnknownSinkError, match=r"pip install 'tellonce\[webhook\]'"):
        resolve_sink("webhook")
