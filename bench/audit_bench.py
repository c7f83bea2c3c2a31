"""What the signed audit log costs, and whether its verifier catches tampering.

Measures, on the real SqlStore (SQLite file and/or a PostgreSQL database it creates):

(a) appending leaves the way the hub worker does: per transaction, the leaves of a batch of
    events (one ``accepted`` leaf plus one decision leaf per recipient in the shipped
    directory), written with ``AuditLog``, the signer probed before the batch and a checkpoint
    signed by a ``FileSigner`` inside the transaction when one is due (every 1,000 leaves,
    checked once per batch as the worker does); against two baselines measured in the same
    process, batch for batch: the same rows inserted into a clone of the table without
    hashing or signing, and the hashing alone without a database;
(b) ``verify_store`` on the whole log, ``export_bundle``, and verifying the bundle through
    ``tellonce audit verify BUNDLE --public-key PEM`` (its ``cmd_verify``);
(c) a mutation campaign: random single edits to a bundle of 10,000 leaves (leaf bytes, leaf
    fields, removed, duplicated, swapped, re-chained or appended leaves, checkpoint fields,
    consistency proofs, header counts and key), each verified like (b); reports how many were
    detected, how many named the exact leaf, and any that crashed the verifier.

It prints medians and ratios, stops by itself, and removes what it created (temp files, the
PostgreSQL database). Run: ``.venv/bin/python bench/audit_bench.py --store both``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from databases import fresh_postgres
from sqlalchemy import Column, MetaData, Table, insert

from hub.adapters.signing import FileSigner, public_key_check
from hub.adapters.sql import SqlStore
from hub.adapters.sql.tables import audit_leaves
from hub.audit.bundle import export_bundle
from hub.audit.log import AuditLog, CheckpointPolicy, Notary, leaf_bytes
from hub.audit.merkle import leaf_hash
from hub.audit.oversight import verify_store
from hub.cli.audit import cmd_verify
from hub.config.directory import load_directory
from hub.config.settings import Settings
from hub.testing.vaults import throwaway_vault
from hub.wire.topics import LIFEEVENTS_TOPIC

PUBLISHER = "bc-service-bc"
EVENT_TYPE = "AddressChanged"
CONSENTING = 2  # recipients per event that get a disclosure; the rest are withheld
START = datetime(2025, 1, 1, tzinfo=UTC)

LeafSpec = tuple[str, dict[str, Any]]


# -- synthetic facts, shaped like the worker's ----------------------------------------------


def event_leaves(n: int, recipients: list[str]) -> list[LeafSpec]:
    """The leaves of event ``n``: accepted, then one decision per recipient."""
    event = f"{PUBLISHER}/{uuid.UUID(int=n)}"
    leaves: list[LeafSpec] = [
        (
            "accepted",
            {
                "event": event,
                "type": EVENT_TYPE,
                "position": f"{LIFEEVENTS_TOPIC}/{n % 3}/{n // 3}",
                "person": str(uuid.UUID(int=n % 5000 + 1)),
                "recipients": len(recipients),
            },
        )
    ]
    for i, recipient in enumerate(recipients):
        if i < CONSENTING:
            leaves.append(
                (
                    "disclosed",
                    {
                        "event": event,
                        "recipient": recipient,
                        "notification": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{event}/{i}")),
                        "consent": "c" * 64,
                        "fields": ["new_address", "effective_date"],
                    },
                )
            )
        else:
            leaves.append(
                (
                    "withheld",
                    {
                        "event": event,
                        "recipient": recipient,
                        "reason": "no_consent",
                        "consent": None,
                    },
                )
            )
    return leaves


def batches(total: int, events_per_batch: int, recipients: list[str]) -> Iterator[list[LeafSpec]]:
    """``total`` leaves cut into batches of ``events_per_batch`` events' leaves."""
    made, event = 0, 0
    while made < total:
        batch: list[LeafSpec] = []
        for _ in range(events_per_batch):
            batch += event_leaves(event, recipients)
            event += 1
        batch = batch[: total - made]
        made += len(batch)
        yield batch


