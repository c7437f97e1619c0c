"""``circinus bench scale``: plan, select, re-plan, simulate and search on workers at 1,000 to
1,000,000 queries.

NOTE: for every size a world is generated (``circinus gen``, fixed seed; generation, parsing
and validation are not timed), and every method is measured on it, one after the other (the
parts asked for: ``plan`` is steps 1-2, ``replan`` step 3, ``search`` step 4):

1. **Plan.** :meth:`Planner.plan` on the whole world with the method's selector, a fresh
   estimator and cold search caches (one-time module imports are done before).
   ``plan_seconds`` is the wall time of that call: the per-query search, building the selection
   problem, the selection, and the planner's account of every query (plans, and the binding
   resource of each rejected one; not the nearest admissible SLO). ``search_seconds`` and
   ``selection_seconds`` are its two main parts as the planner reports them
   (``selection_seconds`` includes building the problem). The selector gets the world's
   ``planner.time_limit_s`` (30 s by default) whatever the size, so a method that cannot prove
   anything in time returns its best answer at the deadline (``status`` says which).
2. **Simulate.** The plan's plan file served by the simulator (Poisson arrivals at every
   query's rate, ``duration_s`` simulated seconds, the bench's seed):
   ``simulated_goodput`` is the weight of the admitted queries that met their SLO when served.
3. **Re-plan.** An :class:`~circinus.online.OnlinePlanner` is started (with the method's
   selector) on every query but the last ``arrivals``; the collector is frozen after the start
   (:mod:`circinus.bench.online`); then the held-out queries arrive one after another, so the
   last one arrives with all the others present. ``replan_seconds`` is the median wall time of
   one arrival: its search, admission, local repair, and for a query that must wait, the nearest
   admissible SLO it is told.
4. **Search on workers** (once per size, not per method: every method searches alike). The
   per-group search serially, then dealt into chunks on 1 and 2 worker processes: the chunk
   times, the speed-ups measured, and the makespan at more workers *projected* from the
   measured chunk times (:mod:`circinus.bench.scale_search`).
5. **The command** (Circinus only, the default planner): what a user runs, ``circinus gen -n N
   --seed S --out world.yaml`` (untimed), then ``circinus plan world.yaml -q --json plan.json``
   in a process of its own, timed from its start to its exit: reading the world, the plan and
   every query's account (the nearest admissible SLO of rejected queries within its budget
   included) and writing the plan file. ``command_seconds`` is its wall time,
   ``command_cpu_seconds`` its user and system time (its worker processes' included),
   ``command_peak_mb`` its peak resident memory; admitted, bound and gap are read from the
   plan file it wrote.

Each part (steps 1-2, step 3, step 4 and step 5) runs in a fresh process of its own (spawned;
the world is generated there again, untimed), ended as soon as it has reported or after
``part_timeout_s``.
The reason: a HiGHS solve abandoned at a selection deadline goes on (:mod:`circinus.select.
highs`: HiGHS checks its own limit only between phases); at 50,000 queries the ``exact``
selector's kept a core busy for more than seven minutes after its 30 s budget, which slowed
whatever was measured after it in the same process. Ending the process ends the solve.
``abandoned_solves_plan`` counts such solves still running when the plan returned (they share
the cores with that plan's simulation only); ``abandoned_solves_replan`` those of the online
start still running after the arrivals (they ran alongside every arrival, as they would in a
serving process).

Goodputs are weighted counts of queries; ``gap`` is the selection's own
``(bound - goodput) / bound`` against the bound it proved (first-come-first-served proves none:
its bound is the weight of every query with a candidate). Each record carries the one-minute
load average when it began: on a shared machine the wall times move with it.
"""

from __future__ import annotations

import gc
import importlib
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

from circinus.bench.online import run_online_bench
from circinus.bench.scale_search import DEFAULT_CHUNKS, SearchScaling, measure_search_scaling
from circinus.plan.file import to_plan_file
from circinus.planner import Planner, PlanResult
from circinus.simulate import SimulationSettings, compile_plan, make_arrivals, simulate
from circinus.spec.index import WorldIndex

