"""The CLI on a broker that will not take its transport settings: one ``tellonce:`` line and
exit 2, soon, naming the setting to check; a password given in the settings is never printed,
not in a refusal, a settings error or ``--help``."""

from __future__ import annotations

import json
from pathlib import Path

from hub.adapters.broker import EmbeddedBroker
from hub.errors import ConfigError
from tests.integration.conftest import unavailable
from tests.keyring import key_file
from tests.tls_peer import Authority, tls_listener

from .conftest import run
from .test_messages import one_message

PASSWORD = "Sekr3t-Kafka-pw"
EVENT = json.dumps(
    {
        "subject_id": "SBC-1",
        "effective_date": "2025-01-01",
        "new_address": {
            "lines": ["1 Main St"],
            "municipality": "Victoria",
            "province": "BC",
            "postal_code": "V8W 1A1",
        },
        "mailing_address": None,
    }
)


def publish(env: dict[str, str]) -> str:
    """The one line of a signed `tellonce publish` that must fail with exit 2."""
    key = str(key_file("bc-service-bc"))
    return one_message(
        run("publish", "bc-service-bc", "AddressChanged", "--json", EVENT, "--key", key, env=env),
        2,
    )


def test_ssl_against_the_plaintext_embedded_broker_is_one_line_naming_the_protocol(
    signed_env: dict[str, str],
) -> None:
    """`publish` with security_protocol SSL on Tansu exits 2 saying its listener speaks no TLS."""
    try:
        embedded = EmbeddedBroker()
    except ConfigError as exc:
        unavailable(f"no Tansu broker binary: {exc}")
    with embedded:
        message = publish(
            signed_env
            | {
                "TELLONCE_BROKER__BOOTSTRAP_SERVERS": embedded.bootstrap,
                "TELLONCE_BROKER__SECURITY_PROTOCOL": "SSL",
            }
        )
    assert message.startswith(f"tellonce: cannot connect to {embedded.bootstrap} (SSL): no TLS")
    assert "check TELLONCE_BROKER__SECURITY_PROTOCOL" in message


def test_hub_run_on_a_broker_of_an_unknown_ca_stops_with_one_line_and_no_password(
    sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    """`hub run` with SASL_SSL on a broker whose certificate the configured CA did not sign
    stops at once (it is not retried), naming the CA setting and the user, not the password."""
    ca, stranger = Authority(tmp_path), Authority(tmp_path, "another CA")
    with tls_listener(ca.issue("broker", ["127.0.0.1"])) as address:
        result = run(
            "hub", "run", "--idle-exit", "1",
            env=sqlite_env
            | {
                "TELLONCE_BROKER__BOOTSTRAP_SERVERS": address,
                "TELLONCE_BROKER__SECURITY_PROTOCOL": "SASL_SSL",
                "TELLONCE_BROKER__SSL_CAFILE": str(stranger.cert),
                "TELLONCE_BROKER__SASL_MECHANISM": "SCRAM-SHA-512",
                "TELLONCE_BROKER__SASL_USERNAME": "hub",
                "TELLONCE_BROKER__SASL_PASSWORD": PASSWORD,
            },
        )  # fmt: skip
    message = one_message(result, 2)
    assert "(SASL_SSL, user 'hub', SCRAM-SHA-512): the broker's certificate was not" in message
    assert "check TELLONCE_BROKER__SSL_CAFILE" in message
    assert PASSWORD not in result.stdout + result.stderr


def test_a_settings_error_and_help_never_show_the_password(sqlite_env: dict[str, str]) -> None:
    """A SASL password with a protocol that has no SASL exits 2 naming the variables, without
    the password; `--help` with the password set does not show it either."""
    env = sqlite_env | {
        "TELLONCE_BROKER__BOOTSTRAP_SERVERS": "127.0.0.1:9093",
        "TELLONCE_BROKER__SECURITY_PROTOCOL": "SSL",
        "TELLONCE_BROKER__SASL_USERNAME": "hub",
        "TELLONCE_BROKER__SASL_PASSWORD": PASSWORD,
        "TELLONCE_BROKER__SSL_KEY_PASSWORD": PASSWORD,
    }
    message = publish(env)
    assert "invalid settings: TELLONCE_BROKER:" in message
    assert "SSL_KEY_PASSWORD is set but TELLONCE_BROKER__SSL_KEYFILE is not" in message
    assert PASSWORD not in message
    for words in (["--help"], ["hub", "run", "--help"], ["publish", "--help"]):
        shown = run(*words, env=env)
        assert shown.returncode == 0
        assert PASSWORD not in shown.stdout + shown.stderr
