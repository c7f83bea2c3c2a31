"""Kafka transport security: the settings, what they become for kafka-python, and the errors a
refused connection becomes, secrets never shown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from kafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    TopicAuthorizationFailedError,
    UnsupportedSaslMechanismError,
)
from pydantic import SecretStr, ValidationError

from hub.adapters.kafka_client import KafkaConnection, broker_error, open_client
from hub.config.settings import BrokerSettings, Settings
from hub.errors import BrokerError, BrokerSecurityError, ConfigError

PASSWORD = "Sekr3t-Kafka-pw"
ROOT = Path(__file__).resolve().parents[2]


def problems(**fields: Any) -> str:
    """The message BrokerSettings refuses ``fields`` with."""
    with pytest.raises(ValidationError) as refused:
        BrokerSettings(**fields)
    return str(refused.value)


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, Path]:
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    for path in files.values():
        path.write_text("-----BEGIN CERTIFICATE-----\n")
    return files


# -- settings ------------------------------------------------------------------------------------


def test_plaintext_is_the_default_and_needs_nothing() -> None:
    """Without security settings the clients speak PLAINTEXT, as the embedded Tansu does."""
    broker = BrokerSettings()
    assert broker.security_protocol == "PLAINTEXT"
    assert KafkaConnection.from_settings(broker, "h:9092").client_options() == {
        "bootstrap_servers": "h:9092",
        "security_protocol": "PLAINTEXT",
        "bootstrap_timeout_ms": 30_000,
    }


def test_sasl_needs_mechanism_user_and_password() -> None:
    """SASL_SSL without its login is refused naming every variable still to set."""
    message = problems(bootstrap_servers="h:9093", security_protocol="SASL_SSL")
    for variable in ("SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD or"):
        assert f"TELLONCE_BROKER__{variable}" in message


def test_sasl_settings_without_a_sasl_protocol_are_refused() -> None:
    """A SASL login with security_protocol SSL would never be used: refused, not ignored."""
    message = problems(
        bootstrap_servers="h:9093",
        security_protocol="SSL",
        sasl_username="hub",
        sasl_password=PASSWORD,
    )
    assert "TELLONCE_BROKER__SASL_USERNAME, TELLONCE_BROKER__SASL_PASSWORD need(s)" in message
    assert "SASL_SSL or SASL_PLAINTEXT (it is SSL)" in message
    assert PASSWORD not in message


def test_a_password_and_a_password_file_together_are_refused(tmp_path: Path) -> None:
    """Exactly one of sasl_password and sasl_password_file."""
    message = problems(
        bootstrap_servers="h:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="hub",
        sasl_password=PASSWORD,
        sasl_password_file=tmp_path / "pw",
    )
    assert (
        "give TELLONCE_BROKER__SASL_PASSWORD or TELLONCE_BROKER__SASL_PASSWORD_FILE, not both"
        in message
    )
    assert PASSWORD not in message


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_tls_files_without_tls_are_refused(protocol: str, pem: dict[str, Path]) -> None:
    """A CA file with a protocol that never uses TLS is refused, naming the protocol."""
    login = {"sasl_mechanism": "PLAIN", "sasl_username": "u", "sasl_password": "p"}
    message = problems(
        bootstrap_servers="h:9092",
        security_protocol=protocol,
        ssl_cafile=pem["ca"],
        **(login if protocol.startswith("SASL") else {}),
    )
    assert (
        f"TELLONCE_BROKER__SSL_CAFILE need(s) security_protocol SSL or SASL_SSL (it is {protocol})"
        in message
    )


@pytest.mark.parametrize(
    ("given", "missing"), [("ssl_certfile", "SSL_KEYFILE"), ("ssl_keyfile", "SSL_CERTFILE")]
)
def test_mutual_tls_needs_the_certificate_and_its_key(
    given: str, missing: str, pem: dict[str, Path]
) -> None:
    """A client certificate without its key (or the reverse) is refused naming the other."""
    message = problems(bootstrap_servers="h:9093", security_protocol="SSL", **{given: pem["cert"]})
    assert f"set TELLONCE_BROKER__{missing} too" in message


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL", "SASL_PLAINTEXT"])
def test_a_secured_protocol_needs_a_cluster_address(protocol: str) -> None:
    """The embedded Tansu speaks PLAINTEXT only: a secured protocol without bootstrap_servers
    is refused saying so."""
    message = problems(security_protocol=protocol)
    assert (
        "needs TELLONCE_BROKER__BOOTSTRAP_SERVERS: the embedded Tansu broker speaks PLAINTEXT"
        in message
    )


def test_unknown_protocol_and_mechanism_are_refused() -> None:
    """Only the protocols and mechanisms tellonce supports are accepted (no OAUTHBEARER, GSSAPI)."""
    assert "SASL_SSL" in problems(bootstrap_servers="h:1", security_protocol="TLS")
    assert "SCRAM-SHA-512" in problems(bootstrap_servers="h:1", sasl_mechanism="OAUTHBEARER")


def test_settings_from_the_environment_hide_the_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """TELLONCE_BROKER__* variables give a SASL_SSL login whose passwords no repr shows."""
    for name, value in {
        "BOOTSTRAP_SERVERS": "kafka-1.example.ca:9093",
        "SECURITY_PROTOCOL": "SASL_SSL",
        "SASL_MECHANISM": "SCRAM-SHA-512",
        "SASL_USERNAME": "hub",
        "SASL_PASSWORD": PASSWORD,
        "SSL_KEY_PASSWORD": PASSWORD + "-key",
        "SSL_CERTFILE": "/etc/tellonce/hub.pem",
        "SSL_KEYFILE": "/etc/tellonce/hub.key",
    }.items():
        monkeypatch.setenv(f"TELLONCE_BROKER__{name}", value)
    settings = Settings()
    assert settings.broker.sasl_password is not None
    assert settings.broker.sasl_password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(settings) + str(settings) + settings.model_dump_json()


# -- the connection --------------------------------------------------------------------------


def test_sasl_ssl_with_mutual_tls_maps_to_kafka_python_options(pem: dict[str, Path]) -> None:
    """Every security setting reaches kafka-python under its own option name."""
    broker = BrokerSettings(
        bootstrap_servers="kafka-1.example.ca:9093",
        security_protocol="SASL_SSL",
        ssl_cafile=pem["ca"],
        ssl_certfile=pem["cert"],
        ssl_keyfile=pem["key"],
        ssl_key_password=SecretStr("keypw"),
        ssl_check_hostname=False,
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="hub",
        sasl_password=SecretStr(PASSWORD),
    )
    options = KafkaConnection.from_settings(broker, "kafka-1.example.ca:9093").client_options()
    assert options == {
        "bootstrap_servers": "kafka-1.example.ca:9093",
        "security_protocol": "SASL_SSL",
        "bootstrap_timeout_ms": 30_000,
        "ssl_cafile": str(pem["ca"]),
        "ssl_certfile": str(pem["cert"]),
        "ssl_keyfile": str(pem["key"]),
        "ssl_password": "keypw",
        "ssl_check_hostname": False,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "hub",
        "sasl_plain_password": PASSWORD,
    }


def test_the_password_file_is_read_once_without_its_newline(tmp_path: Path) -> None:
    """sasl_password_file gives the password (a trailing newline dropped), hidden in repr."""
    secret = tmp_path / "kafka-password"
    secret.write_text(PASSWORD + "\n")
    broker = BrokerSettings(
        bootstrap_servers="h:9093",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="hub",
        sasl_password_file=secret,
    )
    connection = KafkaConnection.from_settings(broker, "h:9093")
    assert connection.client_options()["sasl_plain_password"] == PASSWORD
    assert PASSWORD not in repr(connection) + connection.describe()
    assert "ssl_cafile" not in connection.client_options()


@pytest.mark.parametrize("setting", ["ssl_cafile", "sasl_password_file"])
def test_a_missing_file_is_a_settings_error_naming_its_variable(
    setting: str, tmp_path: Path
) -> None:
    """A file the security settings name that does not exist stops the connection with the
    variable to fix."""
    fields: dict[str, Any] = {"bootstrap_servers": "h:9093", setting: tmp_path / "nope.pem"}
    if setting == "ssl_cafile":
        fields["security_protocol"] = "SSL"
    else:
        fields |= {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"}
    with pytest.raises(
        ConfigError, match=rf"nope.pem \(TELLONCE_BROKER__{setting.upper()}\): no such file"
    ):
        KafkaConnection.from_settings(BrokerSettings(**fields), "h:9093")


# -- what a refused connection becomes -------------------------------------------------------


def sasl_connection() -> KafkaConnection:
    return KafkaConnection(
        "kafka-1.example.ca:9093",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="hub",
        sasl_plain_password=SecretStr(PASSWORD),
    )


def failing(exc: Exception) -> Any:
    def factory(**options: Any) -> None:
        assert options["sasl_plain_password"] == PASSWORD  # kafka-python gets the secret
        raise exc

    return factory


def test_a_refused_login_names_user_and_mechanism_but_not_the_password() -> None:
    """Wrong credentials: BrokerSecurityError, not retriable, saying which settings to check."""
    refusal = SaslAuthenticationFailedError(
        "Authentication failed during authentication due to invalid credentials with SASL "
        "mechanism SCRAM-SHA-512"
    )
    with pytest.raises(BrokerSecurityError) as refused:
        open_client(failing(refusal), sasl_connection(), "a producer")
    message = str(refused.value)
    assert refused.value.retriable is False
    assert message.startswith(
        "cannot connect a producer to kafka-1.example.ca:9093 (SASL_PLAINTEXT"
    )
    assert (
        "refused the SASL login of user 'hub' with SCRAM-SHA-512 (Authentication failed" in message
    )
    assert "check TELLONCE_BROKER__SASL_USERNAME and TELLONCE_BROKER__SASL_PASSWORD" in message
    assert PASSWORD not in message


def test_a_timeout_reports_the_last_connection_failure_kafka_python_logged() -> None:
    """kafka-python retries a mechanism the listener lacks until its bootstrap times out and
    logs the cause only: the error names that cause and the setting, and no log line is left."""
    import logging

    def factory(**_options: Any) -> None:
        logging.getLogger("kafka.net.connection").error(
            "%s: Connection lost: %s", "conn", UnsupportedSaslMechanismError()
        )
        logging.getLogger("kafka.net.manager").error(
            "Bootstrap failed: %s", KafkaTimeoutError("Unable to bootstrap")
        )
        raise KafkaTimeoutError("Unable to bootstrap from kafka-1.example.ca:9093")

    with pytest.raises(
        BrokerSecurityError,
        match=r"does not offer SASL SCRAM-SHA-512.*check TELLONCE_BROKER__SASL_MECHANISM",
    ):
        open_client(factory, sasl_connection(), "the topic admin")


def test_a_broker_that_hangs_up_on_every_sasl_login_is_a_login_problem() -> None:
    """Apache Kafka 4.4 may hang up on a SCRAM login it refuses instead of answering (measured):
    after a bootstrap of hang-ups only, the error says to check the login settings."""
    import logging

    def factory(**_options: Any) -> None:
        logging.getLogger("kafka.net.connection").error(
            "%s: Connection lost: %s", "conn", KafkaConnectionError("socket disconnected")
        )
        raise KafkaTimeoutError("Unable to bootstrap from kafka-1.example.ca:9093")

    with pytest.raises(BrokerSecurityError) as refused:
        open_client(factory, sasl_connection(), "a consumer")
    assert "hung up during every login within 30 s" in str(refused.value)
    assert "check TELLONCE_BROKER__SASL_USERNAME, TELLONCE_BROKER__SASL_PASSWORD" in str(
        refused.value
    )


def test_an_unreachable_broker_stays_a_retriable_broker_error() -> None:
    """A refused TCP connection is not a security problem: BrokerError, retriable, with cause."""
    import logging

    def factory(**_options: Any) -> None:
        logging.getLogger("kafka.net.manager").error(
            "Connection failed: %s", KafkaConnectionError("111 ECONNREFUSED")
        )
        raise KafkaTimeoutError("Unable to bootstrap from h:1")

    with pytest.raises(BrokerError) as failed:
        open_client(factory, KafkaConnection.plaintext("h:1"), "a consumer")
    assert type(failed.value) is BrokerError
    assert failed.value.retriable
    assert "within 30 s (KafkaConnectionError: 111 ECONNREFUSED); is it running?" in str(
        failed.value
    )


def test_an_acl_refusal_on_a_connected_client_is_a_security_error() -> None:
    """A topic the cluster's ACLs refuse this user is not retried: it names the user."""
    error = broker_error(TopicAuthorizationFailedError(), sasl_connection(), "cannot publish to t")
    assert isinstance(error, BrokerSecurityError)
    assert not error.retriable
    assert (
        "does not allow user 'hub' with SCRAM-SHA-512 this (TopicAuthorizationFailedError)"
        in str(error)
    )


def test_every_kafka_client_of_the_product_is_built_through_open_client() -> None:
    """No producer, consumer or admin client in hub/ or connectors/ is constructed but by
    open_client, which gives it the connection's security options."""
    built = re.compile(r"\b(KafkaProducer|KafkaConsumer|KafkaAdminClient)\(")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("hub", "connectors")
        for path in (ROOT / folder).rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if built.search(line)
    ]
    assert found == []


def test_the_readme_settings_table_lists_every_security_setting() -> None:
    """Each transport-security setting has its row in the README's Settings table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Settings") : readme.index("### Connecting to a secured")]
    rows = " ".join(line for line in table.splitlines() if line.startswith("| `TELLONCE_"))
    security = [
        n for n in BrokerSettings.model_fields if n.startswith(("ssl_", "sasl_", "security"))
    ]
    missing = [n for n in security if f"__{n.upper()}`" not in rows]
    assert missing == []
