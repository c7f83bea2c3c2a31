"""Fuzz the hub's decode-and-validate step: any exception other than RejectedEvent is a crash.

The target is ``hub.wire.inbound.parse_life_event``, what the hub worker runs on every inbound
life event before anything is written: the CloudEvents headers and the key, the bounded Avro
checker, fastavro, and the payload rules. A record that makes it raise anything but the project's
RejectedEvent would, without the worker's per-record safety net, stop the hub; so each such
input counts as a crash, is printed (the first few, as hex) and the run goes on.

Inputs are built from the fuzzer's bytes in four ways, chosen by the first byte: the bytes as
the whole value; the bytes as an Avro body behind a wire-format header with a schema id taken
from the second byte; a valid encoding of each life event (and of other schemas) mutated by
the engine; and a valid body with the bytes as ce_time and key. The seed corpus is those valid
encodings.

Engines: ``atheris`` (libFuzzer, coverage-guided over the hub's own modules; install with
``pip install 'tellonce[fuzz]'``) or ``random`` (the standard library's random mutations of
the same seeds and random bytes; runs anywhere). ``auto`` takes atheris when it is installed.

Run: ``.venv/bin/python bench/fuzz_decode.py --runs 1000000`` (add ``--engine random`` to
compare, ``--seconds 600`` to bound the time instead). It prints progress every 100,000
iterations and one summary line; it exits 1 when there was a crash.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

# Run as a script from a checkout: the seeds and Avro helpers live with the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.avro_bytes import varint
from tests.decode_seeds import INTERESTING, NOW, SEEDS, SUBJECT

PROGRESS_EVERY = 100_000
SHOW_CRASHES = 5
MODES = 4


class Target:
    """Builds an inbound record from fuzz bytes and runs decode-and-validate on it."""

    def __init__(self) -> None:
        # Imported here so that atheris can instrument them first.
        from hub.adapters.avro import AvroCodec
        from hub.config.directory import load_directory
        from hub.errors import RejectedEvent
        from hub.model import InboundMessage
        from hub.wire import cloudevents
        from hub.wire.catalog import load_catalog
        from hub.wire.inbound import parse_life_event
        from hub.wire.topics import LIFEEVENTS_TOPIC

        catalog = load_catalog()
        self.codec = AvroCodec(catalog)
        self.directory = load_directory()
        self.parse_life_event = parse_life_event
        self.rejected_type = RejectedEvent
        self.message_type = InboundMessage
        self.topic = LIFEEVENTS_TOPIC
        self.ce = cloudevents
        self.schemas = list(SEEDS)
        self.by_id = {e.id: e.name for e in catalog.entries}
        self.valid = {name: self.codec.encode(name, record) for name, (_, record) in SEEDS.items()}
        self.iterations = 0
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self.crashes: list[tuple[str, bytes, str]] = []

    def seeds(self) -> list[bytes]:
        """One input per mode and schema, each decoding to a valid record."""
        out = []
        for index, name in enumerate(self.schemas):
            value = self.valid[name]
            out.append(bytes([0]) + value)
            out.append(bytes([1, value[4]]) + value[5:])
            out.append(bytes([2, index]) + value)
            out.append(bytes([3, index]) + (NOW - timedelta(minutes=1)).isoformat().encode())
        return out

    def message(self, data: bytes) -> Any:
        mode = data[0] % MODES if data else 0
        rest = data[1:]
        schema = self.schemas[0]
        key: bytes | None = SUBJECT.encode()
        ce_time = (NOW - timedelta(minutes=1)).isoformat().encode()
        if mode == 0:  # the bytes are the whole value
            value = rest
        elif mode == 1:  # a wire-format header, then the bytes as the Avro body
            schema_id = rest[0] if rest else 1
            schema = self.by_id.get(schema_id, schema)
            value = b"\x00" + schema_id.to_bytes(4, "big") + rest[1:]
        elif mode == 2:  # a (mutated) encoding, with the headers of the schema it started as
            schema = self.schemas[rest[0] % len(self.schemas)] if rest else schema
            value = rest[1:]
        else:  # a valid body; the bytes are ce_time, then (after a 0xff) the key
            schema = self.schemas[rest[0] % 3] if rest else schema
            value = self.valid[schema]
            ce_time, _, raw_key = rest[1:].partition(b"\xff")
            key = raw_key or None
        source = SEEDS.get(schema, SEEDS[self.schemas[0]])[0]
        ce = self.ce  # header names of the wire contract; ce_time is the fuzzed bytes as they are
        headers = [
            (ce.CE_SPECVERSION, ce.SPECVERSION.encode()),
            (ce.CE_ID, b"evt-1"),
            (ce.CE_SOURCE, source.encode()),
            (ce.CE_TYPE, schema.encode()),
            (ce.CE_TIME, ce_time),
            (ce.CONTENT_TYPE, ce.AVRO_CONTENT_TYPE.encode()),
            (ce.CE_SUBJECT, SUBJECT.encode()),
        ]
        return self.message_type(self.topic, 0, self.iterations, key, value, headers)

    def __call__(self, data: bytes) -> None:
        self.iterations += 1
        try:
            self.parse_life_event(self.message(data), self.directory, self.codec, NOW)
            self.accepted += 1
        except self.rejected_type as exc:
            self.rejected[exc.reason] += 1
        except Exception as exc:  # the crash this script looks for
            if len(self.crashes) < 1_000:
                self.crashes.append((type(exc).__name__, data, traceback.format_exc(limit=-3)))

    def progress(self, started: float) -> None:
        elapsed = time.monotonic() - started
        print(
            f"  {self.iterations:>10,} iterations  {len(self.crashes)} crashes  "
            f"{self.iterations / max(elapsed, 1e-9):,.0f}/s",
            flush=True,
        )

    def summary(self, engine: str, started: float) -> int:
        elapsed = time.monotonic() - started
        top = ", ".join(f"{reason} {n:,}" for reason, n in self.rejected.most_common(8))
        print(f"rejected by reason (top 8): {top}")
        for name, data, where in self.crashes[:SHOW_CRASHES]:
            print(f"CRASH {name} on input {data[:80].hex()}\n{where}")
        print(
            f"fuzz_decode engine={engine} iterations={self.iterations} "
            f"crashes={len(self.crashes)} accepted={self.accepted} "
            f"rejected={sum(self.rejected.values())} seconds={elapsed:.1f} "
            f"per_s={self.iterations / max(elapsed, 1e-9):.0f}",
            flush=True,
        )
        return 1 if self.crashes else 0


def mutate(rng: random.Random, seed: bytes) -> bytes:
    """One to four random edits of ``seed`` (its first byte, the mode, is kept)."""
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(1, max(len(data), 1))
        op = rng.randrange(6)
        if op == 0 and at < len(data):
            data[at] ^= 1 << rng.randrange(8)
        elif op == 1 and at < len(data):
            data[at] = rng.randrange(256)
        elif op == 2:
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 3:
            del data[at : at + rng.randint(1, 8)]
        elif op == 4:
            del data[at:]
        else:
            data[at : at + rng.randint(0, 10)] = varint(rng.choice(INTERESTING))
    return bytes(data)


def run_random(target: Target, runs: int, deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    seeds = target.seeds()
    started = time.monotonic()
    while target.iterations < runs and time.monotonic() < deadline:
        if rng.random() < 0.1:
            data = bytes([rng.randrange(MODES)]) + rng.randbytes(rng.randint(0, 64))
        else:
            data = mutate(rng, rng.choice(seeds))
        target(data)
        if target.iterations % PROGRESS_EVERY == 0:
            target.progress(started)


def run_atheris(runs: int, deadline: float, seed: int, max_len: int) -> None:
    import atheris

    with atheris.instrument_imports(include=["hub", "consent"]):
        target = Target()
    corpus = Path(tempfile.mkdtemp(prefix="tellonce-fuzz-"))
    for index, data in enumerate(target.seeds()):
        (corpus / f"seed-{index:03}").write_bytes(data)
    started = time.monotonic()

    def one_input(data: bytes) -> None:
        target(data)
        if target.iterations % PROGRESS_EVERY == 0:
            target.progress(started)
        if target.iterations >= runs or time.monotonic() >= deadline:
            # libFuzzer ends the process with C exit(): say it all here, then leave.
            code = target.summary("atheris", started)
            for path in corpus.iterdir():
                path.unlink()
            corpus.rmdir()
            sys.stdout.flush()
            os._exit(code)

    atheris.Setup(
        [sys.argv[0], f"-runs={runs + 1}", f"-seed={seed}", f"-max_len={max_len}", str(corpus)],
        one_input,
    )
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["auto", "atheris", "random"], default="auto")
    parser.add_argument("--runs", type=int, default=1_000_000, help="iterations (1,000,000)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument("--max-len", type=int, default=512, help="longest input, atheris (512)")
    args = parser.parse_args(argv)
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401
        except ImportError:
            engine = "random"
        else:
            engine = "atheris"
    deadline = time.monotonic() + args.seconds if args.seconds else float("inf")
    print(f"fuzzing parse_life_event with {engine}: up to {args.runs:,} iterations", flush=True)
    if engine == "atheris":
        run_atheris(args.runs, deadline, args.seed, args.max_len)
        return 1  # not reached: run_atheris ends the process
    target = Target()
    started = time.monotonic()
    run_random(target, args.runs, deadline, args.seed)
    return target.summary("random", started)


if __name__ == "__main__":
    sys.exit(main())
