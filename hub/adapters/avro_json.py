"""Avro records from their JSON form, checked field by field against the schema.

What a publisher types (``tellonce publish --json``) is JSON: dates as ``2026-11-01``, times as
RFC 3339 with a zone, a union as its plain value or null (not Avro's ``{"type": value}``
wrapping). ``record_from_json`` turns that into the Python values fastavro encodes, and refuses
what fastavro would refuse with an error that names no field, or would silently change: a string
where an array is expected is encoded as an array of characters, and an unknown field is
dropped. Every refusal is a ``PayloadError`` naming the field (``new_address.lines[0]``) and the
rule, never the value: it may be personal data.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from hub.errors import PayloadError

_INT = (-(2**31), 2**31 - 1)
_LONG = (-(2**63), 2**63 - 1)
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_TIMESTAMPS = frozenset({"timestamp-millis", "timestamp-micros"})


def record_from_json(schema: dict[str, Any], data: Any) -> dict[str, Any]:
    """``data`` (parsed JSON) as a record of ``schema`` ready for fastavro, or PayloadError."""
    converter = _FromJson(schema)
    if not isinstance(data, dict):
        raise PayloadError(
            f"the payload must be a JSON object (an Avro record {schema['name']}), "
            f"not {_json_kind(data)}",
            field="",
        )
    record = converter.convert(schema, data, "", schema.get("namespace"))
    assert isinstance(record, dict)
    return record


class _FromJson:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.named: dict[str, dict[str, Any]] = {}
        for full, named in _named_types(schema, None):
            self.named.setdefault(full, named)

    def convert(self, schema: Any, value: Any, path: str, namespace: str | None) -> Any:
        if isinstance(schema, list):
            return self._union(schema, value, path, namespace)
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return _primitive(schema, value, path)
            return self.convert(self._lookup(schema, namespace), value, path, namespace)
        kind = schema["type"]
        logical = schema.get("logicalType")
        if kind == "int" and logical == "date":
            return _date(value, path)
        if kind == "long" and logical in _TIMESTAMPS:
            return _timestamp(value, path)
        if kind in ("record", "error"):
            return self._record(schema, value, path, namespace)
        if kind == "enum":
            if not isinstance(value, str) or value not in schema["symbols"]:
                raise _misfit(path, self.describe(schema, namespace))
            return value
        if kind == "fixed":
            return _bytes(value, path, size=schema["size"])
        if kind == "array":
            if not isinstance(value, list):
                raise _misfit(path, self.describe(schema, namespace))
            items = schema["items"]
            return [self.convert(items, v, f"{path}[{i}]", namespace) for i, v in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                raise _misfit(path, self.describe(schema, namespace))
            values = schema["values"]
            return {k: self.convert(values, v, _join(path, k), namespace) for k, v in value.items()}
        return self.convert(kind, value, path, namespace)  # {"type": "string"} and the like

    def _record(
        self, schema: dict[str, Any], value: Any, path: str, namespace: str | None
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _misfit(path, self.describe(schema, namespace))
        namespace = _namespace_of(schema, namespace)
        names = [field["name"] for field in schema["fields"]]
        unknown = [key for key in value if key not in names]
        if unknown:
            raise PayloadError(
                f"{_join(path, str(unknown[0]))}: is not a field of {schema['name']}; "
                f"its fields are {', '.join(names)}",
                field=_join(path, str(unknown[0])),
            )
        record = {}
        for field in schema["fields"]:
            name, where = field["name"], _join(path, field["name"])
            if name in value:
                record[name] = self.convert(field["type"], value[name], where, namespace)
            elif "default" in field:
                record[name] = self.convert(field["type"], field["default"], where, namespace)
            else:
                raise PayloadError(
                    f"{where}: is required; give {self.describe(field['type'], namespace)}",
                    field=where,
                )
        return record

    def _union(self, branches: list[Any], value: Any, path: str, namespace: str | None) -> Any:
        if value is None and "null" in branches:
            return None
        others = [b for b in branches if b != "null"]
        if len(others) == 1:  # the usual optional field: say what is wrong inside it
            try:
                return self.convert(others[0], value, path, namespace)
            except PayloadError as exc:
                if exc.field != path or "null" not in branches:
                    raise
        else:
            for branch in others:
                try:
                    return self.convert(branch, value, path, namespace)
                except PayloadError:
                    continue
        raise _misfit(path, " or ".join(self.describe(b, namespace) for b in branches))

    def _lookup(self, name: str, namespace: str | None) -> dict[str, Any]:
        full = name if "." in name or not namespace else f"{namespace}.{name}"
        found = self.named.get(full) or self.named.get(name)
        if found is None:
            raise PayloadError(f"the schema refers to an unknown type {name}")
        return found

    def describe(self, schema: Any, namespace: str | None) -> str:
        """What a value of ``schema`` looks like in JSON, for messages."""
        if isinstance(schema, list):
            return " or ".join(self.describe(b, namespace) for b in schema)
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return _DESCRIPTIONS[schema]
            return self.describe(self._lookup(schema, namespace), namespace)
        kind, logical = schema["type"], schema.get("logicalType")
        if kind == "int" and logical == "date":
            return "a date like 2026-11-01"
        if kind == "long" and logical in _TIMESTAMPS:
            return "a time with a zone like 2026-11-01T09:30:00Z"
        if kind in ("record", "error"):
            return f"an object ({schema['name']}: {', '.join(f['name'] for f in schema['fields'])})"
        if kind == "enum":
            return f"one of {', '.join(schema['symbols'])}"
        if kind == "fixed":
            return f"text of exactly {schema['size']} bytes"
        if kind == "array":
            return f"a list of {_plural(self.describe(schema['items'], namespace))}"
        if kind == "map":
            return f"an object whose values are {self.describe(schema['values'], namespace)}"
        return self.describe(kind, namespace)


_DESCRIPTIONS = {
    "null": "null",
    "boolean": "true or false",
    "int": f"a whole number from {_INT[0]} to {_INT[1]}",
    "long": f"a whole number from {_LONG[0]} to {_LONG[1]}",
    "float": "a number",
    "double": "a number",
    "bytes": "text (bytes as ISO-8859-1 characters)",
    "string": "a string",
}


def _primitive(kind: str, value: Any, path: str) -> Any:
    if kind == "null":
        ok = value is None
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind in ("int", "long"):
        low, high = _INT if kind == "int" else _LONG
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    elif kind in ("float", "double"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "bytes":
        return _bytes(value, path, size=None)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise _misfit(path, _DESCRIPTIONS[kind])
    return value


def _bytes(value: Any, path: str, *, size: int | None) -> bytes:
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str):
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raise _misfit(path, _DESCRIPTIONS["bytes"]) from None
    else:
        raise _misfit(path, _DESCRIPTIONS["bytes"])
    if size is not None and len(raw) != size:
        raise _misfit(path, f"text of exactly {size} bytes")
    return raw


def _date(value: Any, path: str) -> date | int:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and _INT[0] <= value <= _INT[1]:
        return value  # days since 1970-01-01, as Avro's own JSON encoding has it
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _misfit(path, "a date like 2026-11-01")


def _timestamp(value: Any, path: str) -> datetime | int:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and _LONG[0] <= value <= _LONG[1]:
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    raise _misfit(path, "a time with a zone like 2026-11-01T09:30:00Z")


def _misfit(path: str, expected: str) -> PayloadError:
    where = path or "the payload"
    return PayloadError(f"{where}: must be {expected}", field=path)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _plural(description: str) -> str:
    # "a string" -> "strings", "a date like ..." -> "dates like ..."; other phrases unchanged
    for article in ("a ", "an "):
        if description.startswith(article):
            head, _, rest = description.removeprefix(article).partition(" ")
            return f"{head}s {rest}".rstrip()
    return description


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "true or false" if isinstance(value, bool) else "a number"


def _namespace_of(schema: dict[str, Any], namespace: str | None) -> str | None:
    name = schema["name"]
    if "." in name:
        return str(name.rsplit(".", 1)[0])
    return schema.get("namespace", namespace)


def _named_types(schema: Any, namespace: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named type (record, enum, fixed) defined anywhere in ``schema``, by full name."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _named_types(branch, namespace)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        ns = _namespace_of(schema, namespace)
        name = schema["name"]
        yield (name if "." in name or not ns else f"{ns}.{name}"), schema
        for field in schema.get("fields", ()):
            yield from _named_types(field["type"], ns)
    elif kind == "array":
        yield from _named_types(schema["items"], namespace)
    elif kind == "map":
        yield from _named_types(schema["values"], namespace)
    elif isinstance(kind, dict | list):
        yield from _named_types(kind, namespace)
