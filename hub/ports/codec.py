"""The codec port: records to bytes and back, in the schemas of the catalog.

``decode`` answers a ``Decoded``: the catalog entry the bytes named and the record as plain
values (``Record``), never ``Any``, so the core narrows each field it reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from hub.errors import DecodeError
from hub.wire.catalog import SchemaEntry

T = TypeVar("T")

Record = dict[str, object]
"""A decoded record: field name to value, typed as its schema says (str, int, bool, None,
datetime, bytes, list, dict). The codec checked the shape; the reader narrows the types."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """One decoded message value: the schema it was written with, and its record."""

    entry: SchemaEntry
    record: Record

    # Typed reads of the record's fields. The codec checked the record against its schema, so
    # a field of another type means the schema is not the one the reader expects: a rejection.

    def text(self, name: str) -> str:
        """Field ``name``, a string."""
        return self._field(name, str, "a string")

    def optional_text(self, name: str) -> str | None:
        """Field ``name``, a string or null (None too when this schema version lacks it)."""
        return None if self.record.get(name) is None else self.text(name)

    def texts(self, name: str) -> list[str]:
        """Field ``name``, an array of strings."""
        items: list[object] = self._field(name, list, "an array")
        if not all(isinstance(item, str) for item in items):
            raise self._mistyped(name, "an array of strings")
        return [str(item) for item in items]

    def moment(self, name: str) -> datetime:
        """Field ``name``, a timestamp."""
        return self._field(name, datetime, "a timestamp")

    def optional_moment(self, name: str) -> datetime | None:
        """Field ``name``, a timestamp or null (None too when this schema version lacks it)."""
        return None if self.record.get(name) is None else self.moment(name)

    def _field(self, name: str, kind: type[T], what: str) -> T:
        value = self.record.get(name)
        if not isinstance(value, kind):
            raise self._mistyped(name, what)
        return value

    def _mistyped(self, name: str, what: str) -> DecodeError:
        return DecodeError(
            f"{name}: must be {what} in schema {self.entry.name} v{self.entry.version}",
            "unexpected_schema",
        )


class Codec(Protocol):
    """Encodes and decodes records of the catalog's schemas (Avro on the wire)."""

    def encode(self, name: str, record: Mapping[str, object]) -> bytes:
        """The wire bytes of ``record`` under the newest schema named ``name``."""

    def decode(self, value: bytes | None) -> Decoded:
        """The record in ``value``, or DecodeError/UnknownSchemaError (both RejectedEvent)."""

    def from_json(self, name: str, data: object) -> Record:
        """A record of schema ``name`` from its JSON form, or PayloadError naming the field."""
