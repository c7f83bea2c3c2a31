"""A test PKI for the secured Kafka tier: one CA, a broker certificate, one client certificate
per principal, all made with ``cryptography`` and written as PEM files (keys mode 0600).

Every certificate names its principal in its subject's CN and nothing else, so that the
broker's ``ssl.principal.mapping.rules`` turn ``CN=hub`` into ``User:hub``: the same name a
SCRAM login gives. The broker's certificate is also its client certificate towards the other
nodes and the controller (mutual TLS inside the cluster), and names ``127.0.0.1`` and
``localhost`` as subject alternative names so that host names are checked everywhere.

Keys are ECDSA P-256: made in a millisecond, read by Java's and Python's TLS alike.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = datetime.timedelta(days=2)  # the run's length, with room; never reused
BROKER = "broker"  # the CN (so the principal) of every node's certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # Unencrypted PKCS#8: Kafka's PEM key store reads it when no ssl.key.password is set.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, secret: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if secret:  # created 0600, never readable by others even for a moment
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(path, 0o600)  # an existing file keeps its mode through O_TRUNC
    else:
        path.write_bytes(data)
    return path


@dataclass(frozen=True)
class Credential:
    """A certificate and its private key, as PEM bytes."""

    cert_pem: bytes
    key_pem: bytes


class TestCA:
    """A certificate authority that lives for one test run."""

    __test__ = False  # a helper, not a test class for pytest to collect

    def __init__(self, name: str = "tellonce test CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self._now = now
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name: str, *, server: bool = False) -> Credential:
        """A certificate for ``common_name`` signed by this CA: a client certificate, or with
        ``server`` one that also serves TLS on 127.0.0.1 and localhost (a broker's)."""
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - datetime.timedelta(minutes=5))
            .not_valid_after(self._now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        cert = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False).sign(
            self._key, hashes.SHA256()
        )
        return Credential(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


@dataclass(frozen=True)
class Pki:
    """Where the files of a test PKI are: the CA, the brokers' key store, client pairs."""

    folder: Path
    ca_file: Path
    broker_keystore: Path  # the broker's key then its certificate chain (Kafka's PEM store)

    def client_files(self, principal: str) -> tuple[Path, Path]:
        """(certificate, key) of ``principal``'s client certificate."""
        cert, key = self.folder / f"{principal}.crt", self.folder / f"{principal}.key"
        if not cert.exists():
            raise KeyError(f"no client certificate for {principal!r} in {self.folder}")
        return cert, key


def write_pki(folder: Path, principals: list[str]) -> Pki:
    """A new CA, a broker certificate and a client certificate per principal, under
    ``folder``; private keys are 0600."""
    ca = TestCA()
    ca_file = _write(folder / "ca.crt", ca.cert_pem)
    broker = ca.issue(BROKER, server=True)
    keystore = _write(
        folder / f"{BROKER}.keystore.pem",
        broker.key_pem + broker.cert_pem + ca.cert_pem,
        secret=True,
    )
    for principal in principals:
        write_client(folder, principal, ca)
    return Pki(folder, ca_file, keystore)


def write_client(folder: Path, principal: str, ca: TestCA) -> tuple[Path, Path]:
    """``principal``'s client certificate from ``ca`` as ``<principal>.crt`` and ``.key``."""
    credential = ca.issue(principal)
    return (
        _write(folder / f"{principal}.crt", credential.cert_pem),
        _write(folder / f"{principal}.key", credential.key_pem, secret=True),
    )