def at(index: int) -> datetime:
    return START + timedelta(milliseconds=index)


# -- stores ----------------------------------------------------------------------------------


@contextlib.contextmanager
def sqlite_store(workdir: Path, name: str) -> Iterator[SqlStore]:
    store = SqlStore.open(f"sqlite:///{workdir / name}", vault=throwaway_vault(workdir / "keks"))
    try:
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def postgres_store(server: str) -> Iterator[SqlStore]:
    """A new database on ``server`` for the run, dropped afterwards whatever happens."""
    with fresh_postgres(server) as url, tempfile.TemporaryDirectory() as keys:
        store = SqlStore.open(url, vault=throwaway_vault(Path(keys)))
        try:
            yield store
        finally:
            store.close()


# -- (a) append ------------------------------------------------------------------------------


@dataclass
class AppendResult:
    leaves: int
    batches: int
    checkpoints: int
    audit_s: list[float]
    plain_s: list[float]
    hash_s: list[float]
    sizes: list[int]


def append(store: SqlStore, notary: Notary, total: int, events_per_batch: int) -> AppendResult:
    """Append ``total`` leaves like the worker; each batch also goes, as plain rows, into a
    clone of the table, and through the hashing alone: three timings per batch."""
    recipients = [p.id for p in load_directory().recipients_of(EVENT_TYPE, origin=PUBLISHER)]
    plain = Table(
        "bench_plain_leaves",
        MetaData(),
        *(
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in audit_leaves.columns
        ),
    )
    plain.create(store.engine)
    result = AppendResult(0, 0, 0, [], [], [], [])
    for batch in batches(total, events_per_batch, recipients):
        first = result.leaves
        rows = [
            {
                "leaf_index": first + i,
                "kind": kind,
                "data": data,
                "recorded_at": at(first + i).isoformat(),
                "prev_hash": "0" * 64,
                "leaf_hash": "0" * 64,
            }
            for i, (kind, data) in enumerate(batch)
        ]
        started = time.perf_counter()
        notary.ensure_available()
        with store.transaction() as tx:
            chain = AuditLog(tx.last_audit())
            for i, (kind, data) in enumerate(batch):
                chain.append(kind, data, at(first + i))
            chain.write(tx)
            if notary.maybe_checkpoint(tx, at(first + len(batch))) is not None:
                result.checkpoints += 1
        result.audit_s.append(time.perf_counter() - started)

        started = time.perf_counter()
        with store.engine.begin() as connection:
            connection.execute(insert(plain), rows)
        result.plain_s.append(time.perf_counter() - started)

        started = time.perf_counter()
        prev = "0" * 64
        for i, (kind, data) in enumerate(batch):
            prev = leaf_hash(leaf_bytes(first + i, kind, data, at(first + i), prev)).hex()
        result.hash_s.append(time.perf_counter() - started)

        result.leaves += len(batch)
        result.batches += 1
        result.sizes.append(len(batch))
    plain.drop(store.engine)
    return result


def rates(seconds: list[float], sizes: list[int]) -> tuple[float, float]:
    """(median leaves/s over batches, overall leaves/s)."""
    per_batch = [n / s for n, s in zip(sizes, seconds, strict=True)]
    return statistics.median(per_batch), sum(sizes) / sum(seconds)


