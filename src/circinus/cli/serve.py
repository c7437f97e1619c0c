"""``circinus deploy``, ``circinus serve`` and ``circinus calibrate``: a plan on Ray Serve.

``deploy`` writes the Ray Serve config (needs nothing beyond the core install; Ray's own schema
checks it too when Ray is installed). ``serve`` and ``calibrate`` run it and need the ``ray``
extra: without it they stop with one line naming the extra.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from circinus.cli.common import check_output, guard, warn, write_atomic
from circinus.errors import SpecError

if TYPE_CHECKING:
    from circinus.plan.file import PlanFile
    from circinus.profile import Measured
    from circinus.runtime.probe import Predicted, Run
    from circinus.runtime.results import IntervalOut, Record, ServeResult
    from circinus.spec.index import WorldIndex
    from circinus.spec.models import RuntimeSettings


MAX_RUNS = 20
"""Most runs ``circinus serve --runs`` makes."""


def _load(world: Path, plan: Path, store: str | None, *, quiet: bool
          ) -> tuple[WorldIndex, PlanFile, Measured | None]:
    """The world (measured from the profile store where it leaves figures unknown), the plan
    file, and the measurements."""
    from circinus.profile import SqlProfileStore, default_store_url, measure_world
    from circinus.simulate import read_plan_file
    from circinus.spec.load import load_indexed_world
    from circinus.spec.unknowns import needs_profiling
    from circinus.spec.validate import build_index

    w, index = load_indexed_world(world)
    planfile = read_plan_file(plan)
    if not needs_profiling(w):
        return index, planfile, None
    from circinus.planner import default_decisions

    db = SqlProfileStore(store or default_store_url())
    try:
        with Console(stderr=True).status("profiling (samples from the store are reused)"):
            result = measure_world(w, db, decide=default_decisions)
    finally:
        db.close()
    if not quiet:
        Console(stderr=True).print(f"profiled: {result.samples} runs measured, "
                                   f"{result.reused} samples reused from {db.url}")
    return build_index(result.world), planfile, result


def deploy(
    world: Annotated[Path, typer.Argument(help="World file the plan was made for.")],
    plan: Annotated[Path, typer.Argument(help="Plan file written by `circinus plan --json`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Ray Serve config to write (YAML).")],
    cpus_per_unit: Annotated[float, typer.Option(
        min=0, help="CPUs a replica reserves per capacity unit (0: the device resources alone "
        "place replicas, as on the emulated cluster).")] = 0.0,
    gpus_per_unit: Annotated[float, typer.Option(
        min=0, help="GPUs a replica on a GPU device reserves per unit.")] = 0.0,
    emulate_links: Annotated[bool, typer.Option(
        "--emulate-links/--real-network",
        help="Delay messages between sites as the world's links would (for sites that are Ray "
        "nodes on one machine); --real-network on a cluster whose network is real.")] = True,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the route draws.")] = 0,
    store: Annotated[str | None, typer.Option(
        help="Profile store for executable worlds (see `circinus profile`).")] = None,
) -> None:
    """Write the Ray Serve config (`serve deploy OUT`) that runs PLAN: one Serve deployment per
    planned deployment, pinned to its device, and an ingress per pipeline."""

    def run() -> None:
        from circinus.runtime.build import DeploySettings, build_config
        from circinus.runtime.config import check_with_ray

        check_output(out, "--out", inputs=[world, plan])
        index, planfile, _ = _load(world, plan, store, quiet=True)
        config = build_config(index, planfile, origin=str(plan), settings=DeploySettings(
            cpus_per_unit=cpus_per_unit, gpus_per_unit=gpus_per_unit,
            emulate_links=emulate_links, seed=seed))
        checked = check_with_ray(config)
        write_atomic(out, yaml.safe_dump(config.to_document(), sort_keys=False, width=100))
        deps = sum(len(a.deployments) for a in config.applications)
        how = ("checked with Ray Serve's schema too" if checked
               else "Ray is not installed: checked with Circinus's schema only")
        Console(soft_wrap=True).print(f"{out}: {len(config.applications)} application(s), "
                                      f"{deps} deployments ({how}); run it with `serve "
                                      f"deploy {out}` on a running Ray cluster")

    guard(run)


def _compare(index: WorldIndex, planfile: PlanFile, measured: Measured | None,
             duration: float, seed: int, trace: str
             ) -> tuple[dict[str, float | None], float | None, dict[str, IntervalOut]]:
    """The simulator's figures for the plan, and the profiler's accuracy intervals."""
    from circinus.runtime.results import IntervalOut
    from circinus.simulate import SimulationSettings, compile_plan, make_arrivals, simulate

    sim = simulate(compile_plan(index, planfile), arrivals=make_arrivals(trace),
                   settings=SimulationSettings(duration_s=duration, seed=seed))
    simulated = {q.name: q.latency.at_slo_ms for q in sim.queries}
    profiled: dict[str, IntervalOut] = {}
    if measured is not None:
        alpha = 1.0 - index.world.profiling.confidence
        for prof in measured.profiles:
            pipe = index.pipelines[prof.pipeline]
            for q in planfile.queries:
                if not q.admitted or q.pipeline != prof.pipeline:
                    continue
                configs = {op.stage: index.operators[op.operator].key_of(op.configuration)
                           for op in q.operators}
                arm = prof.accuracy.get(tuple(configs[s] for s in pipe.order))
                if arm is not None and arm.n:
                    iv = arm.interval(alpha)
                    profiled[q.name] = IntervalOut(value=iv.point, low=iv.low, high=iv.high,
                                                   n=iv.n)
    return simulated, sim.goodput, profiled


def serve(
    world: Annotated[Path, typer.Argument(help="World file the plan was made for.")],
    plan: Annotated[Path, typer.Argument(help="Plan file written by `circinus plan --json`.")],
    address: Annotated[str | None, typer.Option(
        help="Ray cluster to serve on (nothing emulated); default: start the world's sites as "
        "Ray nodes on this machine, with emulated links.")] = None,
    duration: Annotated[float, typer.Option(help="Load time, s (warm-up included).")] = 120.0,
    warmup: Annotated[float, typer.Option(help="Leading seconds not measured.")] = 15.0,
    seed: Annotated[int, typer.Option(help="Seed of arrivals, inputs and routes.")] = 0,
    trace: Annotated[str, typer.Option(help="Arrivals: poisson or azure.")] = "poisson",
    runs: Annotated[int, typer.Option(
        help="Serve the plan this many times, each on a fresh deployment with the next seed, "
        "and report each query over all runs' requests together (and each run on its own): "
        "whole runs differ by more than their requests' sampling error.")] = 1,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Also write the result (JSON) here.")] = None,
    store: Annotated[str | None, typer.Option(
        help="Profile store for executable worlds (see `circinus profile`).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Deploy PLAN on Ray Serve, load every admitted query with its arrivals, and report its
    measured latency, SLO attainment, accuracy and goodput next to the plan's prediction and
    the simulator's figure."""

    def run() -> None:
        result, _ = _serve(world, plan, address=address, duration=duration, warmup=warmup,
                           seed=seed, trace=trace, json_out=json_out, store=store, quiet=quiet,
                           probe=False, runs=runs)
        if not quiet:
            render_serve(result, Console())

    guard(run)


