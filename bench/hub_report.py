"""What ``hub_bench.py`` reports: one run's measurements (``HubRun``), the JSON object built from
all runs (``summarise``), and the table printed without ``--json``.

Runs are keyed by part and repetition: ``raw``, ``pg``, ``workers_2``, ``latency_500`` in the
first, ``pg#2``, ``pg#3``... in the later ones. A headline key is the median over the
repetitions of the runs that completed, with every repetition's value (None: incomplete) in
``<key>_runs``; a ratio is the median of the per-repetition ratios (hub and raw of the same
repetition). Counts that must be 0 are sums over every run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from decision_cost import label
from population import FANOUT


@dataclass
class HubRun:
    label: str
    workers: int
    events: int
    seconds: float = 0.0
    eps: float = 0.0
    notices: int = 0
    duplicate_notices: int = 0
    aborted_batches: int = 0
    joins: int = 0
    joins_at_start: int = 0  # when every worker had joined, before the first publish
    rss_start_kb: int = 0
    rss_end_kb: int = 0
    decided: int | None = None
    complete: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rss_growth_pct(self) -> float | None:
        if not self.rss_start_kb:
            return None
        return round(100 * (self.rss_end_kb - self.rss_start_kb) / self.rss_start_kb, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "events": self.events,
            "seconds": round(self.seconds, 2),
            "eps": round(self.eps, 1),
            "complete": self.complete,
            "notices": self.notices,
            "decisions": self.decided,
            "duplicate_notices": self.duplicate_notices,
            "aborted_batches": self.aborted_batches,
            "rebalances": self.joins,
            "rebalances_after_join": self.joins - self.joins_at_start,
            "rss_start_mb": round(self.rss_start_kb / 1024, 1),
            "rss_end_mb": round(self.rss_end_kb / 1024, 1),
            "rss_growth_pct": self.rss_growth_pct,
            **self.extra,
        }


def rep_key(key: str, rep: int) -> str:
    """A run's key in repetition ``rep``: ``pg``, ``pg#2``, ``pg#3``..."""
    return key if rep == 1 else f"{key}#{rep}"


def repetition(key: str) -> int:
    """The repetition a run's key names (1 without a ``#``)."""
    _, mark, rep = key.partition("#")
    return int(rep) if mark else 1


def median_of(values: Sequence[float | None], digits: int = 1) -> float | None:
    """The median of the values measured, rounded; None when none was (incomplete runs)."""
    present = [v for v in values if v is not None]
    return round(statistics.median(present), digits) if present else None


def spread(values: Sequence[float | None], spec: str = ",.1f") -> str:
    """``median (min-max)`` of the values measured; the value alone for one; ``-`` for none."""
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    text = format(statistics.median(present), spec)
    if len(values) > 1:
        text += f" ({format(min(present), spec)}-{format(max(present), spec)})"
        if len(present) < len(values):
            text += f" {len(values) - len(present)} incomplete"
    return text


def extra_value(name: str) -> Callable[[HubRun], float | None]:
    """Reads one of a run's extra figures (a latency percentile)."""
    return lambda run: float(run.extra[name])


