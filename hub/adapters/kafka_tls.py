"""One bounded TLS handshake before the first kafka-python client of a TLS connection.

kafka-python 3.0.12 bounds neither a TLS handshake nor, while one is under way, its bootstrap:
against a peer that never answers (a PLAINTEXT listener that waits for a Kafka request, such as
the embedded Tansu) a client's constructor waits forever; against one that hangs up it retries
for ``bootstrap_timeout_ms`` and says only "Unable to bootstrap". This check shakes hands with
the same TLS settings as kafka-python (TLS 1.2 or later, the CA file or the system's CAs, the
host name checked unless turned off, the client certificate for mutual TLS), within
``HANDSHAKE_LIMIT_S``, and turns what went wrong into a BrokerSecurityError naming the setting to
check. A TLS 1.3 broker refuses a client certificate only after the handshake, with an alert:
the check waits ``REFUSAL_WAIT_S`` for one (a broker that accepted waits for a request).

An address nobody listens on is left to kafka-python, which retries it while the broker starts.
A connection that passed is not checked again in this process.
"""

from __future__ import annotations

import socket
import ssl
import threading

from hub.adapters.kafka_client import ENV, KafkaConnection
from hub.errors import BrokerSecurityError, ConfigError

HANDSHAKE_LIMIT_S = 10.0
REFUSAL_WAIT_S = 0.5

_passed: set[KafkaConnection] = set()
_lock = threading.Lock()


def tls_context(connection: KafkaConnection) -> ssl.SSLContext:
    """The TLS context kafka-python builds from the same options (``KafkaSSLTransport``).
    ConfigError when a file does not hold what it should, or the key password does not open
    the key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = connection.ssl_check_hostname
    try:
        if connection.ssl_cafile:
            context.load_verify_locations(connection.ssl_cafile)
        else:
            context.load_default_certs()
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"{connection.ssl_cafile} ({ENV}SSL_CAFILE) holds no PEM CA certificate "
            f"({_reason(exc)}); give the CA that signed the brokers' certificates"
        ) from None
    if connection.ssl_certfile:
        password = connection.ssl_password.get_secret_value() if connection.ssl_password else None
        try:
            context.load_cert_chain(connection.ssl_certfile, connection.ssl_keyfile, password)
        except (ssl.SSLError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot load the client certificate {connection.ssl_certfile} with the key "
                f"{connection.ssl_keyfile} ({_reason(exc)}); check {ENV}SSL_CERTFILE, "
                f"{ENV}SSL_KEYFILE (PEM, the key of that certificate) and, for an encrypted "
                f"key, {ENV}SSL_KEY_PASSWORD"
            ) from None
    return context


def check_tls(connection: KafkaConnection) -> None:
    """Return once a broker of ``connection`` completed a TLS handshake with its settings (or
    none could be reached: kafka-python retries that); else raise BrokerSecurityError."""
    with _lock:
        if connection in _passed:
            return
    context = tls_context(connection)
    addresses = connection.bootstrap.split(",")
    for address in addresses:
        host, port = _host_port(address)
        problem = _handshake(context, host, port)
        if problem == "unreachable":
            continue
        if problem is not None:
            where = f"at {host}:{port} " if len(addresses) > 1 else ""
            failed = f"cannot connect to {connection.describe()}"
            raise BrokerSecurityError(f"{failed}: {where}{problem}")
        with _lock:
            _passed.add(connection)
        return


def _handshake(context: ssl.SSLContext, host: str, port: int) -> str | None:
    """None when the broker shook hands and accepted this client; "unreachable"; or what
    went wrong, with the setting to check."""
    try:
        raw = socket.create_connection((host, port), timeout=HANDSHAKE_LIMIT_S)
    except OSError:
        return "unreachable"
    try:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.settimeout(REFUSAL_WAIT_S)
            try:
                closed = tls.recv(1) == b""
            except TimeoutError:  # the broker waits for a request: it accepted this client
                return None
            if closed:
                return (
                    "the broker closed the connection after the TLS handshake: it may want a "
                    f"client certificate ({ENV}SSL_CERTFILE, {ENV}SSL_KEYFILE) or refuse this one"
                )
            return None
    except ssl.SSLCertVerificationError as exc:
        return _not_verified(str(exc.verify_message), host)
    except ssl.SSLError as exc:
        return _refused(_reason(exc))
    except TimeoutError:
        return (
            f"no TLS answer within {HANDSHAKE_LIMIT_S:.0f} s: its listener does not seem to "
            f"speak TLS; check {ENV}SECURITY_PROTOCOL (PLAINTEXT or SASL_PLAINTEXT there?)"
        )
    except OSError as exc:
        return (
            f"the connection broke during the TLS handshake ({_reason(exc)}): its listener "
            f"does not seem to speak TLS; check {ENV}SECURITY_PROTOCOL"
        )
    finally:
        raw.close()


def _not_verified(why: str, host: str) -> str:
    if "mismatch" in why:
        return (
            f"the broker's certificate does not name {host} ({why}); reach the broker by a name "
            f"its certificate holds, or for a test cluster set {ENV}SSL_CHECK_HOSTNAME=false"
        )
    return (
        f"the broker's certificate was not accepted ({why}); check {ENV}SSL_CAFILE: it must "
        "hold the CA that signed the brokers' certificates"
    )


def _refused(why: str) -> str:
    if "CERTIFICATE_REQUIRED" in why.upper():
        return (
            f"the broker wants a client certificate ({why}); set {ENV}SSL_CERTFILE and "
            f"{ENV}SSL_KEYFILE (mutual TLS)"
        )
    if any(word in why.upper() for word in ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_")):
        return (
            f"the broker refused this client's certificate ({why}); check that "
            f"{ENV}SSL_CERTFILE is signed by a CA the broker trusts and is still valid"
        )
    return (
        f"the TLS handshake failed ({why}): its listener does not seem to speak TLS; check "
        f"{ENV}SECURITY_PROTOCOL"
    )


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().split("://")[-1].rpartition(":")
    return host.strip("[]"), int(port)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return str(exc) or type(exc).__name__