DEFAULT_SIZES = (1_000, 10_000, 50_000)
"""Sizes run by default; 1,000,000 (:data:`MAX_SIZE`) only when asked for."""
MAX_SIZE = 1_000_000
PARTS = ("plan", "replan", "search", "command")
"""The parts of the benchmark (module note): plan and simulate, re-plan, search on workers,
the ``circinus plan`` command end to end."""
DEFAULT_PARTS = PARTS[:3]
"""Parts run unless asked for (the command adds a plan per size to the default run)."""
COMMAND_QUERIES = 100_000
"""The size at which the command's target is checked."""
METHODS: dict[str, str] = {"circinus": "milp", "exact": "exact", "fcfs": "fcfs"}
"""Benchmark method -> selector key; every method uses Circinus's decomposed search."""
TARGET_QUERIES = 10_000
"""The size at which the targets are checked (on Circinus's record)."""

Progress = Callable[[str], None]
"""Called with a short description before each step."""


@dataclass(frozen=True)
class ScaleRecord:
    """One method on one generated world; ``None`` where a part was not measured."""

    queries: int
    method: str
    selector: str
    admitted: int | None = None
    candidates: int | None = None
    """Candidates of every query together (the size of the selection problem)."""
    predicted_goodput: float | None = None
    simulated_goodput: float | None = None
    prediction_error: float | None = None
    """``(predicted - simulated) / simulated`` goodput (> 0: the planner promised more; 0 when
    both are 0, ``None`` when only the simulated one is)."""
    cost_per_hour: float | None = None
    status: str | None = None
    """The selection's status: optimal, time_limit, rounded or greedy."""
    bound: float | None = None
    """The goodput bound the selection proved."""
    gap: float | None = None
    """``(bound - goodput) / bound``."""
    gap_vs_best_bound: float | None = None
    """The same against the tightest bound any method proved on this world."""
    search_seconds: float | None = None
    selection_seconds: float | None = None
    plan_seconds: float | None = None
    """Wall time of the whole plan call (module note)."""
    replan_seconds: float | None = None
    """Median wall time of one arrival, explanation included (module note)."""
    replan_decision_seconds: float | None = None
    """Median of the arrivals' decision alone (without a waiting query's explanation)."""
    replan_max_seconds: float | None = None
    replan_arrivals: int = 0
    replan_admitted: int | None = None
    online_start_seconds: float | None = None
    abandoned_solves_plan: int | None = None
    """Solver threads still running when the plan returned (module note)."""
    abandoned_solves_replan: int | None = None
    """Solver threads of the online start still running after the arrivals."""
    simulation_seconds: float | None = None
    command_seconds: float | None = None
    """Wall time of ``circinus plan`` as a user runs it (module note, step 5)."""
    command_cpu_seconds: float | None = None
    """Its user and system time, its worker processes' included."""
    command_peak_mb: float | None = None
    """Its peak resident memory, MB."""
    command_admitted: int | None = None
    command_gap: float | None = None
    """The gap its plan file reports."""
    command_stages: dict[str, float] | None = None
    """Where its wall time went, s: ``search``, ``selection`` (with its checks) and
    ``why-not`` as its plan file reports them, and ``rest`` (starting, reading the world,
    building the selection problem, the plan file) the wall time less those."""
    load_average: float | None = None
    """One-minute load average when the record began."""
    skipped: str | None = None
    """Why parts were not measured, if any were not."""


@dataclass(frozen=True)
class Target:
    """One target, checked on Circinus's record at :data:`TARGET_QUERIES` queries."""

    name: str
    goal: str
    measured: str
    met: bool | None
    """``None``: not measured (the size or the method was not run)."""


