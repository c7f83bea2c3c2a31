"""Consent and identity-link domain: pure rules, no I/O.

Identity links map a program's own client id to a hub-internal person id that never leaves the
hub. Consents are append-only, hash-linked revisions per (person, recipient, event type).

May import: the standard library only; nothing from ``hub`` (its errors are its own,
``consent.errors``) and no infrastructure library (both checked by import-linter).
"""

from consent.errors import RuleViolation
from consent.model import ConsentRevision, ConsentState, Evidence, IdentityLink
from consent.rules import ConsentDecision, decide_disclosure, next_revision

__all__ = [
    "ConsentDecision",
    "ConsentRevision",
    "ConsentState",
    "Evidence",
    "IdentityLink",
    "RuleViolation",
    "decide_disclosure",
    "next_revision",
]