def report_append(label: str, r: AppendResult, events_per_batch: int) -> None:
    audit_med, audit_all = rates(r.audit_s, r.sizes)
    plain_med, plain_all = rates(r.plain_s, r.sizes)
    hash_med, hash_all = rates(r.hash_s, r.sizes)
    ratios = [a / p for a, p in zip(r.audit_s, r.plain_s, strict=True)]
    print(
        f"[{label}] append: {r.leaves:,} leaves in {r.batches} transactions of up to "
        f"{max(r.sizes):,} leaves ({events_per_batch} events each), {r.checkpoints} signed "
        f"checkpoints (policy: every 1,000 leaves, checked per batch)"
    )
    print(f"  {'':38} {'median/batch':>14} {'overall':>12} {'total s':>8}")
    for name, med, overall, secs in (
        ("audit log (hash + insert + sign)", audit_med, audit_all, r.audit_s),
        ("baseline: same rows, plain insert", plain_med, plain_all, r.plain_s),
        ("baseline: hashing only, no database", hash_med, hash_all, r.hash_s),
    ):
        print(f"  {name:38} {med:>10,.0f} l/s {overall:>8,.0f} l/s {sum(secs):>8.2f}")
    print(
        f"  ratio audit/plain insert time: median {statistics.median(ratios):.2f}x per batch, "
        f"{sum(r.audit_s) / sum(r.plain_s):.2f}x overall; hashing is "
        f"{sum(r.hash_s) / sum(r.audit_s):.0%} of the audit time"
    )


# -- (b) verify, export, bundle verify ------------------------------------------------------


