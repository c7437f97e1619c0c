"""``circinus bench profile``: precision-aware against full profiling, side by side.

Per world, both profilers start from an empty store of their own: *full* profiling runs every
candidate (configuration vector) on every input without stop rules or prefix reuse;
*precision-aware* profiling is Circinus's. Each measured world is then planned with the same
planner, and the plans are compared query by query.

* ``samples``: runs of a vector on one input (for a table-driven world, draws of a per-input
  outcome); ``stage_calls``: operator executions (shared prefixes run once);
* ``sample_ratio``: precision-aware samples / full samples;
* ``decision_agreement``: fraction of queries with the same admission and the same plan
  (configuration, batch and placement of every stage).

Executable worlds are measured for real on this machine, both ways, for samples and wall time.
Two live runs also differ by the machine's timing noise (a shared machine's load moves
sub-millisecond timings by tens of percent), which says nothing about the profiler; so the
decision agreement replays the precision-aware policy on the full run's recording (common
random numbers: both see the same value for the same sample) and the live agreement is
reported beside it. Table-driven worlds draw per-input correctness from their tables
(:class:`~circinus.profile.executor.TableExecutor`), keep their latency tables, and keep their
samples in memory (their wall time is the profiler's bookkeeping, not measurement).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from circinus.planner import Planner, PlanResult, default_decisions
from circinus.profile import (
    MemoryProfileStore,
    SqlProfileStore,
    measure_tables,
    measure_world,
)
from circinus.profile.measure import Measured
from circinus.spec.models import World


@dataclass(frozen=True)
class ProfileRecord:
    """One world: full against precision-aware profiling."""

    world: str
    kind: str
    """``executable`` (measured for real) or ``table`` (outcomes drawn from its tables)."""
    inputs: int
    vectors: int
    queries: int
    samples_full: int
    samples_precise: int
    stage_calls_full: int
    stage_calls_precise: int
    wall_seconds_full: float
    wall_seconds_precise: float
    sample_ratio: float
    decision_agreement: float
    decision_agreement_live: float | None
    """Executable worlds: agreement between the two live runs, whose latencies also differ by
    the machine's timing noise (``decision_agreement`` replays the precision-aware policy on
    the full run's recording instead: common random numbers)."""
    samples_replay: int | None
    admitted_full: int
    admitted_precise: int
    cost_full: float
    cost_precise: float
    differing: list[str]
    """Queries whose admission or plan differs."""


@dataclass(frozen=True)
class ProfileReport:
    seed: int
    records: list[ProfileRecord]

    def to_json(self) -> dict[str, object]:
        return {"bench": "profile", "seed": self.seed,
                "records": [asdict(r) for r in self.records]}


def compare(a: PlanResult, b: PlanResult) -> tuple[float, list[str]]:
    """Fraction of queries decided identically by ``a`` and ``b``, and those that differ."""
    ours, theirs = a.decisions(), b.decisions()
    differing = [name for name, d in ours.items() if d != theirs.get(name)]
    return ((len(ours) - len(differing)) / len(ours) if ours else 1.0), differing


def run_world(name: str, world: World, *, kind: str, table_inputs: int, seed: int,
              folder: Path) -> ProfileRecord:
    """Profile ``world`` both ways in fresh stores under ``folder``, plan both, compare."""
    measured: dict[str, tuple[Measured, float]] = {}
    for mode in ("full", "precise"):
        start = time.perf_counter()
        if kind == "executable":
            store = SqlProfileStore(str(folder / f"{name}-{mode}.db"))
            try:
                m = measure_world(world, store, full=mode == "full",
                                  decide=default_decisions)
            finally:
                store.close()
        else:  # millions of drawn samples: the policy is measured, not the disk
            m = measure_tables(world, MemoryProfileStore(), inputs=table_inputs,
                               full=mode == "full", seed=seed)
        measured[mode] = (m, time.perf_counter() - start)
    full, wall_full = measured["full"]
    precise, wall_precise = measured["precise"]
    plan_full = Planner().plan(full.world)
    plan_precise = Planner().plan(precise.world)
    agreement, differing = compare(plan_precise, plan_full)
    live_agreement: float | None = None
    samples_replay: int | None = None
    if kind == "executable":
        live_agreement = agreement
        recording = SqlProfileStore(str(folder / f"{name}-full.db"))
        replay_store = SqlProfileStore(str(folder / f"{name}-replay.db"))
        try:
            replayed = measure_world(world, replay_store, replay=recording,
                                     decide=default_decisions)
        finally:
            recording.close()
            replay_store.close()
        samples_replay = replayed.samples
        plan_precise = Planner().plan(replayed.world)
        agreement, differing = compare(plan_precise, plan_full)
    inputs = max((len(next(iter(p.accuracy.values())).outcomes) for p in full.profiles
                  if p.accuracy), default=0)
    return ProfileRecord(
        world=name, kind=kind, inputs=inputs,
        vectors=sum(len(p.accuracy) for p in full.profiles), queries=len(world.queries),
        samples_full=full.samples, samples_precise=precise.samples,
        stage_calls_full=full.stage_calls, stage_calls_precise=precise.stage_calls,
        wall_seconds_full=wall_full, wall_seconds_precise=wall_precise,
        sample_ratio=precise.samples / full.samples if full.samples else 1.0,
        decision_agreement=agreement, decision_agreement_live=live_agreement,
        samples_replay=samples_replay,
        admitted_full=plan_full.admitted, admitted_precise=plan_precise.admitted,
        cost_full=plan_full.cost_per_hour, cost_precise=plan_precise.cost_per_hour,
        differing=differing)


def run_profile_bench(worlds: Sequence[tuple[str, World, str]], *, table_inputs: int,
                      seed: int, progress: Callable[[str], None] | None = None
                      ) -> ProfileReport:
    """Run :func:`run_world` on every ``(name, world, kind)``."""
    records = []
    with tempfile.TemporaryDirectory(prefix="circinus-bench-profile-") as tmp:
        for name, world, kind in worlds:
            if progress is not None:
                progress(name)
            records.append(run_world(name, world, kind=kind, table_inputs=table_inputs,
                                     seed=seed, folder=Path(tmp)))
    return ProfileReport(seed, records)
