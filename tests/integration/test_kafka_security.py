"""Kafka transport security as far as it shows without a secured Kafka: a TLS or SASL client
against the PLAINTEXT embedded Tansu, and against a TLS listener on loopback whose CA, names or
client-certificate demand do not fit, fails at once with the error that names the setting to
check, never hanging and never showing a password. (Right and wrong logins on Apache Kafka with
SASL_SSL and mutual TLS: the Kafka tier.)"""

from __future__ import annotations

import logging
from io import StringIO
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from pydantic import SecretStr

from hub.adapters.broker import EmbeddedBroker
from hub.adapters.kafka_client import KafkaConnection, open_client
from hub.adapters.kafka_tls import check_tls
from hub.bootstrap import App
from hub.config import logs
from hub.errors import BrokerSecurityError, ConfigError
from tests.logstate import logging_restored
from tests.tls_peer import Authority, Issued, tls_listener

from .harness import settings_for, tuned

pytestmark = pytest.mark.integration

PASSWORD = "Sekr3t-Kafka-pw"


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path)


@pytest.fixture
def server(ca: Authority) -> Issued:
    return ca.issue("broker", ["localhost", "127.0.0.1"])


def tls(address: str, **options: object) -> KafkaConnection:
    return KafkaConnection(address, security_protocol="SSL", **options)  # type: ignore[arg-type]


def refusal(connection: KafkaConnection) -> str:
    """The message of the BrokerSecurityError the TLS check raises for ``connection``."""
    with pytest.raises(BrokerSecurityError) as refused:
        check_tls(connection)
    assert refused.value.retriable is False
    return str(refused.value)


def test_tls_against_the_plaintext_embedded_broker_says_its_listener_speaks_no_tls(
    broker: EmbeddedBroker,
) -> None:
    """An SSL producer on Tansu (which waits silently for a Kafka request) is stopped by the
    bounded handshake, naming TELLONCE_BROKER__SECURITY_PROTOCOL, instead of waiting forever."""
    with pytest.raises(BrokerSecurityError) as refused:
        open_client(KafkaProducer, tls(broker.bootstrap), "a producer")
    message = str(refused.value)
    assert f"cannot connect to {broker.bootstrap} (SSL): no TLS answer within 10 s" in message
    assert "check TELLONCE_BROKER__SECURITY_PROTOCOL" in message


def test_an_app_with_sasl_settings_on_the_embedded_broker_stops_naming_user_not_password(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """SASL_PLAINTEXT SCRAM-SHA-512 on Tansu (whose SCRAM does not work): the App's first
    client fails with BrokerSecurityError naming user and mechanism; neither the error nor any
    log line, at debug level, holds the password."""
    settings = tuned(
        settings_for(f"sqlite:///{tmp_path / 'hub.db'}", broker.bootstrap),
        broker={
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "hub",
            "sasl_password": SecretStr(PASSWORD),
        },
    )
    app = App.from_settings(settings)
    written = StringIO()
    with logging_restored():
        logs.configure("debug", "json", stream=written)
        kafka = app.kafka().bounded(3)  # kafka-python retries this until its bootstrap limit
        try:
            with pytest.raises(BrokerSecurityError) as refused:
                app.ensure_topics(kafka)
        finally:
            app.close()
    message = str(refused.value)
    assert "(SASL_PLAINTEXT, user 'hub', SCRAM-SHA-512)" in message
    assert "check TELLONCE_BROKER__SASL_MECHANISM" in message
    assert PASSWORD not in message + written.getvalue()
    assert logging.getLogger("kafka.net.connection").filters == []  # the failures kept, no more


def test_a_broker_certificate_of_an_unknown_ca_is_reported_with_the_ca_setting(
    tmp_path: Path, server: Issued
) -> None:
    """A broker whose certificate another CA signed: the TLS check names the verification
    failure and TELLONCE_BROKER__SSL_CAFILE."""
    stranger = Authority(tmp_path, "another CA")
    with tls_listener(server) as address:
        message = refusal(tls(address, ssl_cafile=str(stranger.cert)))
    assert "the broker's certificate was not accepted (" in message
    assert "check TELLONCE_BROKER__SSL_CAFILE" in message


def test_a_certificate_for_another_host_is_reported_with_the_hostname_setting(
    ca: Authority,
) -> None:
    """A broker reached at 127.0.0.1 whose certificate names only kafka-1.example.ca: the
    check names the mismatch and the setting that turns the check off."""
    elsewhere = ca.issue("elsewhere", ["kafka-1.example.ca"])
    with tls_listener(elsewhere) as address:
        message = refusal(tls(address, ssl_cafile=str(ca.cert)))
    assert "mismatch" in message
    assert "TELLONCE_BROKER__SSL_CHECK_HOSTNAME" in message


def test_a_broker_that_wants_a_client_certificate_says_so(ca: Authority, server: Issued) -> None:
    """Mutual TLS required, no client certificate given: the refusal the broker sends after
    the handshake is reported naming TELLONCE_BROKER__SSL_CERTFILE."""
    with tls_listener(server, client_ca=ca.cert) as address:
        message = refusal(tls(address, ssl_cafile=str(ca.cert)))
    assert "TELLONCE_BROKER__SSL_CERTFILE" in message


def test_a_client_certificate_the_broker_does_not_trust_is_reported(
    tmp_path: Path, ca: Authority, server: Issued
) -> None:
    """Mutual TLS with a client certificate of a CA the broker does not trust: the broker's
    refusal is reported naming TELLONCE_BROKER__SSL_CERTFILE."""
    stranger = Authority(tmp_path, "another CA").issue("hub", ["hub"])
    with tls_listener(server, client_ca=ca.cert) as address:
        message = refusal(
            tls(
                address,
                ssl_cafile=str(ca.cert),
                ssl_certfile=str(stranger.cert),
                ssl_keyfile=str(stranger.key),
            )
        )
    assert "the broker refused this client's certificate (" in message
    assert "check that TELLONCE_BROKER__SSL_CERTFILE is signed by a CA the broker trusts" in message


def test_right_tls_settings_pass_the_check_with_and_without_a_client_certificate(
    ca: Authority, server: Issued
) -> None:
    """The CA that signed the broker, and for mutual TLS a client certificate of the CA it
    trusts (its key encrypted, with the password set): the check lets the client through."""
    client = ca.issue("hub", ["hub"], password="keypw")
    with tls_listener(server) as address:
        check_tls(tls(address, ssl_cafile=str(ca.cert)))
    with tls_listener(server, client_ca=ca.cert) as address:
        check_tls(
            tls(
                address,
                ssl_cafile=str(ca.cert),
                ssl_certfile=str(client.cert),
                ssl_keyfile=str(client.key),
                ssl_password=SecretStr("keypw"),
            )
        )


def test_a_wrong_key_password_is_a_settings_error_that_does_not_show_it(
    ca: Authority, server: Issued
) -> None:
    """An encrypted client key with the wrong password: ConfigError naming the key settings,
    before any connection; the password given is not in it."""
    client = ca.issue("hub", ["hub"], password="right-pw")
    with tls_listener(server) as address, pytest.raises(ConfigError) as refused:
        open_client(
            KafkaAdminClient,
            tls(
                address,
                ssl_cafile=str(ca.cert),
                ssl_certfile=str(client.cert),
                ssl_keyfile=str(client.key),
                ssl_password=SecretStr(PASSWORD),
            ),
            "the topic admin",
        )
    assert "check TELLONCE_BROKER__SSL_CERTFILE, TELLONCE_BROKER__SSL_KEYFILE" in str(refused.value)
    assert PASSWORD not in str(refused.value)
