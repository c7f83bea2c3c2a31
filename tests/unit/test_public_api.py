"""The public API: what a connector plug-in or a script may import, pinned like httpx's
``tests/test_exported_members.py``.

Each module below has an explicit ``__all__``. A name added to or dropped from one is a change
to the surface others build on: it must be made here too, on purpose. Everything else in these
modules, and every module not listed, may change without notice.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from types import ModuleType

import pytest

SURFACE = {
    # Sink discovery: the built-in alias table, the entry-point group, module:attr.
    "connectors": [
        "BUILTIN",
        "ENTRY_POINT_GROUP",
        "DeliveryResult",
        "Notification",
        "Outcome",
        "Sink",
        "SinkFactory",
        "UnknownSinkError",
        "available",
        "resolve_sink",
    ],
    # What a sink implements and returns.
    "connectors.contract": ["DeliveryResult", "Notification", "Outcome", "Sink", "SinkFactory"],
    # The contract tests every sink must pass.
    "connectors.testing": [
        "SimulatedCrash",
        "SinkContract",
        "crash",
        "personal_values",
        "sample_notification",
    ],
    # The consent domain's pure rules.
    "consent": [
        "ConsentDecision",
        "ConsentRevision",
        "ConsentState",
        "Evidence",
        "IdentityLink",
        "RuleViolation",
        "decide_disclosure",
        "next_revision",
    ],
    # The error tree: what to catch.
    "hub.errors": [
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
    ],
    # The wire contract a publisher or a consumer in any language follows.
    "hub.wire.topics": [
        "CONSENT_TOPIC",
        "HUB_SOURCE",
        "HUB_TOPIC",
        "LIFEEVENTS_TOPIC",
        "NOTICE_SEGMENT",
        "NOTIFY_PREFIX",
        "RECEIPTS_TOPIC",
        "REJECTED_TOPIC",
        "connector_group",
        "connector_source",
        "dlq_topic",
        "notice_topic_config",
        "notify_topic",
    ],
    "hub.wire.publishing": ["OutboundEvent", "checked_event", "event_message", "publish_event"],
    # The ports an outside adapter implements, by role.
    "hub.ports": [
        "AuditRecorder",
        "ClaimLog",
        "Clock",
        "Codec",
        "ConsentRecorder",
        "DecisionRecorder",
        "Decoded",
        "DeliveryRecorder",
        "IdentityRecorder",
        "KeyWrapper",
        "MessageSource",
        "OffsetLookup",
        "OffsetRecorder",
        "OutboxRecorder",
        "OutboxStore",
        "Producer",
        "Record",
        "RecordSigner",
        "Sealer",
        "SignatureCheck",
        "SignatureVerifier",
        "Signer",
        "Store",
        "StoreQueries",
        "Transaction",
    ],
    # The contract suites an outside store adapter subclasses, the vault it is tested with,
    # and the shared fakes.
    "hub.testing.store_contract": ["StoreContract"],
    "hub.testing.privacy_contract": ["PrivacyContract", "notice", "rejection", "two_persons"],
    "hub.testing.vaults": ["throwaway_vault"],
    "hub.testing.fakes": [
        "FaultyCodec",
        "ListSource",
        "ManualClock",
        "RecordingProducer",
        "Sent",
        "ShortSigner",
        "UnusableSigner",
    ],
}


def defined_names(module: ModuleType) -> set[str]:
    """The public names a module's own source defines at top level (classes, functions,
    assignments) and, for a package, re-exports from its own modules; imported helpers such
    as ``Any`` or ``dataclass`` are not among them."""
    tree = ast.parse(inspect.getsource(module))
    package = hasattr(module, "__path__")
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif package and isinstance(node, ast.ImportFrom) and _own(module, node):
            names.update(alias.asname or alias.name for alias in node.names)
    return {name for name in names if not name.startswith("_")}


def _own(package: ModuleType, node: ast.ImportFrom) -> bool:
    """An import from one of the package's own modules (a re-export, not a helper)."""
    return node.level > 0 or (node.module or "").startswith(package.__name__ + ".")


@pytest.mark.parametrize("name", sorted(SURFACE))
def test_the_exported_names_are_the_pinned_surface(name: str) -> None:
    """A module's ``__all__`` is exactly the surface pinned here (no accidental additions or
    removals)."""
    module = importlib.import_module(name)
    assert sorted(module.__all__) == sorted(SURFACE[name])


@pytest.mark.parametrize("name", sorted(SURFACE))
def test_every_exported_name_exists(name: str) -> None:
    """Every name in ``__all__`` can be imported (``from module import *`` cannot fail)."""
    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []


@pytest.mark.parametrize("name", sorted(SURFACE))
def test_every_public_name_is_exported(name: str) -> None:
    """A public class, function or constant the module defines is in ``__all__``: what is not
    meant for plug-ins starts with an underscore. (``__all__`` may also re-export a name from
    elsewhere, e.g. ``connectors.UnknownSinkError`` from ``hub.errors``.)"""
    module = importlib.import_module(name)
    assert defined_names(module) - set(module.__all__) == set()
