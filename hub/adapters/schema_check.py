"""`tellonce schemas check`: published schemas never change; new versions stay compatible.

Fingerprints are SHA-256 over the Avro Parsing Canonical Form (fastavro). Compatibility uses the
reader/writer checker of the Apache Avro library, the reference implementation of the rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from hub.wire.catalog import Catalog, load_catalog, schemas_dir


def schema_fingerprint(schema: dict[str, Any]) -> str:
    canonical = to_parsing_canonical_form(parse_schema(schema, _write_hint=False))
    return str(fingerprint(canonical, "SHA-256"))


@dataclass(frozen=True, slots=True)
class Finding:
    name: str
    version: int
    problem: str


def _compatible(reader: dict[str, Any], writer: dict[str, Any]) -> list[str]:
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer))
    )
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return sorted(result.messages) or ["incompatible"]


def check_catalog(catalog: Catalog) -> list[Finding]:
    """Every breach of the catalog's promises; an empty list means the catalog is sound."""
    findings: list[Finding] = []
    for entry in catalog.entries:
        if entry.fingerprint is not None and schema_fingerprint(entry.schema) != entry.fingerprint:
            findings.append(
                Finding(
                    entry.name,
                    entry.version,
                    f"published schema changed ({entry.file}); published versions are "
                    f"immutable: restore it and add version {entry.version + 1} instead",
                )
            )
    transitive = catalog.compatibility.endswith("_TRANSITIVE")
    backward = catalog.compatibility.startswith(("BACKWARD", "FULL"))
    forward = catalog.compatibility.startswith(("FORWARD", "FULL"))
    for name in catalog.names:
        versions = catalog.versions(name)
        for index, newer in enumerate(versions[1:], start=1):
            older_ones = versions[:index] if transitive else [versions[index - 1]]
            for older in older_ones:
                problems = []
                if backward:
                    problems += _compatible(reader=newer.schema, writer=older.schema)
                if forward:
                    problems += _compatible(reader=older.schema, writer=newer.schema)
                if problems:
                    findings.append(
                        Finding(
                            name,
                            newer.version,
                            f"not {catalog.compatibility} compatible with v{older.version}: "
                            + "; ".join(problems[:3]),
                        )
                    )
    return findings


def record_fingerprints(folder: Path | None = None) -> list[str]:
    """Mark every unpublished version as published by writing its fingerprint."""
    path = schemas_dir(folder) / "catalog.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    catalog = load_catalog(folder)
    published = []
    for item, entry in zip(raw["schemas"], catalog.entries, strict=True):
        if item.get("fingerprint") is None:
            item["fingerprint"] = schema_fingerprint(entry.schema)
            published.append(f"{entry.name} v{entry.version}")
    path.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    return published