def _serve(world: Path, plan: Path, *, address: str | None, duration: float, warmup: float,
           seed: int, trace: str, json_out: Path | None, store: str | None, quiet: bool,
           probe: bool, rate_scale: float = 1.0, runs: int = 1
           ) -> tuple[ServeResult, list[Record]]:
    from circinus.runtime import require_ray
    from circinus.simulate import ARRIVALS

    require_ray("circinus serve" if not probe else "circinus calibrate")
    if not 0 < duration <= 3600:
        raise SpecError(f"--duration: must be > 0 and <= 3600 s, got {duration:g}")
    if not 0 <= warmup < duration:
        raise SpecError(f"--warmup: must be >= 0 and < --duration ({duration:g} s), got "
                        f"{warmup:g}")
    if not 1 <= runs <= MAX_RUNS:
        raise SpecError(f"--runs: must be from 1 to {MAX_RUNS}, got {runs}")
    if not 0 < rate_scale <= 10:
        raise SpecError(f"--rate-scale: must be > 0 and <= 10, got {rate_scale:g}")
    if trace not in ARRIVALS:
        raise SpecError(f"--trace: unknown arrival process {trace!r}; choose from "
                        f"{', '.join(ARRIVALS)}")
    if json_out is not None:
        check_output(json_out, "--json", inputs=[world, plan])
    from circinus.runtime.build import DeploySettings
    from circinus.runtime.load import LoadSettings
    from circinus.runtime.results import Comparison
    from circinus.runtime.session import serve_plan
    from circinus.simulate import make_arrivals

    index, planfile, measured = _load(world, plan, store, quiet=quiet)
    simulated, sim_goodput, profiled = _compare(index, planfile, measured, duration, seed, trace)
    times = f"{runs} x {duration:g} s" if runs > 1 else f"{duration:g} s"
    status = Console(stderr=True).status(
        f"{'probing' if probe else 'serving'} for {times} (cluster start and deploy "
        "first)") if not quiet else None
    if status is not None:
        status.start()
    try:
        result, records = serve_plan(
            index, planfile, arrivals=make_arrivals(trace),
            load_settings=LoadSettings(duration_s=duration, warmup_s=warmup, seed=seed,
                                       rate_scale=rate_scale),
            compare=Comparison(simulated_ms=simulated, simulated_goodput=sim_goodput,
                               profiled=profiled,
                               accuracy_alpha=1.0 - index.world.profiling.confidence),
            address=address, check_answers=not probe, runs=runs, origin=str(plan),
            deploy_settings=DeploySettings(emulate_links=address is None, probe=probe))
    finally:
        if status is not None:
            status.stop()
    if json_out is not None:
        write_atomic(json_out, result.model_dump_json(indent=2))
    return result, records


