"""What signed life events cost, for ``hub_bench.py --parts signatures``.

The hub's side is measured by running it twice on the same events, unsigned with signatures
not required and signed with them required; this module supplies what the signed run needs (a
publisher key and a directory file listing it, for the worker processes) and the publisher's
and verifier's side measured in this process: ``RecordKey.sign(event_digest(...))`` per event,
as ``tellonce publish --key`` signs, and ``verify_ed25519`` of each signature, as the hub's
check ends.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from hub.adapters.record_keys import RecordKey, verify_ed25519
from hub.config.directory import load_directory
from hub.wire.signatures import event_digest

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def publisher_key() -> RecordKey:
    """A key for the bench's publisher, held in memory for one bench run (as the demo's)."""
    return RecordKey.generate()


def signed_directory(key: RecordKey, program_id: str, path: Path) -> Path:
    """Write the shipped directory with ``key`` listed for ``program_id`` to ``path``, for the
    worker processes (``TELLONCE_DIRECTORY_PATH``); checked by loading it back."""
    shipped = resources.files("hub.config").joinpath("resources/directory.toml")
    lines = shipped.read_text("utf-8").splitlines()
    start = lines.index(f'id = "{program_id}"')
    end = next((i for i in range(start, len(lines)) if lines[i] == "[[programs]]"), len(lines))
    # Valid from a minute ago: the hub checks the key against its own clock at each event.
    entry = key.directory_entry(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1))
    block = [
        "[[programs.keys]]",  # after the program's table: TOML adds it to that program
        f'id = "{entry.id}"',
        f'public_key = "{entry.public_key}"',
        f"valid_from = {entry.valid_from.isoformat().replace('+00:00', 'Z')}",
        "",
    ]
    path.write_text("\n".join([*lines[:end], *block, *lines[end:]]) + "\n", encoding="utf-8")
    listed = load_directory(path).program(program_id).key(key.key_id)
    if listed is None:
        raise RuntimeError(f"{path}: the bench's key did not land on program {program_id}")
    return path


def per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def sign_and_verify(records: Sequence[Record], key: RecordKey) -> dict[str, float]:
    """One pass over ``records``: each digested and signed as a publisher does, then each
    signature verified with ``verify_ed25519``; operations per second of each, and of the
    digest alone (what the hub computes before verifying)."""
    started = time.perf_counter()
    digests = [event_digest(k, v, h) for k, v, h in records]
    digest_s = time.perf_counter() - started
    started = time.perf_counter()
    signatures = [key.sign(event_digest(k, v, h)) for k, v, h in records]
    sign_s = time.perf_counter() - started
    started = time.perf_counter()
    good = sum(
        verify_ed25519(key.public_raw, d, s) for d, s in zip(digests, signatures, strict=True)
    )
    verify_s = time.perf_counter() - started
    if good != len(records):
        raise RuntimeError(f"{len(records) - good} of the bench's own signatures did not verify")
    return {
        "digest_per_s": round(per_second(len(records), digest_s), 1),
        "sign_per_s": round(per_second(len(records), sign_s), 1),
        "verify_per_s": round(per_second(len(records), verify_s), 1),
    }


def in_process(records: Sequence[Record], key: RecordKey, rounds: int = 5) -> dict[str, float]:
    """``sign_and_verify`` ``rounds`` times; the median of each rate."""
    passes = [sign_and_verify(records, key) for _ in range(rounds)]
    return {name: round(statistics.median(p[name] for p in passes), 1) for name in passes[0]}