@dataclass(frozen=True)
class ScaleReport:
    """Everything ``circinus bench scale`` prints and writes."""

    seed: int
    duration_s: float
    arrivals: int
    cores: int | None
    records: tuple[ScaleRecord, ...]
    targets: tuple[Target, ...]
    load_average_start: tuple[float, float, float]
    load_average_end: tuple[float, float, float]
    complete: bool
    """False while sizes remain (the JSON is rewritten after every record)."""
    search: tuple[SearchScaling, ...] = ()
    """The search on workers, per size (step 4)."""
    search_skipped: tuple[tuple[int, str], ...] = ()
    """``(queries, why)`` for each size whose step 4 was not measured."""
    parts: tuple[str, ...] = DEFAULT_PARTS
    chunks: int = DEFAULT_CHUNKS

    def to_json(self) -> dict[str, object]:
        """Plain data for ``--json``."""
        return {"benchmark": "scale", **asdict(self)}


def generated_index(queries: int, seed: int) -> WorldIndex:
    """The generated world of ``queries`` queries, its planner seeded with ``seed``."""
    from circinus.gen import GenSpec, generate
    from circinus.spec.load import parse_world
    from circinus.spec.validate import build_index

    world = parse_world(generate(GenSpec(queries=queries, seed=seed)), origin=f"gen-{queries}")
    return build_index(world.model_copy(
        update={"planner": world.planner.model_copy(update={"seed": seed})}))


def run_scale_bench(sizes: Sequence[int], methods: Sequence[str], *, seed: int = 0,
                    duration_s: float = 60.0, arrivals: int = 5, isolate: bool = True,
                    part_timeout_s: float = 3600.0, parts: Sequence[str] = DEFAULT_PARTS,
                    chunks: int = DEFAULT_CHUNKS, progress: Progress | None = None,
                    partial: Callable[[ScaleReport], None] | None = None) -> ScaleReport:
    """Measure every method of ``methods`` on a generated world of every size, the ``parts``
    asked for (module note); ``partial`` gets the report so far after every record. With
    ``isolate`` every part runs in a process of its own, ended after ``part_timeout_s`` at
    the latest."""
    assert set(parts) <= set(PARTS), parts
    say = progress or (lambda _: None)
    begin = os.getloadavg()
    records: list[ScaleRecord] = []
    searched: list[SearchScaling] = []
    unsearched: list[tuple[int, str]] = []

    def report(rows: Sequence[ScaleRecord], complete: bool) -> ScaleReport:
        done = (*records, *with_best_bound(rows))
        return ScaleReport(seed, duration_s, arrivals, os.cpu_count(), done, targets(done),
                           begin, os.getloadavg(), complete, tuple(searched),
                           tuple(unsearched), tuple(p for p in PARTS if p in parts), chunks)

    job = _Job(seed=seed, duration_s=duration_s, arrivals=arrivals, chunks=chunks,
               part_timeout_s=part_timeout_s)
    for n in sizes:
        rows: list[ScaleRecord] = []
        for method in methods:
            mine = [p for p in ("plan", "replan") if p in parts]
            if "command" in parts and method == "circinus":  # the command plans as Circinus
                mine.append("command")
            if not mine:
                continue
            rows.append(_method_parts(job, mine, n, method, isolate, part_timeout_s, say))
            if partial is not None:
                partial(report(rows, False))
        records.extend(with_best_bound(rows))
        if "search" in parts:
            found = _run_part(job, "search", n, "circinus", isolate, part_timeout_s, say)
            if isinstance(found, SearchScaling):
                searched.append(found)
            else:
                unsearched.append((n, str(found)))
            if partial is not None:
                partial(report((), False))
    return report((), True)


def _method_parts(job: _Job, parts: Sequence[str], n: int, method: str, isolate: bool,
                  timeout_s: float, say: Progress) -> ScaleRecord:
    """The record of ``method`` on the world of ``n`` queries: its plan and replan parts,
    those asked for."""
    rec = ScaleRecord(n, method, METHODS[method])
    if "plan" in parts:
        plan = _run_part(job, "plan", n, method, isolate, timeout_s, say)
        if not isinstance(plan, ScaleRecord):
            return replace(rec, skipped=str(plan))
        rec = plan
    for part, fields in (("replan", _REPLAN_FIELDS), ("command", _COMMAND_FIELDS)):
        if part not in parts:
            continue
        more = _run_part(job, part, n, method, isolate, timeout_s, say)
        if not isinstance(more, ScaleRecord):
            why = str(more) if rec.skipped is None else f"{rec.skipped}; {more}"
            rec = replace(rec, skipped=why)
        else:
            rec = replace(rec, **{f: getattr(more, f) for f in fields})
            if rec.load_average is None:  # the command alone was asked for
                rec = replace(rec, load_average=more.load_average)
    return rec