def calibrate(
    world: Annotated[Path, typer.Argument(help="World file the plan was made for.")],
    plan: Annotated[Path, typer.Argument(help="Plan file written by `circinus plan --json`.")],
    duration: Annotated[float, typer.Option(help="Load time of the probe, s.")] = 60.0,
    warmup: Annotated[float, typer.Option(help="Leading seconds not measured.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Seed of arrivals, inputs and routes.")] = 0,
    address: Annotated[str | None, typer.Option(
        help="Ray cluster to probe (default: the local emulated cluster).")] = None,
    served: Annotated[bool, typer.Option(
        "--served/--probe",
        help="--probe: serve PLAN with every operator doing nothing and take what a request "
        "costs the engine alone; --served: serve PLAN itself and take what its requests took "
        "beyond its prediction (added to WORLD's runtime section).")] = False,
    write: Annotated[bool, typer.Option(
        "--write", help="Write the measured overhead into WORLD's runtime section.")] = False,
    store: Annotated[str | None, typer.Option(
        help="Profile store for executable worlds (see `circinus profile`).")] = None,
    rate_scale: Annotated[float, typer.Option(
        "--rate-scale", help="Send PLAN's request rates times this: a probe below the load "
        "at which the engine falls behind measures its overhead, not its queue.")] = 1.0,
    from_json: Annotated[list[str] | None, typer.Option(
        "--from", help="What `circinus serve WORLD PLAN --json` measured: calibrate from it "
        "instead of serving again (implies --served); repeat it to fit several runs together. "
        "RUN.json=OTHER_PLAN.json: a run of another plan of WORLD (runs of plans that call the "
        "tiers in other proportions tell the tiers' figures apart).")] = None,
) -> None:
    """Measure what serving on Ray Serve adds to every stage call, world-wide and per tier of
    the called replica's site, and print (or --write) it as WORLD's runtime section, which the
    estimator adds to every stage. By default a probe: PLAN's deployments and routes at its
    rates, every operator doing nothing, no link emulated."""

    def run() -> None:
        from circinus.runtime.probe import (
            TIERS,
            Observed,
            Run,
            calls_by_query,
            falling_behind,
            fit_runs,
            observed_of,
            overhead_of,
            write_runtime,
        )
        from circinus.simulate import read_plan_file
        from circinus.spec.load import load_world

        planfile = read_plan_file(plan)
        loaded = load_world(world)
        base = loaded.runtime
        admitted = [q for q in planfile.queries if q.admitted and q.predicted is not None]
        runs: list[Run]
        if from_json:
            served_runs = [_served_run(spec, plan, planfile, loaded.name, base)
                           for spec in from_json]
            runs = [r for r, _ in served_runs]
            results = [res for _, res in served_runs]
            result = results[0]
            how = f"served {plan.name} ({', '.join(_run_name(spec) for spec in from_json)})"
            requests = sum(r.requests for r in results)
            seconds = sum(r.duration_s - r.warmup_s for r in results)
        else:
            result, records = _serve(world, plan, address=address, duration=duration,
                                     warmup=warmup, seed=seed, trace="poisson", json_out=None,
                                     store=store, quiet=False, probe=not served,
                                     rate_scale=rate_scale)
            kept = [r for r in records if r.due_s >= warmup]
            if (behind := falling_behind(kept)) is not None:
                warn(f"the engine fell behind at these rates ({behind}); the figures describe "
                     "its queue as much as its overhead: calibrate at lower rates "
                     "(--rate-scale 0.5)")
            observed: dict[str, Observed] = observed_of(
                kept, {q.name: q.predicted.percentile for q in admitted
                       if q.predicted is not None})
            runs = [Run(observed, _predicted(planfile), base)] if served else []
            how = f"{'served' if served else 'probe of'} {plan.name}" + (
                f" at {rate_scale:g} x its rates" if rate_scale != 1.0 else "")
            requests, seconds = result.requests, result.duration_s - result.warmup_s
        note = (f"{how}: {requests} requests over {seconds:g}"
                f" s, load {result.machine.load_before:.1f}-{result.machine.load_after:.1f} on "
                f"{result.machine.cores} cores")
        if runs:
            runtime = fit_runs(runs, note=note)
        else:
            runtime = overhead_of(observed, {q.name: len(q.route) for q in admitted},
                                  calls=calls_by_query(planfile),
                                  note=note)
        console = Console(soft_wrap=True)
        console.print(yaml.safe_dump({"runtime": runtime.document()}, sort_keys=False,
                                     width=100).rstrip(), markup=False, highlight=False)
        own = runtime.tiers
        for tier in TIERS:
            if own is None or getattr(own, tier) is None:
                console.print(f"# {tier}: {_why_no_figure(tier, runs, planfile)}; its calls "
                              "keep the world-wide figure", markup=False, highlight=False)
        if write:
            write_runtime(world, runtime)
            Console().print(f"runtime section written to {world}; plan again to use it")

    guard(run)


