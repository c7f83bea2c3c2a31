"""The public keys a program signs with, as the directory lists them (README, "Signed life
events"): Ed25519, each with its id and the time it is valid from (and until, once retired).

Several keys at once is how a program rotates: list the new key, let its publishers switch,
then give the old one a ``valid_to`` (or remove it: a record naming it is then ``unknown_key``).
A key id is ``ed25519:`` and the first 16 hex digits of the SHA-256 of the raw 32-byte key, the
same form as the hub's own audit key; the directory refuses an id that does not match its key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

KEY_ID_PREFIX = "ed25519:"
PUBLIC_KEY_BYTES = 32


def key_id_of(public_key: bytes) -> str:
    """The id of a raw 32-byte Ed25519 public key."""
    return KEY_ID_PREFIX + hashlib.sha256(public_key).hexdigest()[:16]


def key_by_id(keys: Iterable[ProgramKey], key_id: str) -> ProgramKey | None:
    """The listed key of that id (a program's, or the hub's), None when none is."""
    return next((k for k in keys if k.id == key_id), None)


class ProgramKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="ed25519: and 16 hex digits of the SHA-256 of the raw key.")
    public_key: str = Field(description="The raw 32-byte Ed25519 public key, in base64.")
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        try:
            raw = base64.b64decode(self.public_key, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"key {self.id}: public_key is not base64") from None
        if len(raw) != PUBLIC_KEY_BYTES:
            raise ValueError(
                f"key {self.id}: public_key must be the raw 32-byte Ed25519 key in base64 "
                "('tellonce keys new' prints it)"
            )
        if key_id_of(raw) != self.id:
            raise ValueError(f"key id {self.id} does not match its public_key ({key_id_of(raw)})")
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError(f"key {self.id}: valid_to must come after valid_from")
        return self

    def public_bytes(self) -> bytes:
        return base64.b64decode(self.public_key)

    def valid_at(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)

    def validity(self) -> str:
        until = f"until {self.valid_to.isoformat()}" if self.valid_to else "with no end"
        return f"from {self.valid_from.isoformat()} {until}"
