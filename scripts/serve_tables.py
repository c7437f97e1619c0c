"""Write the serving tables of README.md and docs/serving.md from the committed serve JSON, or
check they match it.

Each table sits between ``<!-- serve:NAME -->`` and ``<!-- /serve:NAME -->`` and is rendered
from ``docs/serving/<world>-{before,probe,served}.json`` (written by ``scripts/serve_measure.sh``:
``circinus serve --json`` before calibration, after the probe's, after the served one, the last
over several runs; the shorter ``-refit`` run between the last two feeds the last calibration
only) by the function of that name below, so a figure in the docs is always one a serving run
wrote.

Usage: ``python scripts/serve_tables.py`` rewrites both files; ``--check`` exits 1 (naming the
file) when one differs from what the JSON gives.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import marked_tables

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "docs" / "serving"
WORLDS = ("digits-edge-cloud-serve", "ocr-branches-serve")
FILES = {REPO / "README.md": ("summary",),
         REPO / "docs" / "serving.md": ("summary", "runs", "queries")}
PHASES = ("before", "probe", "served")
"""Uncalibrated; calibrated with the probe; calibrated again from the served plan."""


def _runs() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for world in WORLDS:
        for phase in PHASES:
            path = DATA / f"{world}-{phase}.json"
            result = json.loads(path.read_text(encoding="utf-8"))
            n = len(result.get("runs") or ())
            out.append((world, phase if n < 2 else f"{phase} ({n} runs)", result))
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x:,.1f}"


def _within(q: dict[str, Any]) -> bool | None:
    """Whether the measured accuracy's interval meets the profiler's."""
    a, p = q["accuracy"], q["profiled_accuracy"]
    if a is None or p is None:
        return None
    return bool(a["low"] <= p["high"] and p["low"] <= a["high"])


def _hop(r: dict[str, Any]) -> str:
    """The per-call overhead a run's predictions included: the world-wide mean, and the mean
    and sd of each tier with figures of its own."""
    hop = r["hop_overhead_ms"]
    if hop is None:
        return "–"
    tiers = (r.get("runtime") or {}).get("tiers") or {}
    own = [f"{t} {f['hop_mean_ms']:.1f} ± {f['hop_sd_ms']:.1f}" for t, f in tiers.items()
           if f is not None]
    return f"{hop:.1f}" + (f" ({', '.join(own)})" if own else "")


def summary(runs: list[tuple[str, str, dict[str, Any]]]) -> str:
    """Per world, before and after calibration: SLO attainment, prediction error, accuracy,
    placement and the machine."""
    rows = [
        "| world | calibration | admitted | met SLO | requests within bound | median \\|error\\| "
        "| \\|error\\| min / max | accuracy in profiler CI | replicas on planned node | "
        "hop overhead ms | cpu busy | load | cluster GB | startup s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for world, phase, r in runs:
        qs = r["queries"]
        errors = [abs(q["latency_error"]) for q in qs if q["latency_error"] is not None]
        within = [q["within_slo"] for q in qs if q["within_slo"] is not None]
        agree = [_within(q) for q in qs]
        known = [a for a in agree if a is not None]
        pl = r["placement"]
        m = r["machine"]
        hop = _hop(r)
        met = r["met"] / r["admitted"] if r["admitted"] else None
        low = min(errors) if errors else None
        high = max(errors) if errors else None
        placed = pl["replicas"] - len(pl["misplaced"])
        rows.append(
            f"| {world} | {phase} | {r['admitted']}/{r['total_queries']} | "
            f"{r['met']}/{r['admitted']} ({_pct(met)}) | "
            f"{_pct(statistics.mean(within) if within else None)} | "
            f"{_pct(statistics.median(errors) if errors else None)} | "
            f"{_pct(low)} / {_pct(high)} | "
            f"{sum(known)}/{len(known)} | {placed}/{pl['replicas']} | "
            f"{hop} | {m['cpu_busy']:.0%} of {m['cores']} | "
            f"{m['load_before']:.1f} → {m['load_after']:.1f} | {m['ray_memory_gb']:.1f} | "
            f"{r['startup_s']:.0f} |")
    return "\n".join(rows)


def queries(runs: list[tuple[str, str, dict[str, Any]]]) -> str:
    """Per admitted query after each calibration: latency at the SLO percentile measured,
    predicted and simulated, accuracy measured and profiled, SLO met."""
    rows = [
        "| world | calibration | query | SLO ms | measured ms | predicted ms | simulated ms | "
        "error | within bound | accuracy measured | profiler CI | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for world, phase, r in runs:
        if phase == "before":
            continue
        for q in r["queries"]:
            a, p = q["accuracy"], q["profiled_accuracy"]
            acc = "–" if a is None else f"{a['value']:.3f} [{a['low']:.3f}, {a['high']:.3f}]"
            prof = "–" if p is None else f"[{p['low']:.3f}, {p['high']:.3f}]"
            err = q["latency_error"]
            rows.append(
                f"| {world} | {phase} | {q['name']} | {_ms(q['slo_latency_ms'])} | "
                f"{_ms(q['latency']['at_slo_ms'])} | {_ms(q['predicted_latency_ms'])} | "
                f"{_ms(q['simulated_latency_ms'])} | "
                f"{'–' if err is None else f'{err:+.1%}'} | {_pct(q['within_slo'])} | {acc} | "
                f"{prof} | {'yes' if q['slo_met'] else 'no'} |")
    return "\n".join(rows)


def runs(results: list[tuple[str, str, dict[str, Any]]]) -> str:
    """Each run of a plan served several times, on its own (its seed, SLOs met, median and
    extreme errors, and the machine); then the single runs by which an earlier calibration's
    plan was judged before runs were pooled (``<world>-served-seed<N>.json``)."""
    rows = [
        "| world | calibration | run | seed | met SLO | median \\|error\\| | error min / max | "
        "requests | cpu busy | load | startup s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def row(world: str, phase: str, which: str, run: dict[str, Any]) -> str:
        """A run's line (a run of ``runs[]`` or a whole single-run file: both have these)."""
        errors = [q["latency_error"] for q in run["queries"] if q["latency_error"] is not None]
        m = run["machine"]
        return (f"| {world} | {phase} | {which} | {run['seed']} | "
                f"{run['met']}/{len(run['queries'])} | {_pct(run['median_latency_error'])} | "
                f"{_signed(min(errors) if errors else None)} / "
                f"{_signed(max(errors) if errors else None)} | {run['requests']:,} | "
                f"{m['cpu_busy']:.0%} of {m['cores']} | "
                f"{m['load_before']:.1f} → {m['load_after']:.1f} | {run['startup_s']:.0f} |")

    for world, phase, r in results:
        if len(r.get("runs") or ()) < 2:
            continue
        for i, run in enumerate(r["runs"], 1):
            rows.append(row(world, phase, str(i), run))
        for path in sorted(DATA.glob(f"{world}-served-seed*.json")):
            rows.append(row(world, "earlier served", "single",
                            json.loads(path.read_text(encoding="utf-8"))))
    return "\n".join(rows)


def _signed(x: float | None) -> str:
    return "–" if x is None else f"{x:+.1%}"


TABLES: dict[str, Callable[[list[tuple[str, str, dict[str, Any]]]], str]] = {
    "summary": summary, "queries": queries, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md and docs/serving.md, or check them (``--check``)."""
    runs = _runs()
    return marked_tables.main(argv, doc=__doc__ or "", kind="serve",
                              source="docs/serving/*.json", files=FILES,
                              make=lambda name: TABLES[name](runs), root=REPO)


if __name__ == "__main__":
    raise SystemExit(main())