def _predicted(planfile: PlanFile) -> dict[str, Predicted]:
    """Per admitted query of ``planfile``, what it predicted and its calls per tier."""
    from circinus.runtime.probe import Predicted, calls_by_query

    calls = calls_by_query(planfile)
    return {q.name: Predicted(len(q.route), q.predicted.latency_mean_ms or 0.0,
                              q.predicted.latency_var_ms2 or 0.0, q.predicted.latency_third_ms3,
                              calls[q.name])
            for q in planfile.queries if q.admitted and q.predicted is not None}


def _why_no_figure(tier: str, runs: list[Run], planfile: PlanFile) -> str:
    """Why the fit left ``tier`` without a figure of its own."""
    calls: list[Mapping[str, float]] = (
        [p.calls or {} for r in runs for p in r.predicted.values()] if runs else
        [{d.tier: 1.0} for d in planfile.deployments])
    if not any(c.get(tier, 0.0) > 0 for c in calls):
        return "no run calls a replica there"
    return ("the runs' queries call the tiers in the same proportions, which does not tell "
            "them apart (add a run of a plan that places stages otherwise: --from RUN=PLAN)")


def _run_name(spec: str) -> str:
    run, _, other = spec.partition("=")
    return Path(run).name + (f" of {Path(other).name}" if other else "")


def _served_run(spec: str, plan: Path, planfile: PlanFile, world_name: str,
                base: RuntimeSettings | None) -> tuple[Run, ServeResult]:
    """The run of ``--from spec`` (``RUN.json`` of PLAN, or ``RUN.json=OTHER_PLAN.json``) for
    the fit, with the figures its predictions included, and what it measured."""
    from circinus.runtime.probe import Run, observed_from_result
    from circinus.runtime.results import read_serve_result
    from circinus.simulate import read_plan_file

    path_text, _, other = spec.partition("=")
    path = Path(path_text)
    its_plan = planfile if not other else read_plan_file(other)
    result = read_serve_result(path)
    if result.world != world_name:
        raise SpecError(f"--from {path}: a run of world {result.world!r}, not of "
                        f"{world_name!r}; calibrate from runs of this world's plans")
    admitted = {q.name for q in its_plan.queries if q.admitted}
    stray = sorted(q.name for q in result.queries if q.name not in admitted)
    if stray:
        raise SpecError(f"--from {path}: served query {stray[0]!r}, which "
                        f"{Path(other).name if other else plan.name} does not admit; name the "
                        f"plan it served: --from {path}=PLAN.json")
    planned = {q.name: q.predicted.latency_ms for q in its_plan.queries
               if q.predicted is not None}
    for q in result.queries:
        then, now = q.predicted_latency_ms, planned.get(q.name)
        if then is not None and now is not None and not math.isclose(then, now, rel_tol=1e-6):
            raise SpecError(f"--from {path}: served with query {q.name!r} predicted at "
                            f"{_num(then)} ms, but {Path(other).name if other else plan.name} "
                            f"predicts {_num(now)} ms: not the plan it served; name that plan: "
                            f"--from {path}=PLAN.json")
    return Run(observed_from_result(result), _predicted(its_plan),
               _served_with(result, path, base)), result


