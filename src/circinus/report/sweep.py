"""Goodput under load: every query's rate scaled, the world planned by several methods.

Each (method, load factor) pair is one independent planning run of the scaled world through
:class:`~circinus.planner.Planner` with the method's search, selector and settings
(:data:`circinus.bench.methods.METHODS`). Runs may go to worker processes (``jobs > 1``); the
result does not depend on how many, since every run is seeded and starts from the same world.

Usage::

    sweep = load_sweep(world, methods=["circinus", "infaas"], loads=[0.5, 1, 2])
    for point in sweep.points:
        print(point.method, point.load, point.goodput)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from circinus.bench.methods import METHODS
from circinus.parallel.local import pool_imap
from circinus.report.plots import LoadPoint
from circinus.spec.models import World

Progress = Callable[[str], None]
"""Called with a short description of each finished run."""

_SLOW = ("oracle", "exhaustive", "vulcan", "vulcan-alone")
"""Searches that take longest; their runs are started first so workers finish together."""


@dataclass(frozen=True)
class LoadSweep:
    """The runs of a sweep and the methods left out."""

    points: tuple[LoadPoint, ...]
    """One per (method, load) that ran, by method then load."""
    skipped: tuple[tuple[str, str], ...]
    """``(method, why)`` for each method that was not run on this world."""


def scaled(world: World, factor: float) -> World:
    """``world`` with every query's ``rate_rps`` multiplied by ``factor`` (> 0)."""
    assert factor > 0, factor
    return world.model_copy(update={"queries": [
        q.model_copy(update={"rate_rps": q.rate_rps * factor}) for q in world.queries]})


def plan_point(world: World, method: str, load: float) -> LoadPoint:
    """Plan ``world`` scaled by ``load`` with ``method`` (a key of ``METHODS``)."""
    from circinus.planner import Planner
    from circinus.spec.validate import build_index

    spec = METHODS[method]
    index = build_index(scaled(world, load))
    settings = index.world.planner.model_copy(update=spec.settings)
    start = time.monotonic()
    result = Planner(search=spec.search, selector=spec.selector, settings=settings).plan(index)
    return LoadPoint(method=method, load=load, goodput=result.goodput, admitted=result.admitted,
                     queries=len(world.queries),
                     total_weight=sum(q.weight for q in world.queries),
                     cost_per_hour=result.cost_per_hour, seconds=time.monotonic() - start)


def _plan_task(task: tuple[World, str, float]) -> LoadPoint:
    return plan_point(*task)


def load_sweep(world: World, *, methods: Sequence[str], loads: Sequence[float], jobs: int = 1,
               progress: Progress | None = None) -> LoadSweep:
    """Plan ``world`` at every load factor with every method; see the module note.

    A method whose ``max_queries`` the world exceeds is skipped (and said so). ``world`` must
    not need profiling (pass the measured world).
    """
    unknown = [m for m in methods if m not in METHODS]
    assert not unknown, unknown
    runnable, skipped = [], []
    for m in methods:
        cap = METHODS[m].max_queries
        if cap is not None and len(world.queries) > cap:
            skipped.append((m, f"more than {cap} queries"))
        else:
            runnable.append(m)
    tasks = [(m, load) for m in runnable for load in loads]
    tasks.sort(key=lambda t: METHODS[t[0]].search not in _SLOW)  # stable: slow ones first
    points: list[LoadPoint] = []

    def done(point: LoadPoint) -> None:
        points.append(point)
        if progress is not None:
            progress(f"{point.method} at {point.load:g}× load: goodput {point.goodput:g} "
                     f"({point.seconds:.1f} s) [{len(points)}/{len(tasks)}]")

    if jobs <= 1 or len(tasks) <= 1:
        for m, load in tasks:
            done(plan_point(world, m, load))
    else:
        # NOTE: on Ctrl-C (or any error) the workers are stopped at once; they ignore SIGINT
        # themselves, so the interrupt is the parent's alone to handle (a concurrent.futures
        # pool would first finish every queued run, minutes later). A worker that dies loses
        # no point: it is planned again (pool_imap).
        for point in pool_imap(_plan_task, [(world, m, load) for m, load in tasks], jobs,
                               name="circinus-sweep", label="sweep point"):
            done(point)
    rank = {m: i for i, m in enumerate(runnable)}
    points.sort(key=lambda p: (rank[p.method], p.load))
    return LoadSweep(tuple(points), tuple(skipped))
