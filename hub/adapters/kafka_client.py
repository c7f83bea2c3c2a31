"""How tellonce reaches Kafka: one ``KafkaConnection`` for every client it builds.

The composition root builds the connection once, from the broker settings (or the embedded
broker's address, which speaks PLAINTEXT only), and hands it to every producer, consumer and
admin client; ``open_client`` is the only place a kafka-python client is constructed.

What a connection failure becomes (kafka-python 3.0.12, measured):

- a refused SASL login raises ``SaslAuthenticationFailedError`` from the client's constructor
  after one retry: ``BrokerSecurityError`` naming the user and mechanism;
- any other failure (a mechanism the listener does not offer, SASL against a listener without
  it, a failed TLS handshake, a refused TCP connection) is retried until
  ``bootstrap_timeout_ms`` and then raised as ``KafkaTimeoutError('Unable to bootstrap')``,
  the cause only in an ERROR log record. ``open_client`` keeps those records (they would repeat
  once per retry) and puts the last cause into the one error it raises;
- a TLS client whose peer never answers the handshake (the embedded Tansu, which waits for a
  Kafka request) waits forever: kafka-python bounds neither the handshake nor its bootstrap
  while one is under way. ``hub.adapters.kafka_tls`` therefore shakes hands once itself,
  bounded, before the first client of a TLS connection is built.

Secrets (``ssl_password``, ``sasl_plain_password``) are ``SecretStr`` until the moment a client
is built: not in ``repr``, logs or messages.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from kafka.errors import (
    AuthorizationError,
    IllegalSaslStateError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    UnsupportedSaslMechanismError,
)
from pydantic import SecretStr

from hub.config.broker import BrokerSettings
from hub.config.files import unreadable
from hub.errors import BrokerError, BrokerSecurityError, ConfigError

__all__ = ["KafkaConnection", "broker_error", "open_client"]

ENV = "TELLONCE_BROKER__"
# How long a client's constructor may try to reach the cluster (kafka-python's default).
CONNECT_LIMIT_S = 30.0
# kafka-python loggers that report a failed connection, once per retry.
_CONNECTION_LOGGERS = (
    "kafka.net.manager",
    "kafka.net.connection",
    "kafka.net.transport",
    "kafka.cluster",
)

Client = TypeVar("Client")


@dataclass(frozen=True)
class KafkaConnection:
    """The bootstrap address and the kafka-python security options of every client."""

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: SecretStr | None = None
    connect_limit_s: float = CONNECT_LIMIT_S

    @classmethod
    def plaintext(
        cls, bootstrap: str, *, connect_limit_s: float = CONNECT_LIMIT_S
    ) -> KafkaConnection:
        """No TLS, no SASL: the embedded Tansu, or a test broker."""
        return cls(bootstrap, connect_limit_s=connect_limit_s)

    @classmethod
    def from_settings(cls, broker: BrokerSettings, bootstrap: str) -> KafkaConnection:
        """The connection the settings describe, to ``bootstrap``. ConfigError, naming the
        setting, when a file they name cannot be read (the password file is read here)."""
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "sasl_password_file"):
            _readable(getattr(broker, name), name)
        password = broker.sasl_password
        if broker.sasl_password_file is not None:
            password = SecretStr(_password_in(broker.sasl_password_file))
        return cls(
            bootstrap,
            security_protocol=broker.security_protocol,
            ssl_cafile=_text(broker.ssl_cafile),
            ssl_certfile=_text(broker.ssl_certfile),
            ssl_keyfile=_text(broker.ssl_keyfile),
            ssl_password=broker.ssl_key_password,
            ssl_check_hostname=broker.ssl_check_hostname,
            sasl_mechanism=broker.sasl_mechanism,
            sasl_plain_username=broker.sasl_username,
            sasl_plain_password=password,
        )

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def bounded(self, connect_limit_s: float) -> KafkaConnection:
        """The same connection, its clients giving up reaching the cluster sooner."""
        return replace(self, connect_limit_s=connect_limit_s)

    def client_options(self) -> dict[str, Any]:
        """The kafka-python options every client gets (secrets revealed: pass them on only)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
            "bootstrap_timeout_ms": int(self.connect_limit_s * 1000),
        }
        if self.uses_tls:
            options |= {
                "ssl_cafile": self.ssl_cafile,
                "ssl_certfile": self.ssl_certfile,
                "ssl_keyfile": self.ssl_keyfile,
                "ssl_password": _reveal(self.ssl_password),
                "ssl_check_hostname": self.ssl_check_hostname,
            }
        if self.uses_sasl:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_plain_username,
                "sasl_plain_password": _reveal(self.sasl_plain_password),
            }
        return options

    def describe(self) -> str:
        """Where and how, for messages: ``127.0.0.1:9093 (SASL_SSL, user 'hub', SCRAM-SHA-512)``."""
        parts = [self.security_protocol]
        if self.uses_sasl:
            parts.append(f"user {self.sasl_plain_username!r}, {self.sasl_mechanism}")
        return f"{self.bootstrap} ({', '.join(parts)})"


def open_client(
    factory: Callable[..., Client], connection: KafkaConnection, what: str, **options: Any
) -> Client:
    """``factory`` (KafkaProducer, KafkaConsumer, KafkaAdminClient) built on ``connection``
    with ``options``; ``what`` names it in errors ("a producer"). A failure to connect is one
    BrokerSecurityError (not retriable) or BrokerError saying what failed and what to check."""
    from hub.adapters.kafka_tls import check_tls

    if connection.uses_tls:
        check_tls(connection)
    with _failures_kept() as causes:
        try:
            return factory(**connection.client_options(), **options)
        except KafkaError as exc:
            raise _connect_error(exc, causes, connection, what) from None


