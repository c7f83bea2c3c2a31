"""Avro in the Confluent wire format (0x00, 4-byte big-endian schema id, Avro body).

fastavro is fast but trusts its input: it accepts negative union and enum indexes and trailing
bytes, allocates gigabytes for a tiny array<null> with a huge count, overflows the C stack on
deep recursion, and raises OverflowError or ValueError on dates and timestamps outside Python's
range (DESIGN.md section 3). So every body is first walked by a small bounded checker that reads
exactly what the schema says, within the limits, with every logical type (date, time, timestamp,
decimal, uuid) in range, and only then handed to fastavro. Whatever fastavro still raises is a
rejection (``undecodable``), never an exception that escapes the codec.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Any

import fastavro

from hub.adapters.avro_json import record_from_json
from hub.errors import DecodeError
from hub.ports.codec import Decoded, Record
from hub.wire.catalog import Catalog
from hub.wire.limits import DecodeLimits

MAGIC = 0
HEADER = 5

_PRIMITIVE_FIXED = {"float": 4, "double": 8}
_MAX_VARINT = {"int": 5, "long": 10}
_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_EPOCH = date(1970, 1, 1)
_MS_PER_DAY = 86_400_000


class AvroCodec:
    """Encodes and decodes catalog schemas; decoding is bounded by ``limits``."""

    def __init__(self, catalog: Catalog, limits: DecodeLimits | None = None) -> None:
        self._catalog = catalog
        self._limits = limits or DecodeLimits()
        # Parsed with fastavro's "already parsed" marker, so its reader and writer take the
        # schema as it is instead of parsing it again on every call (a third of their time).
        self._parsed: dict[int, Any] = {}
        for entry in catalog.entries:
            self._parsed[entry.id] = fastavro.parse_schema(entry.schema)
        # The wire header and parsed schema of the newest version of each name encoded so far.
        self._writers: dict[str, tuple[bytes, Any]] = {}

    def encode(self, name: str, record: Mapping[str, object]) -> bytes:
        header, parsed = self._writers.get(name) or self._writer(name)
        out = io.BytesIO()
        out.write(header)
        fastavro.schemaless_writer(out, parsed, record)
        return out.getvalue()

    def _writer(self, name: str) -> tuple[bytes, Any]:
        entry = self._catalog.latest(name)  # ConfigError for a name not in the catalog
        writer = self._writers[name] = (
            bytes([MAGIC]) + entry.id.to_bytes(4, "big"),
            self._parsed[entry.id],
        )
        return writer

    def from_json(self, name: str, data: object) -> Record:
        """``data`` (parsed JSON) as a record of the newest ``name`` schema, ready to encode;
        PayloadError naming the first field that does not fit (see hub.adapters.avro_json)."""
        return record_from_json(self._catalog.latest(name).schema, data)

    def decode(self, value: bytes | None) -> Decoded:
        """The record in ``value``, or DecodeError/UnknownSchemaError (both RejectedEvent)."""
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
        try:
            record = fastavro.schemaless_reader(io.BytesIO(body), self._parsed[entry.id], None)
        except Exception as exc:
            # The checker let through something fastavro cannot read: still this record's fault.
            # The exception's text may quote the value, so only its class is kept.
            raise DecodeError(
                f"the body passed the checks but could not be decoded ({type(exc).__name__}); "
                f"check it against schema {entry.name} v{entry.version}",
                "undecodable",
            ) from None
        if not isinstance(record, dict):
            raise DecodeError("the body is not an Avro record")
        return Decoded(entry, record)


def check_body(schema: Any, body: memoryview | bytes, limits: DecodeLimits) -> None:
    """Raise DecodeError unless ``body`` is exactly one well-formed datum of ``schema``."""
    walker = _Walker(bytes(body), limits)
    try:
        walker.walk(schema, depth=0, namespace=None)
    except DecodeError:
        raise
    except Exception as exc:  # a bug of the checker must not become a crash of its consumer
        raise DecodeError(
            f"the body could not be checked ({type(exc).__name__})", "undecodable"
        ) from None
    if walker.pos != len(walker.buf):
        raise DecodeError(
            f"{len(walker.buf) - walker.pos} bytes follow the end of the record", "trailing_bytes"
        )


@lru_cache(maxsize=8)
def _windows(limits: DecodeLimits) -> dict[str, tuple[int, int, str]]:
    """(lowest, highest, what the field must be) of each bounded int/long logical type, keyed
    as fastavro keys its logical readers ("int-date")."""
    first = (limits.min_date - _EPOCH).days
    last = (limits.max_date - _EPOCH).days
    span = (
        f"lie within {limits.min_date} to {limits.max_date}, the window the hub accepts "
        "(TELLONCE_LIMITS__MIN_DATE / __MAX_DATE)"
    )
    windows = {"int-date": (first, last, f"a date must {span}")}
    for unit, per_ms in (("millis", 1), ("micros", 1000)):
        low, high = first * _MS_PER_DAY * per_ms, (last + 1) * _MS_PER_DAY * per_ms - 1
        for kind in ("timestamp", "local-timestamp"):
            windows[f"long-{kind}-{unit}"] = (low, high, f"a timestamp must {span}")
    windows["int-time-millis"] = (0, _MS_PER_DAY - 1, "a time of day must lie within 0 to 24 h")
    windows["long-time-micros"] = (
        0,
        _MS_PER_DAY * 1000 - 1,
        "a time of day must lie within 0 to 24 h",
    )
    return windows


class _Walker:
    def __init__(self, buf: bytes, limits: DecodeLimits) -> None:
        self.buf = buf
        self.pos = 0
        self.limits = limits
        self.windows = _windows(limits)
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
                value = (raw >> 1) ^ -(raw & 1)
                low, high = _RANGE[kind]
                if not low <= value <= high:
                    raise DecodeError(f"an {kind} does not fit in its Avro type", "malformed_avro")
                return value
            shift += 7
        raise DecodeError(f"an {kind} is encoded in too many bytes", "malformed_avro")

    def length(self, what: str) -> int:
        n = self.varint()
        if n < 0:
            raise DecodeError(f"negative {what} length", "malformed_avro")
        self._need(n)
        return n

    # -- schema walk --------------------------------------------------------------------------

    def walk(self, schema: Any, depth: int, namespace: str | None, path: str = "") -> None:
        if depth > self.limits.max_depth:
            raise DecodeError(f"nesting deeper than {self.limits.max_depth}", "too_deep")
        if isinstance(schema, list):
            index = self.varint()
            if not 0 <= index < len(schema):
                raise DecodeError(f"union branch {index} does not exist", "malformed_avro")
            self.walk(schema[index], depth + 1, namespace, path)
            return
        if isinstance(schema, str):
            self._walk_named_or_primitive(schema, depth, namespace, path)
            return
        kind = schema["type"]
        if kind in ("record", "error"):
            ns = self._register(schema, namespace)
            for field in schema["fields"]:
                name = field["name"]
                self.walk(field["type"], depth + 1, ns, f"{path}.{name}" if path else name)
        elif kind == "enum":
            self._register(schema, namespace)
            index = self.varint("int")
            if not 0 <= index < len(schema["symbols"]):
                raise DecodeError(f"enum index {index} does not exist", "malformed_avro")
        elif kind == "fixed":
            self._register(schema, namespace)
            self._need(schema["size"])
            start = self.pos
            self.pos += schema["size"]
            if schema.get("logicalType") == "decimal":
                self._decimal(schema, self.buf[start : self.pos], path)
        elif kind == "array":
            self._blocks(lambda: self.walk(schema["items"], depth + 1, namespace, f"{path}[]"))
        elif kind == "map":

            def entry() -> None:
                self._string(path)
                self.walk(schema["values"], depth + 1, namespace, f"{path}{{}}")

            self._blocks(entry)
        elif "logicalType" in schema:
            self._logical(kind, schema, depth, namespace, path)
        else:
            self._walk_named_or_primitive(kind, depth, namespace, path)

    def _logical(
        self, kind: Any, schema: dict[str, Any], depth: int, namespace: str | None, path: str
    ) -> None:
        """A primitive with a logical type, read and range-checked as fastavro would convert it
        (fastavro ignores a logical type on a base type it does not fit)."""
        key = f"{kind}-{schema['logicalType']}"
        where = path or "the value"
        if key in self.windows:
            low, high, rule = self.windows[key]
            if not low <= self.varint(kind) <= high:
                raise DecodeError(f"{where}: {rule}", "out_of_range")
        elif key == "bytes-decimal":
            n = self.length("bytes")
            start = self.pos
            self.pos += n
            self._decimal(schema, self.buf[start : self.pos], path)
        elif key == "string-uuid":
            try:
                uuid.UUID(self._string(path))
            except ValueError:
                raise DecodeError(f"{where}: must be a UUID", "malformed_avro") from None
        else:
            self._walk_named_or_primitive(kind, depth, namespace, path)

    def _decimal(self, schema: dict[str, Any], raw: bytes, path: str) -> None:
        precision = schema.get("precision")
        if not isinstance(precision, int) or precision < 1:
            raise DecodeError(
                f"{path or 'the value'}: the schema gives no precision", "undecodable"
            )
        if abs(int.from_bytes(raw, "big", signed=True)) >= 10**precision:
            raise DecodeError(
                f"{path or 'the value'}: a decimal must have at most {precision} digits",
                "out_of_range",
            )

    def _walk_named_or_primitive(
        self, name: str, depth: int, namespace: str | None, path: str
    ) -> None:
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
            self._string(path)
        else:
            full = name if "." in name or namespace is None else f"{namespace}.{name}"
            target = self.named.get(full, self.named.get(name))
            if target is None:
                raise DecodeError(f"schema refers to unknown type {name}", "malformed_avro")
            self.walk(target, depth + 1, namespace, path)

    def _string(self, path: str) -> str:
        n = self.length("string")
        raw = self.buf[self.pos : self.pos + n]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("a string is not valid UTF-8", "malformed_avro") from None
        if b"\x00" in raw:
            # Valid Avro, but no field has a use for it and PostgreSQL cannot store it: letting
            # it through would fail the whole batch's transaction on every retry.
            raise DecodeError(
                f"{path or 'a string'}: holds the character U+0000 (NUL); remove it",
                "invalid_text",
            )
        self.pos += n
        return text

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