def timed(repeats: int, work: Callable[[], Any]) -> tuple[float, Any]:
    """Median seconds of ``repeats`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def cli_verify(bundle: Path, public_key: Path) -> dict[str, Any]:
    """``tellonce audit verify BUNDLE --public-key PEM --json``, in process."""
    args = argparse.Namespace(bundle=str(bundle), public_key=str(public_key), json=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cmd_verify(args, Settings())
    result: dict[str, Any] = json.loads(out.getvalue())
    assert code == (0 if result["verified"] else 1)
    return result


def export(store: SqlStore, signer: FileSigner, path: Path) -> int:
    with path.open("wb") as out:
        summary = export_bundle(
            store,
            out,
            public_key_pem=signer.public_key_pem(),
            key_id=signer.key_id,
            now=datetime.now(UTC),
        )
    return summary.leaves


def seal(store: SqlStore, notary: Notary) -> None:
    """Sign the tail, so the bundle holds every leaf."""
    with store.transaction() as tx:
        notary.maybe_checkpoint(tx, datetime.now(UTC), force=True)


def report_verify(
    label: str, store: SqlStore, signer: FileSigner, workdir: Path, repeats: int
) -> None:
    check = public_key_check(signer.public_key_pem())
    seconds, verdict = timed(repeats, lambda: verify_store(store, check, signer.key_id))
    assert verdict.ok, verdict.problem
    n = verdict.leaves
    print(
        f"[{label}] verify_store: {n:,} leaves, {verdict.checkpoints} checkpoints: median "
        f"{seconds:.2f} s of {repeats} ({n / seconds:,.0f} leaves/s)"
    )
    bundle, public_key = workdir / f"{label}.bundle.jsonl", workdir / "public.pem"
    public_key.write_text(signer.public_key_pem())
    seconds, leaves = timed(repeats, lambda: export(store, signer, bundle))
    print(
        f"[{label}] export_bundle: {leaves:,} leaves, {bundle.stat().st_size / 1e6:.1f} MB: "
        f"median {seconds:.2f} s of {repeats} ({leaves / seconds:,.0f} leaves/s)"
    )
    seconds, result = timed(repeats, lambda: cli_verify(bundle, public_key))
    assert result["verified"], result["problem"]
    print(
        f"[{label}] audit verify BUNDLE --public-key: median {seconds:.2f} s of {repeats} "
        f"({result['leaves'] / seconds:,.0f} leaves/s)"
    )
    bundle.unlink()


# -- (c) mutation campaign -------------------------------------------------------------------


@dataclass
class Bundle:
    header: bytes
    checkpoints: list[bytes]
    leaves: list[bytes]

    @classmethod
    def read(cls, path: Path) -> Bundle:
        lines = path.read_bytes().split(b"\n")[:-1]
        count = json.loads(lines[0])["checkpoints"]
        return cls(lines[0], lines[1 : 1 + count], lines[1 + count :])

    def write(self, path: Path) -> None:
        path.write_bytes(b"\n".join([self.header, *self.checkpoints, *self.leaves]) + b"\n")


def canonical(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def hex64(rng: random.Random) -> str:
    return rng.randbytes(32).hex()


# Each mutation edits a copy of the bundle and returns (kind, leaf it should name or None).
Mutation = Callable[[Bundle, random.Random], tuple[str, int | None]]


def m_flip_byte(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    k = rng.randrange(len(b.leaves))
    line = bytearray(b.leaves[k])
    pos = rng.randrange(len(line))
    line[pos] ^= 1 << rng.randrange(8)
    b.leaves[k] = bytes(line)
    return "leaf: one bit flipped", k


def m_edit_field(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    k = rng.randrange(len(b.leaves))
    leaf = json.loads(b.leaves[k])
    field = rng.choice(sorted(leaf["data"]))
    leaf["data"][field] = "forged" if leaf["data"][field] != "forged" else "forged!"
    b.leaves[k] = canonical(leaf)
    return "leaf: a data field rewritten", k


def m_edit_kind_or_time(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    k = rng.randrange(len(b.leaves))
    leaf = json.loads(b.leaves[k])
    if rng.random() < 0.5:
        leaf["kind"] = "withheld" if leaf["kind"] != "withheld" else "disclosed"
    else:
        leaf["at"] = (datetime.fromisoformat(leaf["at"]) + timedelta(seconds=1)).isoformat()
    b.leaves[k] = canonical(leaf)
    return "leaf: kind or time rewritten", k


def m_relink(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    k = rng.randrange(len(b.leaves))
    leaf = json.loads(b.leaves[k])
    leaf["prev"] = hex64(rng)
    b.leaves[k] = canonical(leaf)
    return "leaf: link to previous rewritten", k


def m_remove(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    k = rng.randrange(len(b.leaves))
    del b.leaves[k]
    return "leaves: one removed", None


def m_duplicate(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    k = rng.randrange(len(b.leaves))
    b.leaves.insert(k, b.leaves[k])
    return "leaves: one duplicated", None


def m_swap(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    k = rng.randrange(len(b.leaves) - 1)
    b.leaves[k], b.leaves[k + 1] = b.leaves[k + 1], b.leaves[k]
    return "leaves: two neighbours swapped", None


def m_truncate(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    del b.leaves[len(b.leaves) - rng.randint(1, 50) :]
    return "leaves: tail cut off", None


def m_append(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    last = json.loads(b.leaves[-1])
    data = canonical({**last, "i": last["i"] + 1, "prev": leaf_hash(b.leaves[-1]).hex()})
    b.leaves.append(data)
    return "leaves: a well-linked leaf appended", None


def m_rechain(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    """The insider's attack: rewrite one leaf and fix every link after it."""
    k = rng.randrange(len(b.leaves))
    prev = json.loads(b.leaves[k - 1]) if k else None
    for i in range(k, len(b.leaves)):
        leaf = json.loads(b.leaves[i])
        if i == k:
            leaf["data"] = {**leaf["data"], "reason": "forged"}
        if prev is not None:
            leaf["prev"] = leaf_hash(b.leaves[i - 1]).hex()
        b.leaves[i] = canonical(leaf)
        prev = leaf
    return "leaves: one rewritten and re-chained", None