@dataclass(frozen=True)
class _Job:
    """What every part of the benchmark is given besides its size and method."""

    seed: int
    duration_s: float
    arrivals: int
    chunks: int = DEFAULT_CHUNKS
    part_timeout_s: float = 3600.0


_REPLAN_FIELDS = ("replan_seconds", "replan_decision_seconds", "replan_max_seconds",
                  "replan_arrivals", "replan_admitted", "online_start_seconds",
                  "abandoned_solves_replan")
_COMMAND_FIELDS = ("command_seconds", "command_cpu_seconds", "command_peak_mb",
                   "command_admitted", "command_gap", "command_stages")
_SOLVER_THREAD = "circinus-highs"  # the worker threads of circinus.select.highs


def _run_part(job: _Job, part: str, queries: int, method: str, isolate: bool,
              timeout_s: float, say: Progress) -> ScaleRecord | SearchScaling | str:
    """One part (``plan``: plan and simulate; ``replan``: online start and arrivals;
    ``search``: the search on workers) on the generated world of ``queries``; its record, or
    why it has none."""
    if not isolate:
        return _part(job, part, queries, method, say)
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, job, part, queries, method),
                       name=f"circinus-bench-scale-{part}")
    proc.start()
    send.close()
    deadline = time.monotonic() + timeout_s
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not recv.poll(min(left, 1.0)):
                if not proc.is_alive() and not recv.poll(0):
                    return f"{part}: its process exited with code {proc.exitcode}"
                continue
            kind, payload = recv.recv()
            if kind == "step":
                say(payload)
            elif kind == "done":
                return cast(ScaleRecord | SearchScaling, payload)
            else:
                return f"{part} failed: {payload}"
        return f"{part}: did not finish in {timeout_s:g} s (ended)"
    except EOFError:
        return f"{part}: its process exited with code {proc.exitcode}"
    finally:
        recv.close()
        proc.kill()  # also ends any solve abandoned at a selection deadline
        proc.join()


def _child(conn: Connection, job: _Job, part: str, queries: int, method: str) -> None:
    """A part in a process of its own; everything goes back through ``conn``."""
    try:
        conn.send(("done", _part(job, part, queries, method,
                                 lambda what: conn.send(("step", what)))))
    except Exception as exc:  # reported as the record's reason
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
    os._exit(0)  # a normal exit would wait for abandoned solver threads


def _part(job: _Job, part: str, queries: int, method: str, say: Progress
          ) -> ScaleRecord | SearchScaling:
    if part == "command":
        return measure_command(queries, seed=job.seed, timeout_s=job.part_timeout_s,
                               progress=say)
    # The planner imports the profiler on its first call (seconds); not any method's time.
    importlib.import_module("circinus.profile")
    say(f"gen-{queries} {method if part != 'search' else 'search'}: generating")
    index = generated_index(queries, job.seed)
    if part == "search":
        return measure_search_scaling(index, chunks=job.chunks, progress=say)
    if part == "plan":
        return measure_plan(index, method, seed=job.seed, duration_s=job.duration_s,
                            progress=say)
    return measure_replan(index, method, seed=job.seed, arrivals=job.arrivals, progress=say)


