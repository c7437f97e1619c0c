"""``circinus bench search``: every method on every world, side by side, in one run.

Each (world, method) pair is planned once with fixed seeds on the same world index; what is
measured is what :class:`~circinus.planner.PlanResult` reports (goodput, cost, wall time of
search and selection, plans estimated). Ratios are taken within a world, between methods run
back to back on the same machine, so machine noise affects both sides alike.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from circinus.baselines.space import plan_spaces
from circinus.bench.methods import METHODS, Method
from circinus.errors import TooLargeError
from circinus.estimate.analytic import AnalyticEstimator
from circinus.planner import Planner
from circinus.search.decomposed import DecomposedSearch
from circinus.search.placements import eligible_devices
from circinus.spec.index import WorldIndex
from circinus.spec.models import Query

Progress = Callable[[str], None]
"""Called with a short description before each (world, method) run."""


@dataclass(frozen=True)
class Record:
    """The outcome of one method on one world."""

    world: str
    method: str
    queries: int
    admitted: int | None
    goodput: float | None
    cost_per_hour: float | None
    plan_seconds: float | None
    """Wall time of search + selection, seconds."""
    search_seconds: float | None
    select_seconds: float | None
    evaluations: int | None
    """Complete plans whose end-to-end performance was estimated."""
    kernel_evaluations: int | None
    """Stage and transfer estimates computed (the profiling work a real system would do)."""
    status: str | None
    gap_vs_oracle: float | None
    """``(oracle goodput - goodput) / oracle goodput`` where the oracle ran."""
    skipped: str | None = None
    load_average: float | None = None
    """The machine's 1-minute load average when the run ended."""


@dataclass(frozen=True)
class Ratio:
    """Circinus against one baseline on one world (> 1 is in Circinus's favour)."""

    world: str
    baseline: str
    goodput: float | None
    """Circinus goodput / baseline goodput."""
    cost: float | None
    """Baseline cost / Circinus cost, $/h."""
    cost_per_query: float | None
    """Baseline / Circinus cost per admitted query."""
    time: float | None
    """Baseline plan seconds / Circinus plan seconds."""
    evaluations: float | None
    """Baseline evaluations / Circinus evaluations."""


@dataclass(frozen=True)
class SingleQuery:
    """Circinus planning one query alone (cold caches), over a sample of a world's queries."""

    world: str
    sampled: int
    median_seconds: float
    max_seconds: float
    median_plan_space: float
    """Median number of complete plans in a sampled query's space."""


@dataclass(frozen=True)
class Report:
    """Everything ``circinus bench search`` prints and writes."""

    seed: int
    records: tuple[Record, ...]
    ratios: tuple[Ratio, ...]
    single_query: tuple[SingleQuery, ...]

    def to_json(self) -> dict[str, object]:
        """Plain data for ``--json``."""
        return {"benchmark": "search", "seed": self.seed, "cores": os.cpu_count(),
                "records": [asdict(r) for r in self.records],
                "ratios": [asdict(r) for r in self.ratios],
                "single_query": [asdict(s) for s in self.single_query]}


def run_method(name: str, index: WorldIndex, method: Method, seed: int) -> Record:
    """Plan ``index`` with ``method`` and record what it achieved."""
    queries = len(index.world.queries)
    if method.max_queries is not None and queries > method.max_queries:
        return Record(name, method.name, queries, None, None, None, None, None, None, None,
                      None, None, None, skipped=f"more than {method.max_queries} queries")
    settings = index.world.planner.model_copy(update={**method.settings, "seed": seed})
    start = time.monotonic()
    try:
        result = Planner(search=method.search, selector=method.selector,
                         settings=settings).plan(index)
    except TooLargeError as exc:
        return Record(name, method.name, queries, None, None, None, None, None, None, None,
                      None, None, None, skipped=str(exc))
    wall = time.monotonic() - start
    return Record(name, method.name, queries, result.admitted, result.goodput,
                  result.cost_per_hour, wall, result.search_seconds, result.select_seconds,
                  result.evaluations, result.kernel_evaluations, result.selection.status, None,
                  load_average=os.getloadavg()[0])


def run_search_bench(worlds: Sequence[tuple[str, WorldIndex]], methods: Sequence[str], *,
                     seed: int = 0, single_query_sample: int = 20,
                     progress: Progress | None = None) -> Report:
    """Run every method of ``methods`` on every world; see the module note."""
    records: list[Record] = []
    singles: list[SingleQuery] = []
    for name, index in worlds:
        rows = []
        for key in methods:
            if progress is not None:
                progress(f"{name}: {key}")
            rows.append(run_method(name, index, METHODS[key], seed))
        oracle = next((r for r in rows if r.method == "oracle" and r.goodput is not None), None)
        for r in rows:
            gap = None
            if oracle is not None and oracle.goodput and r.goodput is not None:
                gap = (oracle.goodput - r.goodput) / oracle.goodput
            records.append(Record(**{**asdict(r), "gap_vs_oracle": gap}))
        if "circinus" in methods and single_query_sample > 0:
            if progress is not None:
                progress(f"{name}: single queries")
            singles.append(single_query_stats(name, index, single_query_sample, seed))
    return Report(seed, tuple(records), tuple(_ratios(records)), tuple(singles))


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    if b == 0:
        return None if a == 0 else float("inf")
    return a / b


def _ratios(records: Sequence[Record]) -> list[Ratio]:
    out = []
    by_world: dict[str, dict[str, Record]] = {}
    for r in records:
        by_world.setdefault(r.world, {})[r.method] = r
    for world, rows in by_world.items():
        ours = rows.get("circinus")
        if ours is None or ours.goodput is None:
            continue
        for method, r in rows.items():
            if method == "circinus" or r.goodput is None:
                continue
            per_ours = _div(ours.cost_per_hour, ours.admitted)
            per_theirs = _div(r.cost_per_hour, r.admitted)
            out.append(Ratio(world, method, _div(ours.goodput, r.goodput),
                             _div(r.cost_per_hour, ours.cost_per_hour),
                             _div(per_theirs, per_ours), _div(r.plan_seconds, ours.plan_seconds),
                             _div(r.evaluations, ours.evaluations)))
    return out


def plan_space(index: WorldIndex, query: Query) -> int:
    """Number of complete plans of ``query`` in the planner's option space (all configuration
    vectors, every placement option of every stage; with a fan-out, summed over the
    configurations of its stage, whose objects size the stages after it)."""
    settings = index.world.planner
    devices = eligible_devices(index, query, settings.tiers)
    return sum(s.size() for s in plan_spaces(index, settings, query, devices))


def single_query_stats(name: str, index: WorldIndex, sample: int, seed: int) -> SingleQuery:
    """Time Circinus on ``sample`` queries, each planned alone with a fresh estimator."""
    queries = list(index.world.queries)
    chosen = random.Random(seed).sample(queries, min(sample, len(queries)))
    times, spaces = [], []
    for q in chosen:
        search = DecomposedSearch(estimator=AnalyticEstimator(index=index),
                                  settings=index.world.planner)
        start = time.monotonic()
        search.search([q])
        times.append(time.monotonic() - start)
        spaces.append(plan_space(index, q))
    return SingleQuery(name, len(chosen), statistics.median(times), max(times),
                       statistics.median(spaces))