def _served_with(result: ServeResult, path: Path, base: RuntimeSettings | None
                 ) -> RuntimeSettings | None:
    """The runtime figures ``result`` (read from ``path``) was served with, which the fit takes
    out of its plan's predictions: those it records, or, for a file that records only the
    world-wide mean (written before the per-tier figures), the world's runtime section now,
    provided its mean is the one the run recorded."""
    if result.runtime is not None:
        return result.runtime
    now = None if base is None else base.hop_mean_ms
    then = result.hop_overhead_ms
    if then is None:
        return None
    same = (now is not None and math.isclose(then, now, rel_tol=1e-6, abs_tol=1e-9)
            and base is not None and base.tiers is None)  # such a file had no tiers
    if not same:
        raise SpecError(
            f"--from {path}: served with a per-call overhead of {_num(then)} ms but the "
            f"world's runtime section says {_num(now)} ms"
            f"{' with per-tier figures' if base is not None and base.tiers else ''}; "
            "calibrate from runs of the plan "
            "made with the world as it is now (plan and serve again after a --write)")
    return base


def render_serve(result: ServeResult, console: Console) -> None:
    """Per query: measured against predicted and simulated latency, accuracy and SLO."""
    where = "local cluster, emulated links" if result.address is None else result.address
    t = Table(title=f"Served on Ray Serve ({where}): latency at the SLO percentile, ms, "
              "measured, predicted and simulated; accuracy measured (planned) over its "
              "interval")
    for col in ("query", "slo", "meas", "pred", "sim", "within", "accuracy", "met"):
        t.add_column(col, justify="left" if col == "query" else "right", no_wrap=col != "query")
    for q in result.queries:
        acc = "-" if q.accuracy is None else f"{q.accuracy.value:.3f}"
        if q.predicted_accuracy is not None:
            acc += f" ({q.predicted_accuracy:.3f})"
        if q.accuracy is not None:
            acc += f"\n{q.accuracy.low:.3f}-{q.accuracy.high:.3f}"
        t.add_row(q.name, _num(q.slo_latency_ms), _num(q.latency.at_slo_ms),
                  _num(q.predicted_latency_ms), _num(q.simulated_latency_ms),
                  "-" if q.within_slo is None else f"{q.within_slo:.1%}", acc,
                  "yes" if q.slo_met else "no")
    console.print(t)
    err = result.median_latency_error
    console.print(
        f"met {result.met}/{result.admitted} admitted (goodput {result.goodput:g}; predicted "
        f"{result.predicted_goodput:g}, simulated {_num(result.simulated_goodput)}); "
        f"{result.completed:,}/{result.requests:,} measured requests answered, "
        f"{result.dropped} dropped; median |measured - predicted| / predicted "
        f"{'-' if err is None else f'{err:.1%}'}")
    if len(result.runs) > 1:
        for i, r in enumerate(result.runs, 1):
            e = r.median_latency_error
            console.print(
                f"run {i} (seed {r.seed}): met {r.met}/{len(r.queries)}, median |measured - "
                f"predicted| / predicted {'-' if e is None else f'{e:.1%}'}, "
                f"{r.completed:,}/{r.requests:,} answered, load {r.machine.load_before:.1f} -> "
                f"{r.machine.load_after:.1f}")
    m = result.machine
    p = result.placement
    console.print(
        f"replicas on their planned node: {p.replicas - len(p.misplaced)}/{p.replicas}; "
        f"startup {result.startup_s:.0f} s; cpu busy "
        f"{m.cpu_busy:.0%} of {m.cores} cores"
        f"{'' if m.cpu_steal is None else f' ({m.cpu_steal:.0%} stolen by the host)'}, "
        f"load {m.load_before:.1f} -> {m.load_after:.1f}; "
        f"cluster memory {m.ray_memory_gb:.1f} GB")


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"
