"""Avro in the Confluent wire format (0x00, 4-byte big-endian schema id, Avro body).

fastavro is fast but trusts its input: it accepts negative union and enum indexes and trailing
bytes, allocates gigabytes for a tiny array<null> with a huge count, and overflows the C stack on
deep recursion (DESIGN.md section 3). So every body is first walked by a small bounded checker
that reads exactly what the schema says, within the limits, and only then handed to fastavro.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import fastavro

from hub.adapters.avro_json import record_from_json
from hub.catalog import Catalog, SchemaEntry
from hub.errors import DecodeError
from hub.limits import DecodeLimits

MAGIC = 0
HEADER = 5

_PRIMITIVE_FIXED = {"float": 4, "double": 8}
_MAX_VARINT = {"int": 5, "long": 10}


@dataclass(frozen=True, slots=True)
class Decoded:
    entry: SchemaEntry
    record: dict[str, Any]


class AvroCodec:
    """Encodes and decodes catalog schemas; decoding is bounded by ``limits``."""

    def __init__(self, catalog: Catalog, limits: DecodeLimits | None = None) -> None:
        self._catalog = catalog
        self._limits = limits or DecodeLimits()
        self._parsed: dict[int, Any] = {}
        for entry in catalog.entries:
            self._parsed[entry.id] = fastavro.parse_schema(entry.schema, _write_hint=False)

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        entry = self._catalog.latest(name)
        out = io.BytesIO()
        out.write(bytes([MAGIC]))
        out.write(entry.id.to_bytes(4, "big"))
        fastavro.schemaless_writer(out, self._parsed[entry.id], record)
        return out.getvalue()

    def from_json(self, name: str, data: Any) -> dict[str, Any]:
        """``data`` (parsed JSON) as a record of the newest ``name`` schema, ready to encode;
        PayloadError naming the first field that does not fit (see hub.adapters.avro_json)."""
        return record_from_json(self._catalog.latest(name).schema, data)

    def decode(self, value: bytes | None) -> Decoded:
        if value is None:
            raise DecodeError("the message has no value (tombstone)", reason="empty_value")
        if len(value) > self._limits.max_bytes:
            raise DecodeError(
                f"value is {len(value)} bytes, above the {self._limits.max_bytes}-byte limit",
                reason="too_large",
            )
        if len(value) < HEADER or value[0] != MAGIC:
            raise DecodeError(
                "value is not in the Confluent wire format (byte 0x00, 4-byte schema id, Avro)",
                reason="bad_framing",
            )
        entry = self._catalog.by_id(int.from_bytes(value[1:HEADER], "big"))
        body = memoryview(value)[HEADER:]
        check_body(entry.schema, body, self._limits)
        record = fastavro.schemaless_reader(io.BytesIO(body), self._parsed[entry.id], None)
        if not isinstance(record, dict):
            raise DecodeError("the body is not an Avro record")
        return Decoded(entry, record)


def check_body(schema: Any, body: memoryview | bytes, limits: DecodeLimits) -> None:
    """Raise DecodeError unless ``body`` is exactly one well-formed datum of ``schema``."""
    walker = _Walker(bytes(body), limits)
    walker.walk(schema, depth=0, namespace=None)
    if walker.pos != len(walker.buf):
        raise DecodeError(
            f"{len(walker.buf) - walker.pos} bytes follow the end of the record", "trailing_bytes"
        )


class _Walker:
    def __init__(self, buf: bytes, limits: DecodeLimits) -> None:
        self.buf = buf
        self.pos = 0
        self.limits = limits
        self.items = 0
        self.named: dict[str, Any] = {}

    # -- primitive readers -------------------------------------------------------------------

    def _need(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise DecodeError("the body ends before the record does", "truncated")

    def varint(self, kind: str = "long") -> int:
        shift = 0
        raw = 0
        for _ in range(_MAX_VARINT[kind]):
            self._need(1)
            byte = self.buf[self.pos]
            self.pos += 1
            raw |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (raw >> 1) ^ -(raw & 1)
            shift += 7
        raise DecodeError(f"an {kind} is encoded in too many bytes", "malformed_avro")

    def length(self, what: str) -> int:
        n = self.varint()
        if n < 0:
            raise DecodeError(f"negative {what} length", "malformed_avro")
        self._need(n)
        return n

    # -- schema walk --------------------------------------------------------------------------

    def walk(self, schema: Any, depth: int, namespace: str | None) -> None:
        if depth > self.limits.max_depth:
            raise DecodeError(f"nesting deeper than {self.limits.max_depth}", "too_deep")
        if isinstance(schema, list):
            index = self.varint()
            if not 0 <= index < len(schema):
                raise DecodeError(f"union branch {index} does not exist", "malformed_avro")
            self.walk(schema[index], depth + 1, namespace)
            return
        if isinstance(schema, str):
            self._walk_named_or_primitive(schema, depth, namespace)
            return
        kind = schema["type"]
        if kind in ("record", "error"):
            ns = self._register(schema, namespace)
            for field in schema["fields"]:
                self.walk(field["type"], depth + 1, ns)
        elif kind == "enum":
            self._register(schema, namespace)
            index = self.varint("int")
            if not 0 <= index < len(schema["symbols"]):
                raise DecodeError(f"enum index {index} does not exist", "malformed_avro")
        elif kind == "fixed":
            self._register(schema, namespace)
            self._need(schema["size"])
            self.pos += schema["size"]
        elif kind == "array":
            self._blocks(lambda: self.walk(schema["items"], depth + 1, namespace))
        elif kind == "map":

            def entry() -> None:
                self._string()
                self.walk(schema["values"], depth + 1, namespace)

            self._blocks(entry)
        else:
            self._walk_named_or_primitive(kind, depth, namespace)

    def _walk_named_or_primitive(self, name: str, depth: int, namespace: str | None) -> None:
        if name == "null":
            return
        if name == "boolean":
            self._need(1)
            if self.buf[self.pos] > 1:
                raise DecodeError("a boolean is neither 0 nor 1", "malformed_avro")
            self.pos += 1
        elif name in ("int", "long"):
            self.varint(name)
        elif name in _PRIMITIVE_FIXED:
            self._need(_PRIMITIVE_FIXED[name])
            self.pos += _PRIMITIVE_FIXED[name]
        elif name == "bytes":
            self.pos += self.length("bytes")
        elif name == "string":
            self._string()
        else:
            full = name if "." in name or namespace is None else f"{namespace}.{name}"
            target = self.named.get(full, self.named.get(name))
            if target is None:
                raise DecodeError(f"schema refers to unknown type {name}", "malformed_avro")
            self.walk(target, depth + 1, namespace)

    def _string(self) -> None:
        n = self.length("string")
        try:
            self.buf[self.pos : self.pos + n].decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("a string is not valid UTF-8", "malformed_avro") from None
        self.pos += n

    def _blocks(self, read_item: Any) -> None:
        while True:
            count = self.varint()
            if count == 0:
                return
            if count < 0:
                count = -count
                self.length("block")  # byte size of the block; we walk the items anyway
            self.items += count
            if self.items > self.limits.max_items:
                raise DecodeError(
                    f"more than {self.limits.max_items} array or map items", "too_many_items"
                )
            for _ in range(count):
                read_item()

    def _register(self, schema: dict[str, Any], namespace: str | None) -> str | None:
        name = schema["name"]
        ns = schema.get("namespace", namespace)
        full = name if "." in name or not ns else f"{ns}.{name}"
        self.named.setdefault(full, schema)
        return full.rsplit(".", 1)[0] if "." in full else ns
