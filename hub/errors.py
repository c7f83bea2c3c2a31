"""Every error tellonce raises on purpose.

The tree::

    TellonceError                 root; ``retriable`` says retry (True) or give up (False)
    ├── ConfigError               settings, directory or catalog are wrong; fix and restart
    │   ├── FenceError            the hub's consumer group works with another store
    │   ├── UnknownSinkError      no connector sink by that name (also a LookupError)
    │   └── MissingDriverError    a sink's database driver is not installed (also a ValueError)
    ├── NotFoundError             a named recipient, person, link or event type does not exist
    ├── ConflictError             the request contradicts what is already recorded
    ├── RejectedEvent             an inbound event is invalid; carries a reason code
    │   ├── DecodeError           bytes are not a valid Avro body for the schema
    │   └── UnknownSchemaError    the schema id is not in the catalog
    ├── PayloadError              a payload to send does not fit its schema or the hub's rules
    ├── SchemaCompatibilityError  a published schema changed incompatibly
    ├── BrokerError               the Kafka broker failed or cannot be reached (retriable)
    │   └── BrokerSecurityError   TLS or SASL failed: credentials, certificates or the security
    │                             protocol do not fit the broker's listener (not retriable)
    ├── StoreError                the database failed (retriable unless said otherwise)
    │   └── RecordStoreError      the database refused a write because of one record's data
    ├── SignerError               the audit signing key cannot be used (retriable: fail closed)
    ├── KeyStoreError             the key-encryption key (file, HSM) cannot be used (retriable)
    ├── DecryptionError           a sealed value or wrapped key does not open: wrong key, altered
    │                             row, or a data key destroyed by erasure (not retriable)
    ├── ConnectorStopped          a connector with errors.tolerance=none could not deliver
    └── VerificationError         a bundle, proof or receipt does not verify
        └── ProofError            a Merkle proof does not check out (also a ValueError)

Messages name what was wrong and what to do. They never carry personal data:
identifiers of programs and events are fine, addresses, names and local ids are not.

Some errors also derive from a built-in exception (``LookupError``, ``ValueError``) because
they did before they joined this tree, and plug-ins or callers may catch them by it.
"""

from __future__ import annotations


class TellonceError(Exception):
    """Root of all tellonce errors."""

    retriable: bool = False

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(message)
        if retriable is not None:
            self.retriable = retriable


class ConfigError(TellonceError):
    """Settings, the directory or the schema catalog are wrong."""


class FenceError(ConfigError):
    """The hub's consumer group works with another store: joining it would split the group's
    events between two databases. Point the hub at the group's store or give it its own group."""


class UnknownSinkError(ConfigError, LookupError):
    """No connector sink resolves from the name given, or its module cannot be imported; the
    message names the sinks there are (``Did you mean ...?``) or the extra to install."""


class MissingDriverError(ConfigError, ValueError):
    """A sink's ``url`` option names a database whose Python driver is not installed; the
    message names the ``pip install`` extra that provides it."""


class NotFoundError(TellonceError):
    """A named recipient, person, identity link or event type does not exist."""


class ConflictError(TellonceError):
    """The request contradicts a record that already exists."""


class RejectedEvent(TellonceError):
    """An inbound event cannot be accepted; ``reason`` is a stable, machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class DecodeError(RejectedEvent):
    """The value is not a well-formed Avro body for its schema (or breaks a decode limit)."""

    def __init__(self, detail: str, reason: str = "malformed_avro") -> None:
        super().__init__(reason, detail)


class UnknownSchemaError(RejectedEvent):
    """The Confluent schema id in the value is not in the catalog."""

    def __init__(self, detail: str) -> None:
        super().__init__("unknown_schema", detail)


class PayloadError(TellonceError):
    """A payload about to be sent does not fit its schema, or the hub would refuse it.

    ``field`` names where (``new_address.lines[0]``), never the value; ``reason`` is the hub's
    rejection code when the hub's own checks refused it, else None.
    """

    def __init__(self, message: str, *, field: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.field = field
        self.reason = reason


class SchemaCompatibilityError(TellonceError):
    """A schema in the catalog breaks its compatibility promise."""


class BrokerError(TellonceError):
    """The Kafka broker failed or could not be reached."""

    retriable = True


class BrokerSecurityError(BrokerError):
    """The broker and this client could not agree on a secure connection: a SASL login was
    refused, a TLS handshake failed (a CA the client does not trust, a certificate for another
    host, a client certificate the broker refused), or the client's security protocol is not
    the one of the listener it reached. Retrying with the same settings fails the same way, so
    it is not retriable; the message names the setting to check and the user and mechanism,
    never a password or key."""

    retriable = False


class StoreError(TellonceError):
    """The database failed."""

    retriable = True


class RecordStoreError(StoreError):
    """The database refused a write because of the data written, not because it failed: a value
    it cannot hold (PostgreSQL SQLSTATE class 22, data exception) or a rule it enforces (class
    23, integrity violation). Retrying the same writes fails the same way, so it is not
    retriable; the hub worker finds the one record of the batch that causes it and sets that
    record aside (``unstorable``). ``cause`` is the driver's error class, e.g. CheckViolation:
    the driver's message is never kept, as it may quote the values.
    """

    retriable = False

    def __init__(self, message: str, *, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


class SignerError(TellonceError):
    """The signing key cannot be loaded or used. The hub stops accepting events until it can."""

    retriable = True


class KeyStoreError(TellonceError):
    """The key-encryption key cannot be used: its key file or HSM token is missing, locked or
    unreachable. Personal data can be neither sealed nor opened, so the hub stops accepting
    events until it can (fail closed), as with the signing key."""

    retriable = True


class DecryptionError(TellonceError):
    """A sealed value or a wrapped data key does not open: it was altered, moved to another row
    (associated data binds each to its row), wrapped under a key this hub does not hold, or its
    person was erased and the data key destroyed. Retrying cannot help."""


class VerificationError(TellonceError):
    """An audit bundle, a proof or a consent receipt does not verify."""


class ProofError(VerificationError, ValueError):
    """A Merkle proof (or its inputs) does not check out; the message says what is wrong."""


class ConnectorStopped(TellonceError):
    """errors.tolerance=none and a notification could not be delivered: the connector stops
    and commits nothing. Not retriable: the back office (or the notice) needs fixing first."""


__all__ = [
    "BrokerError",
    "BrokerSecurityError",
    "ConfigError",
    "ConflictError",
    "ConnectorStopped",
    "DecodeError",
    "DecryptionError",
    "FenceError",
    "KeyStoreError",
    "MissingDriverError",
    "NotFoundError",
    "PayloadError",
    "ProofError",
    "RecordStoreError",
    "RejectedEvent",
    "SchemaCompatibilityError",
    "SignerError",
    "StoreError",
    "TellonceError",
    "UnknownSchemaError",
    "UnknownSinkError",
    "VerificationError",
]
