"""bench/hub_bench.py without a broker or database: its arguments, its JSON keys, its table."""

from __future__ import annotations

import importlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # the script imports its sibling ``databases``
    try:
        return importlib.import_module("hub_bench")
    finally:
        sys.path.remove(str(BENCH))


def test_defaults_are_the_issues_measurements(bench: ModuleType) -> None:
    """By default: 20,000 events, 100/300/500 events/s for 60 s, 1-3 workers, every part
    (the signing cost of issue 13 among them)."""
    args = bench.parse_args([])
    assert args.events == 20_000
    assert args.rates == [100, 300, 500]
    assert args.duration == 60.0
    assert args.workers == [1, 2, 3]
    assert args.parts == list(bench.PARTS)
    assert "signatures" in args.parts
    assert not args.json


def test_parts_keep_their_order_and_unknown_ones_are_refused(bench: ModuleType) -> None:
    """--parts runs a subset in the bench's order; an unknown part is a usage error."""
    args = bench.parse_args(["--parts", "workers,raw", "--rates", "50,100", "--events", "10"])
    assert args.parts == ["raw", "workers"]
    assert args.rates == [50, 100]
    with pytest.raises(SystemExit):
        bench.parse_args(["--parts", "raw,nope"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--rates", "0"])


def test_summary_has_the_issues_keys_and_renders(bench: ModuleType) -> None:
    """The JSON object carries every key issue 10 names, ratios computed, and the table renders."""
    args = bench.parse_args(["--events", "100", "--rates", "100,500", "--workers", "1,2"])

    def run(label: str, workers: int, eps: float, **extra: object) -> object:
        r = bench.HubRun(label, workers, 100, seconds=100 / eps, eps=eps, complete=True)
        r.rss_start_kb, r.rss_end_kb, r.decided = 1000, 1050, 800
        r.extra = dict(extra)
        return r

    latency = {"offered_eps": 500.0, "undelivered": 0, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0}
    pg = run("pg", 1, 50.0)
    runs = {
        "raw": run("raw", 1, 1000.0),
        "pg": pg,
        "sqlite": run("sqlite", 1, 100.0),
        "latency_500": run("latency 500/s", 1, 500.0, **latency),
        "workers_1": pg,
        "workers_2": run("2 workers", 2, 60.0),
    }
    runs["workers_2"].duplicate_notices, runs["workers_2"].aborted_batches = 3, 2
    runs["workers_2"].joins, runs["workers_2"].joins_at_start = 5, 2
    result = json.loads(json.dumps(bench.summarise(args, runs, {"raw": [0.5, 0.4, 0.3]})))
    for key in ("raw_eps", "hub_eps_pg", "hub_eps_sqlite", "ratio_pg", "ratio_sqlite"):
        assert result[key] is not None, key
    assert result["ratio_pg"] == 0.05
    assert result["latency_p99_ms_at_500"] == 3.0
    assert result["latency_p99_ms_at_100"] is None  # not measured: present, empty
    assert result["workers"] == {"1": 50.0, "2": 60.0}
    assert result["duplicate_notices"] == 3
    assert result["aborted_batches"] == 2
    assert result["rebalances"] == 5
    assert result["rebalances_after_join"] == 3
    assert result["rss_growth_pct"]["pg"] == 5.0
    assert result["load_before"] == {"raw": [0.5, 0.4, 0.3]}
    assert "ratio_pg 0.050" in bench.table(result)


def test_repetitions_give_medians_per_repetition_ratios_and_sums(bench: ModuleType) -> None:
    """With --repeat 3: medians over complete runs, ratios paired by repetition, counts summed."""
    args = bench.parse_args(["--repeat", "3", "--rates", "100", "--workers", "1"])
    runs = {}
    for rep, (raw_eps, pg_eps) in enumerate([(1000.0, 300.0), (2000.0, 200.0), (4000.0, 400.0)]):
        raw = bench.HubRun("raw", 1, 100, seconds=1.0, eps=raw_eps, complete=True)
        pg = bench.HubRun("pg", 1, 100, seconds=1.0, eps=pg_eps, complete=True)
        pg.duplicate_notices = rep
        runs[bench.rep_key("raw", rep + 1)] = raw
        runs[bench.rep_key("pg", rep + 1)] = pg
        runs[bench.rep_key("workers_1", rep + 1)] = pg
    runs["sqlite#2"] = bench.HubRun("sqlite", 1, 100, seconds=9.0, complete=False)
    result = json.loads(json.dumps(bench.summarise(args, runs, {})))
    assert result["raw_eps"] == 2000.0
    assert result["hub_eps_pg_runs"] == [300.0, 200.0, 400.0]
    assert result["ratio_pg_runs"] == [0.3, 0.1, 0.1]
    assert result["ratio_pg"] == 0.1  # the median of the ratios, not 300 / 2000
    assert result["hub_eps_sqlite"] is None
    assert result["hub_eps_sqlite_runs"] == [None, None, None]
    assert result["workers_runs"] == {"1": [300.0, 200.0, 400.0]}
    assert result["duplicate_notices"] == 0 + 1 + 2  # each run once, though workers_1 is pg
    assert "2,000.0 (1,000.0-4,000.0)" in bench.table(result)


def test_spread_shows_the_median_range_and_incomplete_runs(bench: ModuleType) -> None:
    """spread() is the median, then min-max over the measured values, then what is missing."""
    report = importlib.import_module("hub_report")
    assert report.spread([]) == "-"
    assert report.spread([None]) == "-"
    assert report.spread([2.0]) == "2.0"
    assert report.spread([3.0, 1.0, 2.0]) == "2.0 (1.0-3.0)"
    assert report.spread([3.0, None, 1.0], ".0f") == "2 (1-3) 1 incomplete"
    assert report.median_of([None, 1.0, 4.0], 2) == 2.5
    assert report.repetition("latency_500#3") == 3
    assert report.repetition("pg") == 1


def fake_venv(folder: Path, *, python: bool = True) -> Path:
    """A bin folder with an executable ``tellonce`` (and ``python`` beside it)."""
    folder.mkdir(parents=True)
    for name in ("tellonce", "python") if python else ("tellonce",):
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)
    return folder / "tellonce"


def test_plain_hub_names_another_installation_measured_in_part_pg(
    bench: ModuleType, tmp_path: Path
) -> None:
    """--plain-hub takes a venv's tellonce (python beside it) and needs part pg to run in."""
    assert bench.parse_args([]).plain_hub is None
    tellonce = fake_venv(tmp_path / "plain" / "bin")
    args = bench.parse_args(["--plain-hub", str(tellonce), "--parts", "pg", "--repeat", "1"])
    assert args.plain_hub == tellonce
    assert args.parts == ["pg"]
    with pytest.raises(SystemExit):  # no python beside it: not a venv's bin folder
        bench.parse_args(["--plain-hub", str(fake_venv(tmp_path / "bare" / "bin", python=False))])
    with pytest.raises(SystemExit):  # nothing there
        bench.parse_args(["--plain-hub", str(tmp_path / "nowhere" / "tellonce")])
    with pytest.raises(SystemExit):  # measured in part pg only
        bench.parse_args(["--plain-hub", str(tellonce), "--parts", "raw,sqlite"])


def test_sealing_cost_is_the_plain_hubs_rate_over_this_hubs_per_repetition(
    bench: ModuleType, tmp_path: Path
) -> None:
    """hub_eps_pg_plain is the plain runs' median; sealing_cost_ratio pairs runs by repetition."""
    tellonce = fake_venv(tmp_path / "plain" / "bin")
    args = bench.parse_args(["--repeat", "3", "--parts", "pg", "--plain-hub", str(tellonce)])
    runs = {}
    for rep, (sealed, plain) in enumerate([(80.0, 100.0), (50.0, 100.0), (90.0, 90.0)]):
        runs[bench.rep_key("pg", rep + 1)] = bench.HubRun(
            "pg", 1, 100, seconds=1.0, eps=sealed, complete=True
        )
        runs[bench.rep_key("pg_plain", rep + 1)] = bench.HubRun(
            "pg_plain", 1, 100, seconds=1.0, eps=plain, complete=True
        )
    result = json.loads(json.dumps(bench.summarise(args, runs, {})))
    assert result["hub_eps_pg"] == 80.0
    assert result["hub_eps_pg_plain"] == 100.0
    assert result["sealing_cost_ratio_runs"] == [1.25, 2.0, 1.0]
    assert result["sealing_cost_ratio"] == 1.25  # the median of the pairs, not 100 / 80
    assert "sealing_cost_ratio 1.250" in bench.table(result)
    without = json.loads(json.dumps(bench.summarise(bench.parse_args([]), {}, {})))
    assert without["hub_eps_pg_plain"] is None
    assert without["sealing_cost_ratio"] is None


def test_signing_cost_pairs_signed_and_unsigned_runs_by_repetition(bench: ModuleType) -> None:
    """signed_ratio is signed over unsigned events/s by repetition; in-process rates are medians."""
    args = bench.parse_args(["--repeat", "3", "--parts", "signatures"])
    runs = {}
    for rep, (unsigned, signed) in enumerate([(100.0, 90.0), (200.0, 100.0), (80.0, 80.0)]):
        for name, eps in (("unsigned", unsigned), ("signed", signed)):
            run = bench.HubRun(name, 1, 100, seconds=1.0, eps=eps, complete=True)
            run.extra["load_before"] = [1.5, 1.0, 0.5]
            runs[bench.rep_key(name, rep + 1)] = run
    passes = [
        {"sign_per_s": v, "verify_per_s": 2 * v, "digest_per_s": 3 * v} for v in (10.0, 30.0, 20.0)
    ]
    result = json.loads(json.dumps(bench.summarise(args, runs, {}, {}, {"signing_runs": passes})))
    assert result["hub_eps_unsigned"] == 100.0
    assert result["hub_eps_signed"] == 90.0
    assert result["signed_ratio_runs"] == [0.9, 0.5, 1.0]
    assert result["signed_ratio"] == 0.9  # the median of the pairs, not 90 / 100
    assert (result["sign_per_s"], result["verify_per_s"]) == (20.0, 40.0)
    assert "signing_runs" not in result
    rendered = bench.table(result)
    assert "signed_ratio 0.900" in rendered
    assert "signed#2 1.50" in rendered  # the load average seen before each run
    without = json.loads(json.dumps(bench.summarise(bench.parse_args([]), {}, {})))
    assert without["hub_eps_signed"] is None
    assert "signed_ratio" not in bench.table(without).split("median of")[0]


def test_signed_runs_events_pass_the_hubs_check_under_the_workers_directory(
    bench: ModuleType, tmp_path: Path
) -> None:
    """The signed run's events verify, signatures required, against the directory the workers
    read; the unsigned run's events would be refused there as unsigned."""
    from hub.adapters.record_keys import verify_ed25519
    from hub.config.directory import load_directory
    from hub.errors import RejectedEvent
    from hub.model import InboundMessage
    from hub.wire.signatures import SignaturePolicy, check_event_signature

    costs = importlib.import_module("signing_cost")
    key = costs.publisher_key()
    directory = load_directory(costs.signed_directory(key, bench.PUBLISHER, tmp_path / "d.toml"))
    program = directory.program(bench.PUBLISHER)
    assert [k.id for k in program.keys] == [key.key_id]
    assert directory.program_ids == load_directory().program_ids  # the shipped one otherwise
    policy = SignaturePolicy(verify_ed25519, required=True)
    now = datetime.now(UTC)
    for k, v, h in bench.make_events(3, 2, "t", signer=key).records:
        check_event_signature(InboundMessage("t", 0, 0, k, v, h), program, now, policy)
    k, v, h = bench.make_events(1, 2, "t").records[0]
    with pytest.raises(RejectedEvent) as refused:
        check_event_signature(InboundMessage("t", 0, 0, k, v, h), program, now, policy)
    assert refused.value.reason == "unsigned"
    rates = costs.in_process(bench.make_events(4, 2, "t").records, key, rounds=1)
    assert set(rates) == {"sign_per_s", "verify_per_s", "digest_per_s"}
    assert all(rate > 0 for rate in rates.values())
