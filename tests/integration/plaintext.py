"""Looking for canary values where they must not be: in text, in bytes, and in a `pg_dump`.

A value can hide in a dump without being written as text: a `bytea` column is dumped in hex, a
header kept in a JSON column as base64. So each canary is looked for in every form a store or a
log could give it: as it is, in hex, and in base64 at each of the three byte alignments.
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

PG_DUMP = "/usr/bin/pg_dump"
NULL = "\\N"  # how COPY data writes a NULL


def forms(canary: str) -> tuple[str, ...]:
    """``canary`` as text, as hex, and as the part of a base64 text that only it decides,
    whatever the bytes before it."""
    raw = canary.encode()
    found = [canary, raw.hex()]
    for lead in range(3):
        text = base64.b64encode(b"\0" * lead + raw).decode()
        start = 4 if lead else 0  # the first group mixes the leading bytes in
        end = len(text) - 4 if (lead + len(raw)) % 3 else len(text)  # the last, the padding
        found.append(text[start:end])
    return tuple(found)


def hits(text: str, canaries: Sequence[str]) -> int:
    """How many times any form of any canary occurs in ``text``."""
    return sum(text.count(form) for canary in canaries for form in forms(canary))


def byte_hits(data: bytes | None, canaries: Sequence[str]) -> int:
    return hits(data.decode("latin-1"), canaries) if data else 0


@dataclass(frozen=True)
class Dump:
    """A plain-format `pg_dump` of one database, and its COPY data by table."""

    text: str
    tables: dict[str, list[dict[str, str]]]

    def hits_by_table(self, canaries: Sequence[str]) -> dict[str, int]:
        """Canary hits per table (only tables with hits), plus ``<schema>`` for the rest."""
        counted: Counter[str] = Counter()
        for table, rows in self.tables.items():
            for row in rows:
                counted[table] += hits("\t".join(row.values()), canaries)
        counted["<schema>"] = hits(_without_copy_data(self.text), canaries)
        return {table: n for table, n in counted.items() if n}


_COPY = re.compile(r"^COPY (?:\w+\.)?(\w+) \(([^)]*)\) FROM stdin;$")


def pg_dump(server: str, database: str) -> Dump:
    """`pg_dump -h HOST -U USER DATABASE` in plain format, parsed."""
    host = server.split("@", 1)[1].split(":", 1)[0]
    user = server.split("://", 1)[1].split("@", 1)[0]
    done = subprocess.run(
        [PG_DUMP, "-h", host, "-U", user, database],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return Dump(done.stdout, _copy_data(done.stdout))


def _copy_data(text: str) -> dict[str, list[dict[str, str]]]:
    tables: dict[str, list[dict[str, str]]] = {}
    lines = iter(text.splitlines())
    for line in lines:
        match = _COPY.match(line)
        if not match:
            continue
        columns = [c.strip().strip('"') for c in match.group(2).split(",")]
        rows = tables.setdefault(match.group(1), [])
        for row in lines:
            if row == "\\.":
                break
            rows.append(dict(zip(columns, row.split("\t"), strict=True)))
    return tables


def _without_copy_data(text: str) -> str:
    kept, inside = [], False
    for line in text.splitlines():
        if inside:
            inside = line != "\\."
        elif _COPY.match(line):
            inside = True
        else:
            kept.append(line)
    return "\n".join(kept)


def bytea(value: str) -> bytes:
    """The bytes of a `bytea` value as the dump writes it (``\\\\x`` then hex)."""
    assert value.startswith("\\\\x"), value[:8]
    return bytes.fromhex(value[3:])