def summarise(
    args: argparse.Namespace,
    runs: dict[str, HubRun],
    load_before: dict[str, list[float]],
    errors: dict[str, str] | None = None,
    extras: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one JSON object: headline keys first (None for what did not run), then per run."""
    reps = sorted({repetition(k) for k in runs}) or [1]

    def series(key: str, value: Callable[[HubRun], float | None]) -> list[float | None]:
        return [value(runs[rep_key(key, r)]) if rep_key(key, r) in runs else None for r in reps]

    def eps(run: HubRun) -> float | None:
        return run.eps if run.complete else None

    def rounded(values: list[float | None], digits: int) -> list[float | None]:
        return [None if v is None else round(v, digits) for v in values]

    result: dict[str, Any] = {
        "events": args.events,
        "people": args.people,
        "fanout": {"disclosed": FANOUT, "withheld": 8 - FANOUT},
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "parts": args.parts,
        "repeat": args.repeat,
    }

    def headline(key: str, values: list[float | None], digits: int) -> None:
        result[key] = median_of(values, digits)
        result[f"{key}_runs"] = rounded(values, digits)

    raw = series("raw", eps)
    headline("raw_eps", raw, 1)
    for store in ("pg", "sqlite"):
        headline(f"hub_eps_{store}", series(store, eps), 1)
    for store in ("pg", "sqlite"):
        ratios = [h / r if h and r else None for h, r in zip(series(store, eps), raw, strict=True)]
        headline(f"ratio_{store}", ratios, 4)
    # --plain-hub: the same pg run with the other installation (no sealing), same repetition.
    plain = series("pg_plain", eps)
    headline("hub_eps_pg_plain", plain, 1)
    costs = [p / h if h and p else None for h, p in zip(series("pg", eps), plain, strict=True)]
    headline("sealing_cost_ratio", costs, 4)
    # part signatures: the same hub on the same events, unsigned and signed, same repetition.
    unsigned, signed = series("unsigned", eps), series("signed", eps)
    headline("hub_eps_unsigned", unsigned, 1)
    headline("hub_eps_signed", signed, 1)
    paired = [s / u if s and u else None for u, s in zip(unsigned, signed, strict=True)]
    headline("signed_ratio", paired, 4)
    passes = (extras or {}).get("signing_runs", [])
    for name in ("sign_per_s", "verify_per_s", "digest_per_s"):
        headline(name, [p[name] for p in passes], 1)
    for rate in args.rates:
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            values = series(f"latency_{rate}", extra_value(q))
            headline(f"latency_{q}_at_{rate}", values, 1)
        undelivered = series(f"latency_{rate}", lambda run: run.extra["undelivered"])
        present = [v for v in undelivered if v is not None]
        result[f"latency_undelivered_at_{rate}"] = int(sum(present)) if present else None
    workers = {str(c): series(f"workers_{c}", eps) for c in args.workers}
    result["workers"] = {c: median_of(v) for c, v in workers.items()}
    result["workers_runs"] = {c: rounded(v, 1) for c, v in workers.items()}
    hub_runs = {k: r for k, r in runs.items() if k.partition("#")[0] != "raw"}
    distinct = {id(r): r for r in hub_runs.values()}.values()  # workers_1 may be pg's run
    result["duplicate_notices"] = sum(r.duplicate_notices for r in distinct)
    result["aborted_batches"] = sum(r.aborted_batches for r in distinct)
    result["rebalances"] = sum(r.joins for r in distinct)
    result["rebalances_after_join"] = sum(r.joins - r.joins_at_start for r in distinct)
    result["rss_growth_pct"] = {k: r.rss_growth_pct for k, r in hub_runs.items()}
    rss = runs.get("rss")
    result[f"rss_growth_pct_{label(args.rss_events)}"] = rss.rss_growth_pct if rss else None
    result["rss"] = (
        {
            "events": rss.events,
            "complete": rss.complete,
            "joined_mb": rss.extra["rss_joined_mb"],
            "warm_mb": round(rss.rss_start_kb / 1024, 1),
            "end_mb": round(rss.rss_end_kb / 1024, 1),
            "peak_mb": rss.extra["rss_peak_mb"],
            "samples": rss.extra["rss_samples"],
        }
        if rss
        else None
    )
    names = [label(FANOUT * p) for p in sorted(args.populations)]
    for name in names:
        result[f"decision_ms_per_event_{name}"] = None
        result[f"decision_lookup_ms_per_event_{name}"] = None
    if len(names) >= 2:
        result[f"decision_cost_ratio_{names[-1]}_vs_{names[0]}"] = None
        result[f"decision_lookup_ratio_{names[-1]}_vs_{names[0]}"] = None
    result["decisions"] = None
    result.update({k: v for k, v in (extras or {}).items() if k != "signing_runs"})
    result["load_before"] = load_before
    result["errors"] = errors or {}
    result["runs"] = {k: r.as_dict() for k, r in runs.items()}
    return result


# -- the table ------------------------------------------------------------------------------


def fmt(value: Any, spec: str = ",.1f") -> str:
    return "-" if value is None else format(value, spec)


def headline_lines(result: dict[str, Any]) -> list[str]:
    """The medians with their spread: one line per headline key that was measured."""
    rows: list[tuple[str, list[float | None], str]] = [
        ("raw_eps", result["raw_eps_runs"], ",.1f"),
        ("hub_eps_pg", result["hub_eps_pg_runs"], ",.1f"),
        ("hub_eps_pg_plain", result["hub_eps_pg_plain_runs"], ",.1f"),
        ("sealing_cost_ratio", result["sealing_cost_ratio_runs"], ".3f"),
        ("hub_eps_unsigned", result["hub_eps_unsigned_runs"], ",.1f"),
        ("hub_eps_signed", result["hub_eps_signed_runs"], ",.1f"),
        ("signed_ratio", result["signed_ratio_runs"], ".3f"),
        ("sign_per_s", result["sign_per_s_runs"], ",.0f"),
        ("verify_per_s", result["verify_per_s_runs"], ",.0f"),
        ("hub_eps_sqlite", result["hub_eps_sqlite_runs"], ",.1f"),
        ("ratio_pg", result["ratio_pg_runs"], ".3f"),
        ("ratio_sqlite", result["ratio_sqlite_runs"], ".3f"),
    ]
    rows += [(f"workers {c}", v, ",.1f") for c, v in result["workers_runs"].items()]
    rows += [
        (k.removesuffix("_runs"), v, ",.0f")
        for k, v in result.items()
        if k.startswith("latency_p") and k.endswith("_runs")
    ]
    measured = [(k, v, spec) for k, v, spec in rows if any(x is not None for x in v)]
    if not measured:
        return []
    out = ["", f"  median of {result['repeat']} repetition(s) (min-max):"]
    out += [f"  {k:28} {spread(v, spec)}" for k, v, spec in measured]
    return out


def once_lines(result: dict[str, Any]) -> list[str]:
    """The rss and decisions parts, run once."""
    out = []
    rss = result.get("rss")
    if rss:
        growth = next(v for k, v in result.items() if k.startswith("rss_growth_pct_"))
        out += [
            "",
            f"  rss: {rss['events']:,} events through one worker on pg; VmRSS {rss['joined_mb']}"
            f" MB at join, {rss['warm_mb']} MB after the first 10% of notices,",
            f"  {rss['end_mb']} MB at the end (growth {fmt(growth)}%), peak {rss['peak_mb']} MB",
        ]
    if result.get("decisions"):
        out += ["", f"  {'consents':>10} {'seed s':>8} {'ms/event':>9} {'reads ms':>9}"]
        for line in result["decisions"].values():
            whole, reads = line["ms_per_event"], line["lookup_ms_per_event"]
            out.append(
                f"  {line['consents']:>10,} {line['seed_s']:>8.1f} "
                f"{fmt(whole, '.3f'):>9} {fmt(reads, '.3f'):>9}"
            )
        for key, value in result.items():
            if key.startswith(("decision_cost_ratio_", "decision_lookup_ratio_")):
                out.append(f"  {key} {fmt(value, '.3f')}")
    return out


def signature_lines(result: dict[str, Any]) -> list[str]:
    """Part signatures: the hub's events/s unsigned and signed, their ratio, what the
    publisher's signing and the hub's verifying cost in process, and the load seen."""
    loads = [
        f"{k} {r['load_before'][0]:.2f}"
        for k, r in result["runs"].items()
        if k.partition("#")[0] in ("unsigned", "signed") and "load_before" in r
    ]
    return [
        f"  signed_ratio {fmt(result['signed_ratio'], '.3f')}: this hub on pg with every event "
        f"signed and signatures required ({fmt(result['hub_eps_signed'])} events/s) over "
        f"unsigned, not required ({fmt(result['hub_eps_unsigned'])}), paired by repetition",
        f"  in process: {fmt(result['sign_per_s'], ',.0f')} signatures/s (digest and sign), "
        f"{fmt(result['verify_per_s'], ',.0f')} verifications/s, "
        f"{fmt(result['digest_per_s'], ',.0f')} digests/s; load average (1 min) before each "
        "run: " + "; ".join(loads),
    ]


def table(result: dict[str, Any]) -> str:
    out = [
        f"tellonce hub bench, {result['date']}, Python {result['python']}, {result['cpus']} CPUs;"
        f" {result['events']:,} events, each disclosed to {FANOUT} and withheld from "
        f"{8 - FANOUT}; {result['people']} clients",
    ]
    if any(not k.startswith("latency") for k in result["runs"]):
        out += [
            "",
            f"  {'run':22} {'events/s':>9} {'x raw':>7} {'secs':>7} {'dup':>5} {'abort':>5} "
            f"{'joins':>5} {'RSS MB':>13} {'growth':>7}",
        ]
    raws = {repetition(k): r for k, r in result["runs"].items() if k.partition("#")[0] == "raw"}
    for key, r in result["runs"].items():
        if key.startswith("latency"):
            continue
        raw = raws.get(repetition(key))
        ratio = "-"
        if raw and raw["complete"] and r["complete"] and not key.startswith(("raw", "rss")):
            ratio = f"{r['eps'] / raw['eps']:.3f}"
        rate = fmt(r["eps"]) if r["complete"] else "incompl."
        rss = f"{r['rss_start_mb']:.0f}->{r['rss_end_mb']:.0f}"
        out.append(
            f"  {key:22} {rate:>9} {ratio:>7} {r['seconds']:>7.1f} {r['duplicate_notices']:>5} "
            f"{r['aborted_batches']:>5} {r['rebalances']:>5} {rss:>13} "
            f"{fmt(r['rss_growth_pct'], '.1f'):>6}%"
        )
    lat = [(k, r) for k, r in result["runs"].items() if k.startswith("latency")]
    if lat:
        out += [
            "",
            f"  {'run':18} {'offered':>10} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} "
            f"{'undeliv':>8}",
        ]
        for key, r in lat:
            out.append(
                f"  {key:18} {r['offered_eps']:>8,.0f}/s {r['p50_ms']:>9,.0f} "
                f"{r['p95_ms']:>9,.0f} {r['p99_ms']:>9,.0f} {r['undelivered']:>8,}"
            )
    out += headline_lines(result)
    out += once_lines(result)
    out += [
        "",
        f"  raw_eps {fmt(result['raw_eps'])}; ratio_pg {fmt(result['ratio_pg'], '.3f')}, "
        f"ratio_sqlite {fmt(result['ratio_sqlite'], '.3f')}; workers (events/s) "
        f"{result['workers']}",
        *(
            [
                f"  sealing_cost_ratio {fmt(result['sealing_cost_ratio'], '.3f')}: the plain "
                f"hub's events/s ({fmt(result['hub_eps_pg_plain'])}) over this hub's on pg, "
                "paired by repetition (time per event with sealing / without)"
            ]
            if result["hub_eps_pg_plain"] is not None
            else []
        ),
        *(signature_lines(result) if result["hub_eps_signed"] is not None else []),
        f"  duplicate_notices {result['duplicate_notices']}, aborted_batches "
        f"{result['aborted_batches']}, rebalances {result['rebalances']} "
        f"({result['rebalances_after_join']} after the initial joins)",
        "  load average before each part: "
        + "; ".join(f"{k} {v[0]:.2f}" for k, v in result["load_before"].items()),
        "  dup: notify records whose notification id came before; abort: batches retried; "
        "joins: group joins of all workers (after: once all had joined); RSS: the first worker, "
        "from its join to the run's end (rss: from the warm-up)",
    ]
    if lat:
        out.append(
            "  latency: notice record timestamp minus event send time; undelivered notices "
            "count with the time waited (a lower bound)"
        )
    for key, r in result["runs"].items():
        expected = 8 * r["events"]
        if r["decisions"] is not None and r["decisions"] != expected:
            out.append(f"  NOTE {key}: {r['decisions']:,} decisions, expected {expected:,}")
        if not r["complete"]:
            out.append(f"  NOTE {key}: not every notice arrived ({r['notices']:,} seen)")
        for error, count in (r.get("abort_errors") or {}).items():
            out.append(f"  NOTE {key}: {count} batch(es) retried after: {error}")
    for line in (result.get("decisions") or {}).values():
        if line["disclosed"] != line["withheld"] or not line["disclosed"]:
            out.append(
                f"  NOTE decisions at {line['consents']:,} consents: {line['disclosed']:,} "
                f"disclosed, {line['withheld']:,} withheld (expected equal)"
            )
    for part, error in result["errors"].items():
        out.append(f"  NOTE part {part} failed: {error}")
    return "\n".join(out)
