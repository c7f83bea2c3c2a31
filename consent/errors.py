"""The consent domain's own error: a change the rules refuse.

``consent`` imports nothing from the hub, so it cannot raise the hub's errors; the hub's consent
use-cases translate this one into ``hub.errors.ConflictError`` at their boundary. The message is
meant for the person who asked for the change: what was refused and what to do.
"""

from __future__ import annotations


class RuleViolation(ValueError):
    """The requested consent change contradicts the recorded history (never retriable)."""

    retriable = False