def measure_plan(index: WorldIndex, method: str, *, seed: int, duration_s: float,
                 progress: Progress | None = None) -> ScaleRecord:
    """Plan ``index`` with ``method`` and simulate the plan (module note, steps 1 and 2)."""
    say = progress or (lambda _: None)
    n = len(index.world.queries)
    gc.collect()  # earlier garbage is not this plan's to collect
    rec = ScaleRecord(n, method, METHODS[method], load_average=os.getloadavg()[0])
    say(f"gen-{n} {method}: planning")
    t0 = time.monotonic()
    result = Planner(selector=METHODS[method]).plan(index)
    wall = time.monotonic() - t0
    sel = result.selection
    rec = replace(rec, admitted=result.admitted, predicted_goodput=result.goodput,
                  candidates=sum(o.candidates for o in result.outcomes),
                  cost_per_hour=result.cost_per_hour, status=sel.status,
                  bound=sel.goodput_bound, gap=sel.gap, search_seconds=result.search_seconds,
                  selection_seconds=result.select_seconds, plan_seconds=wall,
                  abandoned_solves_plan=_solver_threads())
    say(f"gen-{n} {method}: simulating {duration_s:g} s")
    return _simulated(rec, index, result, duration_s, seed)


def measure_command(queries: int, *, seed: int, timeout_s: float,
                    progress: Progress | None = None) -> ScaleRecord:
    """``circinus plan`` on ``circinus gen -n queries --seed seed``, as a user runs them
    (module note, step 5).

    NOTE: the command runs in a process of its own, started from this one, whose only other
    children are the generator's (already waited for when the clock starts): the user and
    system time and peak memory of this process's children after it, less before it, are the
    command's (its worker processes', if it starts any, are counted when they are waited for).

    Raises:
        RuntimeError: a command failed (its last line of output) or outlived ``timeout_s``.
    """
    say = progress or (lambda _: None)
    command = [sys.executable, "-m", "circinus"]
    with tempfile.TemporaryDirectory(prefix="circinus-bench-") as tmp:
        world, plan = Path(tmp) / "world.yaml", Path(tmp) / "plan.json"
        say(f"gen-{queries} command: circinus gen")
        _call([*command, "gen", "-n", str(queries), "--seed", str(seed), "--out", str(world)],
              timeout_s)
        say(f"gen-{queries} command: circinus plan")
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        _call([*command, "plan", str(world), "-q", "--json", str(plan)], timeout_s)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = json.loads(plan.read_text(encoding="utf-8"))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stages = {"search": result["search_seconds"], "selection": result["select_seconds"],
              "why-not": result["why_not_seconds"]}
    stages["rest"] = max(wall - sum(stages.values()), 0.0)
    return ScaleRecord(queries, "circinus", METHODS["circinus"], load_average=load,
                       command_seconds=wall, command_cpu_seconds=cpu,
                       command_peak_mb=after.ru_maxrss / 1024.0,  # KB on Linux
                       command_admitted=result["admitted"], command_gap=result["solver"]["gap"],
                       command_stages=stages)


def _call(argv: list[str], timeout_s: float) -> None:
    """Run ``argv``; its output is kept only to say why it failed."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{' '.join(argv[2:4])} did not finish in {timeout_s:g} s") from None
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{' '.join(argv[2:4])} exited with code {done.returncode}: "
                           f"{last[0]}")


def measure_replan(index: WorldIndex, method: str, *, seed: int, arrivals: int,
                   progress: Progress | None = None) -> ScaleRecord:
    """Start an online planner on all but ``arrivals`` queries of ``index``, then time their
    arrivals (module note, step 3)."""
    n = len(index.world.queries)
    if not 1 <= arrivals < n:
        raise ValueError(f"arrivals must be in 1..{n - 1}, got {arrivals}")
    if progress is not None:
        progress(f"gen-{n} {method}: online start on {n - arrivals}, then {arrivals} "
                 "arrival(s)")
    gc.collect()
    online = run_online_bench(f"gen-{n}", index, held_out=arrivals, extra=0, departures=0,
                              seed=seed, freeze_gc=True, selector=METHODS[method])
    total = [a.decision_seconds + a.explain_seconds for a in online.arrivals]
    return ScaleRecord(
        n, method, METHODS[method], replan_seconds=statistics.median(total),
        replan_decision_seconds=statistics.median(a.decision_seconds for a in online.arrivals),
        replan_max_seconds=max(total), replan_arrivals=len(online.arrivals),
        replan_admitted=sum(a.admitted for a in online.arrivals),
        online_start_seconds=online.start_seconds, abandoned_solves_replan=_solver_threads())


def _solver_threads() -> int:
    """Solves abandoned at a selection deadline that still run (module note)."""
    return sum(t.name == _SOLVER_THREAD and t.is_alive() for t in threading.enumerate())


def _simulated(rec: ScaleRecord, index: WorldIndex, result: PlanResult, duration_s: float,
               seed: int) -> ScaleRecord:
    """``rec`` with what serving ``result``'s plans measured."""
    t0 = time.monotonic()
    sim = compile_plan(index, to_plan_file(index, result))
    served = simulate(sim, arrivals=make_arrivals("poisson"),
                      settings=SimulationSettings(duration_s=duration_s, seed=seed))
    error = ((result.goodput - served.goodput) / served.goodput if served.goodput > 0
             else 0.0 if result.goodput == 0 else None)  # None: nothing met its SLO served
    return replace(rec, simulated_goodput=served.goodput, prediction_error=error,
                   simulation_seconds=time.monotonic() - t0)


