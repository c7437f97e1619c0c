"""From a world with unknowns to a world the planner can plan: measure, then write it down.

A world leaves estimates unknown in two ways: an operator with an ``implementation`` and no
latency profile on the profiling hardware, and a pipeline whose accuracy rule is ``measured``.
:func:`measure_world` profiles every such pipeline with the precision-aware profiler (samples
read from and committed to the profile store) and returns the same world with the measurements
written in: a latency profile per configuration of each executable operator on
``profiling.hardware``, and an accuracy table with one row per configuration vector. The
planner then runs unchanged on the measured world.

:func:`measure_tables` does the same for a table-driven world, drawing per-input outcomes from
its tables (:class:`~circinus.profile.executor.TableExecutor`); the bench uses it to compare
precision-aware with full profiling where no code can be run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from circinus.profile.executor import (
    BaseExecutor,
    LiveExecutor,
    ReplayExecutor,
    TableExecutor,
    Vector,
)
from circinus.profile.profiler import (
    PipelineProfile,
    Profiler,
    Progress,
    all_vectors,
    latency_tolerance_ms,
)
from circinus.profile.store import BaseProfileStore
from circinus.spec.index import ConfigKey, WorldIndex
from circinus.spec.models import (
    AccuracyEntry,
    AccuracyModel,
    LatencyProfile,
    Pipeline,
    World,
)
from circinus.spec.unknowns import pipelines_to_measure
from circinus.spec.validate import build_index


@dataclass(frozen=True)
class Measured:
    """A world with its measurements written in, and what measuring it took."""

    world: World
    profiles: list[PipelineProfile]

    @property
    def samples(self) -> int:
        return sum(p.samples for p in self.profiles)

    @property
    def reused(self) -> int:
        return sum(p.reused for p in self.profiles)

    @property
    def stage_calls(self) -> int:
        return sum(p.stage_calls for p in self.profiles)


def _floors(world: World, pipeline: str) -> list[float]:
    return [q.slo.min_accuracy for q in world.queries
            if q.pipeline == pipeline and q.slo.min_accuracy is not None]


def _vectors(index: WorldIndex, pipeline: str) -> list[Vector]:
    pipe = index.pipelines[pipeline]
    # Replica shares are not measured: their times follow from the profiles' (the profiler
    # runs each configuration at the machine's own allocation).
    ops = [index.operators[pipe.operator_of[s]] for s in pipe.order]
    return all_vectors([[c for c in op.configs if op.is_own(c)] for op in ops])


def measure_world(world: World, store: BaseProfileStore, *, full: bool = False,
                  progress: Callable[[Progress], None] | None = None,
                  replay: BaseProfileStore | None = None,
                  decide: Callable[[World], object] | None = None,
                  refinements: int = 4) -> Measured:
    """Profile every pipeline of ``world`` with unknown estimates on this machine (see module
    docstring); ``full`` profiles every vector on every input instead. With ``replay`` (a
    store a full run wrote), nothing runs: outcomes are read from it
    (:class:`~circinus.profile.executor.ReplayExecutor`).

    NOTE: with ``decide`` (a world -> its planning decisions, e.g. ``Planner().plan(w)
    .decisions()``), the latencies are checked against the decisions they feed: the world is
    decided with every measured latency at the low end of its interval and again at the high
    end; if the two disagree, the latency precision is halved and profiling goes on (reusing
    every sample taken), at most ``refinements`` times. Accuracies need no such check: their
    stop rule already compares with the only thresholds that matter, the accuracy floors.
    """
    index = build_index(world)
    hardware = world.profiling.hardware
    if hardware is None and pipelines_to_measure(world):
        # Validation requires it when an operator is executable; a measured accuracy alone
        # needs executable stages too.
        raise AssertionError("profiling.hardware is unset")
    settings = world.profiling
    paid: dict[str, tuple[int, int]] = {}
    reused: dict[str, int] = {}
    for attempt in range(refinements + 1):
        profiles = []
        for name in pipelines_to_measure(world):
            live = LiveExecutor(index, name, hardware=hardware or "",
                                max_inputs=settings.max_inputs, reuse_prefixes=not full)
            executor: BaseExecutor = live if replay is None else ReplayExecutor(live, replay)
            profiler = Profiler(store, settings, full=full, seed=world.planner.seed,
                                progress=progress,
                                no_costlier=_live_no_costlier(index, executor))
            floors = _floors(world, name) if index.pipelines[name].spec.accuracy.rule == (
                "measured") else []
            slos = [(q.slo.latency_ms, q.rate_rps) for q in world.queries if q.pipeline == name]
            tolerance = latency_tolerance_ms(settings.latency_precision,
                                             len(index.pipelines[name].order), slos)
            prof = profiler.profile(executor, _vectors(index, name), floors,
                                    latency_tolerance_ms=tolerance)
            before = paid.get(name, (0, 0))
            paid[name] = (before[0] + prof.samples, before[1] + prof.stage_calls)
            reused.setdefault(name, prof.reused)
            prof.samples, prof.stage_calls = paid[name]
            prof.reused = reused[name]
            profiles.append(prof)
        if full or decide is None or not profiles:
            break
        alpha = 1.0 - settings.confidence
        low = _write(world, index, profiles, latency_hardware=hardware, shift=-1.0, alpha=alpha)
        high = _write(world, index, profiles, latency_hardware=hardware, shift=1.0, alpha=alpha)
        if decide(low) == decide(high) or attempt == refinements:
            break
        settings = settings.model_copy(
            update={"latency_precision": settings.latency_precision / 2})
    return Measured(_write(world, index, profiles, latency_hardware=hardware), profiles)


def measure_tables(world: World, store: BaseProfileStore, *, inputs: int, full: bool = False,
                   seed: int = 0) -> Measured:
    """Profile the accuracy of every pipeline with an accuracy floor in a table-driven world,
    with per-input outcomes drawn from its tables over ``inputs`` stand-in inputs."""
    index = build_index(world)
    profiles = []
    for pipe in world.pipelines:
        floors = _floors(world, pipe.name)
        if not floors or pipe.accuracy.rule == "none":
            continue
        executor = TableExecutor(index, pipe.name, inputs=inputs, seed=seed)
        profiler = Profiler(store, world.profiling, full=full, seed=seed,
                            no_costlier=_table_no_costlier(index, executor))
        prof = profiler.profile(executor, _vectors(index, pipe.name),
                                [f / executor.scale for f in floors])
        prof.scale = executor.scale
        profiles.append(prof)
    return Measured(_write(world, index, profiles, latency_hardware=None), profiles)


def _write(world: World, index: WorldIndex, profiles: list[PipelineProfile], *,
           latency_hardware: str | None, shift: float = 0.0, alpha: float = 0.01) -> World:
    """``world`` with measured latencies and accuracy tables written in (latencies moved to
    an end of their intervals by ``shift``, see :meth:`PipelineProfile.latency_ms`)."""
    by_pipeline = {p.pipeline: p for p in profiles}
    # (operator, configuration) -> [(mean, cv)] over every pipeline and prefix it ran after.
    latency: dict[tuple[str, ConfigKey], list[tuple[float, float]]] = defaultdict(list)
    for prof in profiles:
        pidx = index.pipelines[prof.pipeline]
        for stage in pidx.order:
            name = pidx.operator_of[stage]
            oi = index.operators[name]
            for config in (c for c in oi.configs if oi.is_own(c)):
                latency[name, config].extend(prof.latency_ms(stage, config, shift=shift,
                                                             alpha=alpha))
    operators = []
    for op in world.operators:
        oi = index.operators[op.name]
        have = {(oi.key_of(p.config), p.hardware) for p in op.profiles}
        added = []
        for config in (c for c in oi.configs if oi.is_own(c)):
            figures = latency.get((op.name, config))
            if latency_hardware is None or not figures or (config, latency_hardware) in have:
                continue
            # NOTE: the world keeps one profile per configuration; where upstream
            # configurations change a stage's input (and so its time), the profile is the
            # average over them, each weighted equally (the per-prefix figures stay in the
            # store).
            mean = sum(m for m, _ in figures) / len(figures)
            cv = sum(c for _, c in figures) / len(figures)
            added.append(LatencyProfile(config=oi.config_dict(config), hardware=latency_hardware,
                                        mean_ms=max(mean, 1e-6), cv=cv))
        operators.append(op.model_copy(update={"profiles": [*op.profiles, *added]})
                         if added else op)
    pipelines: list[Pipeline] = []
    for pipe in world.pipelines:
        measured = by_pipeline.get(pipe.name)
        if measured is None or (pipe.accuracy.rule != "measured" and latency_hardware is not None):
            pipelines.append(pipe)
            continue
        pi = index.pipelines[pipe.name]
        rows = [AccuracyEntry(
            config={s: index.operators[pi.operator_of[s]].config_dict(c)
                    for s, c in zip(pi.order, vector, strict=True)},
            accuracy=round(arm.mean * measured.scale, 6))
            for vector, arm in measured.accuracy.items() if arm.n]
        pipelines.append(pipe.model_copy(
            update={"accuracy": AccuracyModel(rule="table", table=rows)}))
    return world.model_copy(update={"operators": operators, "pipelines": pipelines})


def _live_no_costlier(index: WorldIndex, executor: BaseExecutor
                      ) -> Callable[[Vector, Vector, Callable[[str, Vector], float | None]],
                                    bool]:
    pipe = index.pipelines[executor.pipeline]
    ops = [index.operators[pipe.operator_of[s]] for s in pipe.order]

    def no_costlier(u: Vector, v: Vector,
                    latency: Callable[[str, Vector], float | None]) -> bool:
        for stage, op, cu, cv in zip(pipe.order, ops, u, v, strict=True):
            lu, lv = latency(stage, u), latency(stage, v)
            if lu is None or lv is None or lu > lv or op.output_kb[cu] > op.output_kb[cv]:
                return False
        return True

    return no_costlier


def _table_no_costlier(index: WorldIndex, executor: BaseExecutor
                       ) -> Callable[[Vector, Vector, Callable[[str, Vector], float | None]],
                                     bool]:
    pipe = index.pipelines[executor.pipeline]
    ops = [index.operators[pipe.operator_of[s]] for s in pipe.order]
    hardware = [h.name for h in index.world.hardware]

    known: dict[tuple[Vector, Vector], bool] = {}

    def no_costlier(u: Vector, v: Vector,
                    latency: Callable[[str, Vector], float | None]) -> bool:
        if (u, v) not in known:  # tables do not change: each pair is compared once
            known[u, v] = _compare(u, v)
        return known[u, v]

    def _compare(u: Vector, v: Vector) -> bool:
        for op, cu, cv in zip(ops, u, v, strict=True):
            if op.output_kb[cu] > op.output_kb[cv]:
                return False
            for hw in hardware:
                pv = op.profiles.get((cv, hw))
                if pv is None:
                    continue
                pu = op.profiles.get((cu, hw))
                if pu is None or pu.mean_ms > pv.mean_ms or pu.units > pv.units or (
                        pu.memory_gb > pv.memory_gb) or pu.cv > pv.cv:
                    return False
        return True

    return no_costlier