def m_checkpoint(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    c = rng.randrange(len(b.checkpoints))
    item = json.loads(b.checkpoints[c])
    field = rng.choice(["seq", "size", "root", "time", "key", "signature"])
    cp = item["checkpoint"]
    if field in ("seq", "size"):
        cp[field] = cp[field] + rng.choice([-1, 1]) if cp[field] > 1 else cp[field] + 1
    elif field == "root":
        cp[field] = hex64(rng)
    elif field == "time":
        cp[field] = (datetime.fromisoformat(cp[field]) + timedelta(seconds=1)).isoformat()
    elif field == "key":
        cp[field] = "ed25519:" + rng.randbytes(8).hex()
    else:
        signature = bytearray(cp[field].encode())
        signature[rng.randrange(len(signature) - 2)] ^= 0x01  # keep the base64 padding
        cp[field] = signature.decode()
    b.checkpoints[c] = canonical(item)
    return f"checkpoint: {field} changed", None


def m_consistency(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    # The first checkpoint's proof is empty and unused: nothing comes before it.
    candidates = [
        i for i in range(1, len(b.checkpoints)) if json.loads(b.checkpoints[i])["consistency"]
    ]
    if not candidates:
        return m_checkpoint(b, rng)
    c = rng.choice(candidates)
    item = json.loads(b.checkpoints[c])
    proof = item["consistency"]
    choice = rng.randrange(3)
    if choice == 0:
        proof[rng.randrange(len(proof))] = hex64(rng)
    elif choice == 1:
        proof.pop(rng.randrange(len(proof)))
    else:
        proof.insert(rng.randrange(len(proof) + 1), hex64(rng))
    b.checkpoints[c] = canonical(item)
    return "checkpoint: consistency proof edited", None


def m_remove_checkpoint(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    c = rng.randrange(len(b.checkpoints))
    del b.checkpoints[c]
    header = json.loads(b.header)
    if rng.random() < 0.5:  # keep the header's count honest, so the gap itself must show
        header["checkpoints"] -= 1
        b.header = canonical(header)
    return "checkpoint: one removed", None


def m_header(b: Bundle, rng: random.Random) -> tuple[str, int | None]:
    header = json.loads(b.header)
    field = rng.choice(["leaves", "checkpoints", "key_id"])
    if field == "key_id":
        header[field] = "ed25519:" + rng.randbytes(8).hex()
    else:
        header[field] = max(header[field] + rng.choice([-1, 1]), 0)
    b.header = canonical(header)
    return f"header: {field} changed", None


MUTATIONS: list[Mutation] = [
    m_flip_byte,
    m_edit_field,
    m_edit_kind_or_time,
    m_relink,
    m_remove,
    m_duplicate,
    m_swap,
    m_truncate,
    m_append,
    m_rechain,
    m_checkpoint,
    m_consistency,
    m_remove_checkpoint,
    m_header,
]


def campaign(
    workdir: Path, leaves: int, mutations: int, events_per_batch: int, seed: int, budget_s: float
) -> None:
    """Build a log of ``leaves`` leaves on SQLite, export it, and verify mutated copies."""
    signer = FileSigner(workdir / "campaign-key.pem", create=True)
    notary = Notary(signer, CheckpointPolicy(every_leaves=1_000))
    with sqlite_store(workdir, "campaign.db") as store:
        append(store, notary, leaves, events_per_batch)
        seal(store, notary)
        original = workdir / "campaign.bundle.jsonl"
        export(store, signer, original)
    public_key = workdir / "campaign-public.pem"
    public_key.write_text(signer.public_key_pem())
    assert cli_verify(original, public_key)["verified"]
    pristine = Bundle.read(original)
    print(
        f"[mutations] bundle of {len(pristine.leaves):,} leaves and {len(pristine.checkpoints)} "
        f"checkpoints; {mutations:,} random single edits (seed {seed}), verified with the "
        "pinned public key"
    )

    rng = random.Random(seed)
    tried: Counter[str] = Counter()
    detected: Counter[str] = Counter()
    exact: Counter[str] = Counter()
    aimed: Counter[str] = Counter()
    crashed: list[str] = []
    missed: list[str] = []
    target = workdir / "mutated.jsonl"
    seconds: list[float] = []
    deadline = time.monotonic() + budget_s
    for n in range(mutations):
        if time.monotonic() > deadline:
            print(f"  stopped after {n:,} mutations: the {budget_s:.0f} s budget ran out")
            break
        copy = Bundle(pristine.header, list(pristine.checkpoints), list(pristine.leaves))
        kind, leaf = rng.choice(MUTATIONS)(copy, rng)
        copy.write(target)
        tried[kind] += 1
        started = time.perf_counter()
        try:
            result = cli_verify(target, public_key)
        except Exception as exc:  # a verifier must answer, never crash
            crashed.append(f"{kind}: {type(exc).__name__}: {exc}"[:200])
            continue
        finally:
            seconds.append(time.perf_counter() - started)
        if result["verified"]:
            missed.append(kind)
            continue
        detected[kind] += 1
        if leaf is not None:
            aimed[kind] += 1
            if str(result["problem"]).startswith(f"leaf {leaf}:"):
                exact[kind] += 1
    total = sum(tried.values())
    print(f"  {'mutation':42} {'tried':>6} {'detected':>9} {'exact leaf':>11}")
    for kind in sorted(tried):
        named = f"{exact[kind]}/{aimed[kind]}" if aimed[kind] else "-"
        print(f"  {kind:42} {tried[kind]:>6} {detected[kind]:>9} {named:>11}")
    print(
        f"  total: {total:,} tried, {sum(detected.values()):,} detected, "
        f"{len(missed)} missed, {len(crashed)} crashed the verifier; exact leaf named for "
        f"{sum(exact.values())}/{sum(aimed.values())} single-leaf edits; median verify "
        f"{statistics.median(seconds) * 1000:.0f} ms per mutated bundle"
    )
    for line in crashed[:5]:
        print(f"  CRASH {line}")
    if missed:
        print(f"  MISSED {Counter(missed).most_common()}")


# -- main ------------------------------------------------------------------------------------


def run_store(
    label: str, store: SqlStore, workdir: Path, args: argparse.Namespace, append_leaves: int
) -> None:
    signer = FileSigner(workdir / f"{label}-key.pem", create=True)
    notary = Notary(signer, CheckpointPolicy(every_leaves=1_000))
    started = time.perf_counter()
    result = append(store, notary, append_leaves, args.events_per_batch)
    report_append(label, result, args.events_per_batch)
    if append_leaves < args.verify_leaves:  # fill up to the verify size, untimed
        more = append(store, notary, args.verify_leaves - append_leaves, args.events_per_batch)
        print(f"  (then {more.leaves:,} more leaves, untimed, to verify {args.verify_leaves:,})")
    seal(store, notary)
    print(f"  [{label}] append phase took {time.perf_counter() - started:.1f} s")
    report_verify(label, store, signer, workdir, args.repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--leaves", type=int, default=100_000, help="leaves appended (timed)")
    parser.add_argument(
        "--verify-leaves",
        type=int,
        default=100_000,
        help="log size verified; filled up untimed when above --leaves",
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server; the bench creates a database tellonce_bench_<random> there "
        "and drops it at the end (a database named in the URL is only used to connect)",
    )
    parser.add_argument("--events-per-batch", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="runs per verify/export timing")
    parser.add_argument("--mutations", type=int, default=1_000)
    parser.add_argument("--mutation-leaves", type=int, default=10_000)
    parser.add_argument("--mutation-budget-s", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=9162)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    print(f"tellonce audit bench, Python {sys.version.split()[0]}, {datetime.now(UTC):%Y-%m-%d}")
    with tempfile.TemporaryDirectory(prefix="tellonce-bench-") as tmp:
        workdir = Path(tmp)
        append_leaves = args.leaves
        if args.store in ("sqlite", "both"):
            with sqlite_store(workdir, "bench.db") as store:
                run_store("sqlite", store, workdir, args, append_leaves)
        if args.store in ("postgres", "both"):
            with postgres_store(args.pg_url) as store:
                run_store("postgres", store, workdir, args, append_leaves)
        if args.mutations:
            campaign(
                workdir,
                args.mutation_leaves,
                args.mutations,
                args.events_per_batch,
                args.seed,
                args.mutation_budget_s,
            )
    print(f"done in {time.perf_counter() - started:.0f} s; temp files and databases removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
