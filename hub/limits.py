"""Bounds applied to untrusted bytes before and during decoding."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    # An inbound life event is a few hundred bytes; 64 KiB leaves room without inviting abuse.
    max_bytes: int = 64 * 1024
    # Our schemas nest at most 4 deep; recursion far deeper crashes fastavro (DESIGN.md 3).
    max_depth: int = 16
    # Total array/map items across a message; a huge count in a few bytes must not allocate.
    max_items: int = 1_000
