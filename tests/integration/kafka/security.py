"""The secured mode of the tier's cluster: SASL_SSL with SCRAM-SHA-512, mutual TLS, ACLs.

``KafkaCluster(jars, workdir, security=ClusterSecurity.create(folder, principals))`` starts
every node with three listeners on loopback, all TLS with the test CA of ``pki.py``:

- ``SCRAM`` (SASL_SSL, SCRAM-SHA-512): the node's ``port``, what ``bootstrap`` names;
- ``MTLS`` (SSL, ``ssl.client.auth=required``): ``tls_port``; also the listener the nodes
  use between themselves, each authenticated by the broker certificate;
- ``CONTROLLER`` (SSL, client certificates required): the KRaft quorum, same certificate.

No PLAINTEXT listener is left. The authorizer is KRaft's ``StandardAuthorizer`` with
``allow.everyone.if.no.acl.found=false``: a principal may do only what an ACL lets it (see
``acls.py``). The super users are ``User:broker`` (the nodes' certificate) and ``User:admin``
(a SCRAM user the tier uses to apply ACLs, create and empty topics). A certificate's CN is its
principal (``ssl.principal.mapping.rules``), so ``CN=hub`` and the SCRAM user ``hub`` are the
same ``User:hub``. SCRAM users are written at format time (``StorageTool --add-scram``), one
per principal, with random passwords kept in this object (and, for the seconds the format
takes, on StorageTool's command line: test-only, on a loopback cluster that lives one run).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .pki import BROKER, Pki, write_pki

ADMIN = "admin"
MECHANISM = "SCRAM-SHA-512"
SUPER_USERS = (BROKER, ADMIN)
# The CN of a certificate subject, alone: CN=hub -> hub (any other DN keeps Kafka's default).
PRINCIPAL_RULES = "RULE:^CN=([^,]+)$/$1/,DEFAULT"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


@dataclass(frozen=True)
class ClusterSecurity:
    """The PKI and SCRAM passwords of a secured cluster, and the settings they make."""

    pki: Pki
    passwords: dict[str, str]  # principal -> its SCRAM password (the admin's included)

    @classmethod
    def create(cls, folder: Path, principals: list[str]) -> ClusterSecurity:
        """A new CA and certificates under ``folder``, and a SCRAM password per principal."""
        names = [ADMIN, *(p for p in principals if p != ADMIN)]
        if BROKER in names:
            raise ValueError(f"{BROKER!r} is the nodes' own principal, not a client's")
        # Hex only: StorageTool's --add-scram syntax has no quoting for ',' or ']'.
        return cls(write_pki(folder, names), {p: secrets.token_hex(16) for p in names})

    @property
    def ca_file(self) -> Path:
        return self.pki.ca_file

    def client_files(self, principal: str) -> tuple[Path, Path]:
        """(certificate, key) of ``principal``'s client certificate."""
        return self.pki.client_files(principal)

    def password(self, principal: str) -> str:
        return self.passwords[principal]

    def format_args(self) -> list[str]:
        """StorageTool format arguments that create every principal's SCRAM credential."""
        args: list[str] = []
        for name, password in self.passwords.items():
            args += ["--add-scram", f"{MECHANISM}=[name={name},password={password}]"]
        return args

    def broker_properties(self, port: int, tls_port: int, controller_port: int) -> dict[str, str]:
        """A node's listener, TLS, SASL and authorizer settings (replacing the plain ones)."""
        host = "127.0.0.1"
        return {
            "listeners": (
                f"SCRAM://{host}:{port},MTLS://{host}:{tls_port},CONTROLLER://{host}:{controller_port}"
            ),
            "advertised.listeners": f"SCRAM://{host}:{port},MTLS://{host}:{tls_port}",
            "listener.security.protocol.map": "SCRAM:SASL_SSL,MTLS:SSL,CONTROLLER:SSL",
            "inter.broker.listener.name": "MTLS",
            # TLS everywhere, from PEM files (no JKS tooling); client certificates required
            # except where SCRAM authenticates the client.
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.pki.broker_keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.pki.ca_file),
            "ssl.client.auth": "required",
            "listener.name.scram.ssl.client.auth": "none",
            "ssl.endpoint.identification.algorithm": "https",
            "ssl.principal.mapping.rules": PRINCIPAL_RULES,
            "sasl.enabled.mechanisms": MECHANISM,
            "listener.name.scram.sasl.enabled.mechanisms": MECHANISM,
            f"listener.name.scram.{MECHANISM.lower()}.sasl.jaas.config": SCRAM_LOGIN,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": ";".join(f"User:{name}" for name in SUPER_USERS),
        }

    def sasl_client(self, principal: str, password: str | None = None) -> dict[str, Any]:
        """kafka-python settings for ``principal`` on the SASL_SSL listener (``password``
        overrides its own, to try a wrong one)."""
        return {
            "security_protocol": "SASL_SSL",
            "ssl_cafile": str(self.pki.ca_file),
            "sasl_mechanism": MECHANISM,
            "sasl_plain_username": principal,
            "sasl_plain_password": self.passwords[principal] if password is None else password,
        }

    def tls_client(self, principal: str, files: tuple[Path, Path] | None = None) -> dict[str, Any]:
        """kafka-python settings for ``principal`` on the mutual-TLS listener (``files``, a
        (certificate, key) pair, override its own, to try another CA's)."""
        cert, key = files or self.client_files(principal)
        return {
            "security_protocol": "SSL",
            "ssl_cafile": str(self.pki.ca_file),
            "ssl_certfile": str(cert),
            "ssl_keyfile": str(key),
        }