def with_best_bound(rows: Sequence[ScaleRecord]) -> list[ScaleRecord]:
    """``rows`` (one world) with each goodput's gap against the tightest proven bound."""
    bounds = [r.bound for r in rows if r.bound is not None]
    if not bounds:
        return list(rows)
    best = min(bounds)
    return [r if r.predicted_goodput is None else replace(
        r, gap_vs_best_bound=(best - r.predicted_goodput) / best if best > 0 else 0.0)
        for r in rows]


def targets(records: Sequence[ScaleRecord]) -> tuple[Target, ...]:
    """The four targets at :data:`TARGET_QUERIES` queries, and the command's at
    :data:`COMMAND_QUERIES`, checked on Circinus's records."""
    ours = next((r for r in records if r.method == "circinus" and r.queries == TARGET_QUERIES),
                None)
    command = next((r for r in records if r.method == "circinus"
                    and r.queries == COMMAND_QUERIES and r.command_seconds is not None), None)

    def check(name: str, goal: str, measured: str | None, met: bool | None) -> Target:
        return Target(name, goal, "not measured" if measured is None else measured,
                      None if measured is None else met)

    if ours is None:
        ours = ScaleRecord(TARGET_QUERIES, "circinus", METHODS["circinus"])
    sel, gap, plan = ours.selection_seconds, ours.gap, ours.plan_seconds
    replan, err = ours.replan_seconds, ours.prediction_error
    predicted = None
    if ours.simulated_goodput is not None and ours.predicted_goodput is not None:
        predicted = (f"{ours.predicted_goodput:g} vs {ours.simulated_goodput:g}"
                     + ("" if err is None else f" ({err:+.1%})"))
    return (
        check("selection", "≤ 10 s with gap ≤ 1 %",
              None if sel is None or gap is None else f"{sel:.2f} s, gap {gap:.2%}",
              sel is not None and gap is not None and sel <= 10.0 and gap <= 0.01),
        check("plan + select", "≤ 30 s end to end",
              None if plan is None else f"{plan:.1f} s", plan is not None and plan <= 30.0),
        check("one arrival re-planned", "≤ 1 s (median)",
              None if replan is None else f"{replan:.3f} s",
              replan is not None and replan <= 1.0),
        check("predicted vs simulated goodput", "within 5 %", predicted,
              err is not None and abs(err) <= 0.05),
        _command_target(command),
    )


def _command_target(rec: ScaleRecord | None) -> Target:
    """``circinus plan`` end to end at :data:`COMMAND_QUERIES` queries: <= 60 s, gap <= 1 %."""
    name = f"`circinus plan`, {COMMAND_QUERIES:,} queries"
    goal = "≤ 60 s end to end with gap ≤ 1 %"
    if rec is None or rec.command_seconds is None or rec.command_gap is None:
        return Target(name, goal, "not measured", None)
    return Target(name, goal, f"{rec.command_seconds:.1f} s, gap {rec.command_gap:.2%}",
                  rec.command_seconds <= 60.0 and rec.command_gap <= 0.01)
