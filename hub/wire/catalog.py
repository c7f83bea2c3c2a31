"""The schema catalog: which Avro schema has which stable Confluent schema id.

``schemas/catalog.json`` lists every (full name, version) with its id, its file and, once the
version is published, the fingerprint of its canonical form. Ids are never reused; a published
version never changes (a change is a new version, checked for compatibility).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hub.errors import ConfigError, UnknownSchemaError


@dataclass(frozen=True, slots=True)
class SchemaEntry:
    id: int
    name: str  # full Avro name, e.g. ca.tellonce.lifeevents.AddressChanged
    version: int
    file: str
    schema: dict[str, Any]
    fingerprint: str | None  # sha256 of the Parsing Canonical Form; None = not yet published


@dataclass(frozen=True, slots=True)
class Catalog:
    entries: tuple[SchemaEntry, ...]
    compatibility: str

    def by_id(self, schema_id: int) -> SchemaEntry:
        for entry in self.entries:
            if entry.id == schema_id:
                return entry
        raise UnknownSchemaError(
            f"schema id {schema_id} is not in the catalog; encode with an id listed by "
            "'tellonce schemas list'"
        )

    def latest(self, name: str) -> SchemaEntry:
        versions = [e for e in self.entries if e.name == name]
        if not versions:
            raise ConfigError(f"no schema named {name!r} in the catalog")
        return max(versions, key=lambda e: e.version)

    def versions(self, name: str) -> list[SchemaEntry]:
        return sorted((e for e in self.entries if e.name == name), key=lambda e: e.version)

    @property
    def names(self) -> list[str]:
        return sorted({e.name for e in self.entries})


def schemas_dir(path: Path | None = None) -> Path:
    """The folder holding catalog.json and the .avsc files (the shipped one by default)."""
    if path is not None:
        return path
    return Path(str(resources.files("schemas")))


def load_catalog(path: Path | None = None) -> Catalog:
    folder = schemas_dir(path)
    try:
        raw = json.loads((folder / "catalog.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no catalog.json in {folder}; point TELLONCE_SCHEMAS_DIR at it"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{folder / 'catalog.json'} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("schemas", []), list):
        raise ConfigError(
            f'{folder / "catalog.json"} must be an object whose "schemas" is a list of '
            '{"id", "name", "version", "file"} entries; see the shipped schemas/catalog.json'
        )
    entries = []
    ids: set[int] = set()
    for item in raw.get("schemas", []):
        try:
            schema_id, name, version, file = item["id"], item["name"], item["version"], item["file"]
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"catalog entry {item!r} lacks {exc}") from None
        if schema_id in ids:
            raise ConfigError(f"schema id {schema_id} is used twice in the catalog")
        ids.add(schema_id)
        try:
            schema = json.loads((folder / file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(
                f"cannot read schema file {file} of {name} v{version}: {exc}"
            ) from exc
        entries.append(SchemaEntry(schema_id, name, version, file, schema, item.get("fingerprint")))
    return Catalog(tuple(entries), raw.get("compatibility", "FULL_TRANSITIVE"))