def broker_error(exc: KafkaError, connection: KafkaConnection, failed: str) -> BrokerError:
    """The error for ``exc``, met by a client already connected, where ``failed`` says what
    failed ("polling failed"): a refused login or authorization is a BrokerSecurityError,
    anything else a BrokerError."""
    security = _security_problem(exc, connection)
    if security is not None:
        return BrokerSecurityError(f"{failed} on {connection.describe()}: {security}")
    return BrokerError(f"{failed}: {exc}")


# -- what a failure means ---------------------------------------------------------------------


def _connect_error(
    exc: KafkaError, causes: list[BaseException], connection: KafkaConnection, what: str
) -> BrokerError:
    where = f"cannot connect {what} to {connection.describe()}"
    # kafka-python timed out: the cause is among the failed attempts. A broker that refuses a
    # login or a mechanism answers so and then hangs up: the answer says more than the hang-up.
    for cause in [exc, *reversed(causes)]:
        security = _security_problem(cause, connection)
        if security is not None:
            return BrokerSecurityError(f"{where}: {security}")
    cause = next((c for c in reversed(causes) if not isinstance(c, KafkaTimeoutError)), exc)
    if connection.uses_sasl and "disconnected" in str(cause):
        # Apache Kafka 4.4 hangs up on a SCRAM login it refuses; kafka-python sees no answer.
        return BrokerSecurityError(
            f"{where}: the broker hung up during every login within "
            f"{connection.connect_limit_s:.0f} s, as Kafka does when it refuses a SCRAM login; "
            f"check {ENV}SASL_USERNAME, {ENV}SASL_PASSWORD (or {ENV}SASL_PASSWORD_FILE) and "
            f"{ENV}SASL_MECHANISM, and {ENV}SECURITY_PROTOCOL against the listener"
        )
    reason = str(cause) if isinstance(cause, KafkaError) else f"{type(cause).__name__}: {cause}"
    if connection.security_protocol == "PLAINTEXT":
        hint = (
            f"is it running? ('tellonce broker' starts one; a secured cluster needs "
            f"{ENV}SECURITY_PROTOCOL and its credentials)"
        )
    else:
        hint = f"is it running, and does its listener there take {connection.security_protocol}?"
    return BrokerError(f"{where} within {connection.connect_limit_s:.0f} s ({reason}); {hint}")


def _security_problem(exc: BaseException, connection: KafkaConnection) -> str | None:
    """What a security failure means and which setting to check, or None for another failure."""
    user = f"user {connection.sasl_plain_username!r} with {connection.sasl_mechanism}"
    if isinstance(exc, SaslAuthenticationFailedError):
        return (
            f"the broker refused the SASL login of {user} ({_broker_words(exc)}); check "
            f"{ENV}SASL_USERNAME and {ENV}SASL_PASSWORD (or {ENV}SASL_PASSWORD_FILE), and "
            "that the cluster has credentials for that user and mechanism"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return (
            f"the listener does not offer SASL {connection.sasl_mechanism} "
            f"({_broker_words(exc)}); check {ENV}SASL_MECHANISM"
        )
    if isinstance(exc, IllegalSaslStateError):
        return (
            f"the listener at that address does not take a SASL login; check "
            f"{ENV}SECURITY_PROTOCOL ({connection.security_protocol}) against the listener"
        )
    if isinstance(exc, AuthorizationError):
        who = user if connection.uses_sasl else "this client"
        return (
            f"the cluster does not allow {who} this ({type(exc).__name__}); ask its operator "
            "for the ACLs of this role (README: who may write where)"
        )
    text = str(exc)
    if "Handshake failed" in text or "SSL" in text:
        return (
            f"the TLS handshake failed ({text.removeprefix('KafkaConnectionError: ')}); check "
            f"{ENV}SSL_CAFILE, the address against the broker's certificate, and "
            f"{ENV}SECURITY_PROTOCOL ({connection.security_protocol})"
        )
    return None


def _broker_words(exc: BaseException) -> str:
    """kafka-python's text of a broker error, without repeating the class name."""
    text = str(exc)
    return text.split(": ", 1)[1] if ": " in text else (text or type(exc).__name__)


class _KeepFailures(logging.Filter):
    """Takes kafka-python's connection-failure records out of the logs, keeping their errors."""

    def __init__(self) -> None:
        super().__init__()
        self.causes: list[BaseException] = []

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        self.causes += [arg for arg in args if isinstance(arg, BaseException)]
        return False


@contextlib.contextmanager
def _failures_kept() -> Iterator[list[BaseException]]:
    """While a client connects, its failed attempts are kept, not logged once per retry: they
    come back as the cause in the one error raised. (Another client connecting at the same
    moment in this process has its failure records kept too, and dropped.)"""
    keep = _KeepFailures()
    loggers = [logging.getLogger(name) for name in _CONNECTION_LOGGERS]
    for logger in loggers:
        logger.addFilter(keep)
    try:
        yield keep.causes
    finally:
        for logger in loggers:
            logger.removeFilter(keep)


# -- settings to options ------------------------------------------------------------------


def _readable(path: Path | None, setting: str) -> None:
    if path is None:
        return
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as exc:
        reason = unreadable(exc)
        raise ConfigError(f"cannot read {path} ({ENV}{setting.upper()}): {reason}") from None


def _password_in(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} ({ENV}SASL_PASSWORD_FILE) is not UTF-8 text; put the password in it"
        ) from None
    if not text:
        raise ConfigError(f"{path} ({ENV}SASL_PASSWORD_FILE) is empty; put the password in it")
    return text


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()
