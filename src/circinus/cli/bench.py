"""``circinus bench ...``: benchmarks that print a table and write JSON."""

from __future__ import annotations

import contextlib
import functools
import json
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from circinus.bench.fidelity import FidelityRecord, FidelityReport, QueryFidelity
from circinus.bench.online import OnlineReport
from circinus.bench.scale import ScaleReport
from circinus.bench.search import Report
from circinus.bench.sharing import SharingReport
from circinus.cli.common import check_output, guard, write_atomic
from circinus.errors import SpecError
from circinus.spec.index import WorldIndex

bench_app = typer.Typer(help="Benchmarks: fixed seeds, side-by-side ratios, a table and JSON.",
                        no_args_is_help=True)

REPO = Path(__file__).resolve().parents[3]
DEFAULT_WORLDS = ("jellybean-vqa.yaml", "edge-cloud-vision.yaml", "meeting-companion.yaml")
DEFAULT_SIZES = (100, 1000, 10000)


def _fmt(x: float | int | None, spec: str = ".3g") -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return format(x, spec)


@bench_app.command("search")
def search_cmd(
    world: Annotated[list[Path] | None, typer.Option(
        "--world", help="World file (repeatable); default: the bundled examples.")] = None,
    gen: Annotated[list[int] | None, typer.Option(
        "--gen", help="Also generate a world of N queries (repeatable); default 100, 1000, "
        "10000. Use --gen 0 for none.")] = None,
    examples: Annotated[bool, typer.Option(
        "--examples/--no-examples", help="Without --world, plan the bundled examples "
        "(--no-examples: the generated worlds alone).")] = True,
    method: Annotated[list[str] | None, typer.Option(
        "--method", help="Method to run (repeatable); default: all.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of generated worlds and searches.")] = 0,
    single_query_sample: Annotated[int, typer.Option(
        help="Queries planned alone per world to time single-query planning.")] = 20,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
) -> None:
    """Compare Circinus's search with every baseline on the same worlds, in one run."""
    from circinus.bench.methods import METHODS

    def run() -> None:
        from circinus.bench.search import run_search_bench

        chosen = list(method or METHODS)
        for m in chosen:
            if m not in METHODS:
                raise SpecError(f"--method: unknown method {m!r}; choose from {sorted(METHODS)}")
        worlds = _load_worlds(world if world or examples else [], gen, seed)
        if not worlds:
            raise SpecError("--no-examples: with --gen 0 and no --world there is no world to "
                            "plan; add --world FILE or --gen N")
        console = Console()
        with _progress(console, "bench search", len(worlds) * (len(chosen) + 1)) as step:
            report = run_search_bench(worlds, chosen, seed=seed,
                                      single_query_sample=single_query_sample, progress=step)
        _render(report, console)
        if json_out is not None:
            write_atomic(json_out, json.dumps(report.to_json(), indent=2))
            console.print(f"report written to {json_out}")

    guard(run)


def _load_worlds(paths: list[Path] | None, sizes: list[int] | None, seed: int
                 ) -> list[tuple[str, WorldIndex]]:
    from circinus.spec.load import load_indexed_world

    out: list[tuple[str, WorldIndex]] = []
    for path in [REPO / "examples" / name for name in DEFAULT_WORLDS] if paths is None else paths:
        _, index = load_indexed_world(path)
        out.append((path.stem, index))
    for n in DEFAULT_SIZES if sizes is None else sizes:
        if n > 0:
            out.append((f"gen-{n}", _generated(n, seed)))
    return out


@contextlib.contextmanager
def _progress(console: Console, label: str, total: int) -> Iterator[Callable[[str], None]]:
    """A transient progress bar of ``total`` steps; yields the callback a bench calls with a
    short description before each step."""
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
            "{task.completed}/{task.total}"), TimeElapsedColumn(), console=console,
            transient=True) as bar:
        task = bar.add_task(label, total=total)

        def step(what: str) -> None:
            bar.update(task, description=what, advance=1)

        yield step


def _render(report: Report, console: Console) -> None:
    """The search bench as tables that fit 80 columns, piped or not: one table of records and
    one of ratios per world (the world is the title), short headers, no side borders."""
    worlds = list(dict.fromkeys(r.world for r in report.records))
    console.print(f"circinus bench search (seed {report.seed}). gap: below the oracle's "
                  "goodput; evals: complete plans estimated; kernel: stage and transfer "
                  "estimates.")
    for world in worlds:
        records = [r for r in report.records if r.world == world]
        table = _narrow(f"{world}: outcome")
        for col in ("method", "admitted", "goodput", "$/h", "gap", "status"):
            table.add_column(col, justify="left" if col in ("method", "status") else "right",
                             no_wrap=col != "status")
        work = _narrow(f"{world}: work")
        for col in ("method", "plan s", "search s", "select s", "evals", "kernel"):
            work.add_column(col, justify="left" if col == "method" else "right", no_wrap=True)
        for r in records:
            if r.skipped:
                table.add_row(r.method, *["-"] * 4, f"skipped: {r.skipped}")
                continue
            table.add_row(r.method, f"{r.admitted}/{r.queries}", _fmt(r.goodput, "g"),
                          _fmt(r.cost_per_hour, ".2f"),
                          "-" if r.gap_vs_oracle is None else f"{r.gap_vs_oracle:.1%}",
                          r.status or "")
            work.add_row(r.method, _fmt(r.plan_seconds, ".2f"), _fmt(r.search_seconds, ".2f"),
                         _fmt(r.select_seconds, ".2f"), _fmt(r.evaluations, ","),
                         _fmt(r.kernel_evaluations, ","))
        console.print(table)
        console.print(work)
        rows = [x for x in report.ratios if x.world == world]
        if rows:
            ratios = _narrow(f"{world}: Circinus vs baseline (> 1 favours Circinus)")
            for col in ("baseline", "goodput ×", "cost ×", "cost/query ×", "time ×",
                        "evals ×"):
                ratios.add_column(col, justify="left" if col == "baseline" else "right",
                                  no_wrap=True)
            for x in rows:
                ratios.add_row(x.baseline, _fmt(x.goodput, ".2f"), _fmt(x.cost, ".2f"),
                               _fmt(x.cost_per_query, ".2f"), _fmt(x.time, ".2f"),
                               _fmt(x.evaluations, ".2f"))
            console.print(ratios)
    if report.single_query:
        single = _narrow("Circinus, one query planned alone (cold caches)")
        for col in ("world", "sampled", "median s", "max s", "median plan space"):
            single.add_column(col, justify="left" if col == "world" else "right", no_wrap=True)
        for s in report.single_query:
            single.add_row(s.world, str(s.sampled), f"{s.median_seconds:.3f}",
                           f"{s.max_seconds:.3f}", f"{s.median_plan_space:,.0f}")
        console.print(single)


def _narrow(title: str) -> Table:
    """A table with a header rule only and one space between columns."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                 padding=(0, 1), collapse_padding=True)


@bench_app.command("scale")
def scale_cmd(
    sizes: Annotated[list[int] | None, typer.Option(
        "--sizes", help="Queries of a generated world (repeatable, 2-1000000); default 1000, "
        "10000, 50000 (add 100000 or 1000000 for the larger rows).")] = None,
    method: Annotated[list[str] | None, typer.Option(
        "--method", help="circinus (default planner: LP rounding at scale), exact (the MILP "
        "at every size, same time budget) or fcfs (repeatable); default: all three.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the worlds, searches and simulations.")
                    ] = 0,
    duration: Annotated[float, typer.Option(help="Simulated seconds per plan.")] = 60.0,
    arrivals: Annotated[int, typer.Option(
        help="Held-out queries that arrive one at a time; the median arrival is reported.")
    ] = 5,
    part_timeout: Annotated[float, typer.Option(
        help="Seconds after which a part (plan and simulation, or online start and arrivals) "
        "of one method on one size is ended and recorded as skipped.")] = 3600.0,
    parts: Annotated[list[str] | None, typer.Option(
        "--part", help="plan (plan and simulate), replan (online arrivals), search (the "
        "search on 1 and 2 worker processes, chunk times, projected makespan) or command "
        "(`circinus plan` on `circinus gen -n N` end to end, as a user runs it: wall and CPU "
        "time, peak memory, gap); repeatable; default: the first three.")] = None,
    chunks: Annotated[int, typer.Option(
        help="Chunks the search's groups are dealt into (search part).")] = 32,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the report here (rewritten after every record).")] = None,
) -> None:
    """Plan, select, re-plan one arrival, simulate and search on workers at 1,000-100,000
    queries (1,000,000 on request), and check the scale targets at 10,000 (and the command's
    at 100,000)."""

    def run() -> None:
        from circinus.bench.scale import (
            DEFAULT_PARTS,
            DEFAULT_SIZES,
            MAX_SIZE,
            METHODS,
            PARTS,
            run_scale_bench,
        )

        chosen = list(method or METHODS)
        for m in chosen:
            if m not in METHODS:
                raise SpecError(f"--method: unknown method {m!r}; choose from {sorted(METHODS)}")
        picked = list(dict.fromkeys(parts or DEFAULT_PARTS))
        for p in picked:
            if p not in PARTS:
                raise SpecError(f"--part: unknown part {p!r}; choose from {', '.join(PARTS)}")
        if not 1 <= chunks <= 10_000:
            raise SpecError(f"--chunks: must be in 1..10000, got {chunks}")
        worlds = list(sizes or DEFAULT_SIZES)
        for n in worlds:
            if not 2 <= n <= MAX_SIZE:
                raise SpecError(f"--sizes: each size must be in 2..{MAX_SIZE}, got {n}")
            if "replan" in picked and not 1 <= arrivals < n:
                raise SpecError(f"--arrivals: must be in 1..{n - 1} for --sizes {n}, got "
                                f"{arrivals}")
        if not 0 < duration <= 86_400:
            raise SpecError(f"--duration: must be > 0 and <= 86400 s, got {duration:g}")
        if seed < 0:
            raise SpecError(f"--seed: must be >= 0, got {seed}")
        if part_timeout <= 0:
            raise SpecError(f"--part-timeout: must be > 0 s, got {part_timeout:g}")
        if json_out is not None:
            check_output(json_out, "--json")

        def save(report: ScaleReport) -> None:
            if json_out is not None:
                write_atomic(json_out, json.dumps(report.to_json(), indent=2))

        console = Console()
        steps = len(worlds) * (len(chosen) * (3 * ("plan" in picked) + 2 * ("replan" in picked))
                               + 4 * ("search" in picked)
                               + 2 * ("command" in picked and "circinus" in chosen))
        with _progress(console, "bench scale", steps) as step:
            report = run_scale_bench(worlds, chosen, seed=seed, duration_s=duration,
                                     arrivals=arrivals, part_timeout_s=part_timeout,
                                     parts=picked, chunks=chunks, progress=step, partial=save)
        save(report)
        _render_scale(report, console)
        if json_out is not None:
            console.print(f"report written to {json_out}")

    guard(run)


def _render_scaling(report: ScaleReport, console: Console) -> None:
    from circinus.bench.scale_search import SCALING_COLUMNS, scaling_rows

    table = _narrow(f"search on worker processes, {report.chunks} chunks (speed-up against "
                    "serial; proj: PROJECTED from the chunk times, not measured)")
    for col in SCALING_COLUMNS:
        table.add_column(col, justify="right")
    for row in scaling_rows(report.search):
        table.add_row(*row)
    console.print(table)
    for n, why in report.search_skipped:
        console.print(f"{n:,} search: {why}")
    for r in report.search:
        console.print(
            f"{r.queries:,} search: {r.groups:,} groups, {r.candidates:,} candidates, "
            f"{'the same' if r.same_as_serial else 'NOT the same'} on workers as serial"
            f"{'' if r.gathered else ' (by digest; not gathered into this process)'}; peak "
            f"memory {r.peak_rss_mb:,.0f} MB (largest worker {r.worker_peak_rss_mb:,.0f} MB); "
            f"overhead {r.overhead_seconds:.1f} s; load {r.load_average:.1f}")


def _render_scale(report: ScaleReport, console: Console) -> None:
    table = Table(title=f"circinus bench scale (seed {report.seed}, {report.duration_s:g} s "
                  f"simulated, {report.cores} cores)")
    for col in ("queries", "method", "admitted", "predicted", "simulated", "pred err", "$/h",
                "search s", "select s", "plan s", "replan s", "status", "gap", "load"):
        table.add_column(col, justify="left" if col in ("method", "status") else "right")
    planned = [r for r in report.records
               if r.admitted is not None or r.replan_seconds is not None or r.skipped]
    for r in planned:
        table.add_row(
            f"{r.queries:,}", r.method, "-" if r.admitted is None else f"{r.admitted:,}",
            _fmt(r.predicted_goodput, ",g"), _fmt(r.simulated_goodput, ",g"),
            _fmt(r.prediction_error, "+.1%"), _fmt(r.cost_per_hour, ",.2f"),
            _fmt(r.search_seconds, ".1f"), _fmt(r.selection_seconds, ".2f"),
            _fmt(r.plan_seconds, ".1f"), _fmt(r.replan_seconds, ".3f"), r.status or "-",
            _fmt(r.gap, ".2%"), _fmt(r.load_average, ".1f"))
    if planned:
        console.print(table)
    for r in report.records:
        if r.skipped:
            console.print(f"{r.queries:,} {r.method}: {r.skipped}")
        if r.command_seconds is not None:
            console.print(
                f"{r.queries:,} `circinus plan` end to end: {r.command_seconds:.1f} s "
                f"({_fmt(r.command_cpu_seconds, '.1f')} s CPU, peak "
                f"{_fmt(r.command_peak_mb, ',.0f')} MB), admitted "
                f"{_fmt(r.command_admitted, ',')}, gap {_fmt(r.command_gap, '.2%')}, load "
                f"{_fmt(r.load_average, '.1f')}")
        if r.abandoned_solves_plan or r.abandoned_solves_replan:
            console.print(f"{r.queries:,} {r.method}: solves still running past the selection "
                          f"deadline: {r.abandoned_solves_plan or 0} after the plan, "
                          f"{r.abandoned_solves_replan or 0} during the arrivals")
    if report.search or report.search_skipped:
        _render_scaling(report, console)
    start, end = report.load_average_start, report.load_average_end
    console.print(f"load average (1, 5, 15 min): {start[0]:.2f} {start[1]:.2f} {start[2]:.2f} "
                  f"at the start, {end[0]:.2f} {end[1]:.2f} {end[2]:.2f} at the end; replan s: "
                  f"median of {report.arrivals} arrivals")
    if not report.records:
        return
    targets = Table(title="targets (circinus at 10,000 queries; the command at 100,000)")
    for col in ("target", "goal", "measured", "met"):
        targets.add_column(col)
    for t in report.targets:
        targets.add_row(t.name, t.goal, t.measured,
                        "not measured" if t.met is None else "yes" if t.met else "NO")
    console.print(targets)


SHARING_WORLDS = ("edge-cloud-vision.yaml", "meeting-companion.yaml")
SHARING_SIZES = (1000, 10000)


@bench_app.command("sharing")
def sharing_cmd(
    world: Annotated[list[Path] | None, typer.Option(
        "--world", help="World file (repeatable); default: edge-cloud-vision and "
        "meeting-companion.")] = None,
    gen: Annotated[list[int] | None, typer.Option(
        "--gen", help="Also generate a world of N queries (repeatable); default 1000, 10000."
    )] = None,
    seed: Annotated[int, typer.Option(help="Seed of generated worlds, searches and "
                                           "simulations.")] = 0,
    duration: Annotated[float, typer.Option(
        help="Simulated seconds per plan.")] = 3600.0,
    large_duration: Annotated[float, typer.Option(
        help="Simulated seconds per plan of worlds over 2,000 queries.")] = 300.0,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the report here (rewritten after every record).")] = None,
) -> None:
    """Plan every world with shared deployments and with dedicated replicas, serve both plans
    in the simulator, and compare them side by side."""

    def run() -> None:
        from circinus.bench.sharing import run_sharing_bench

        for name, value in (("--duration", duration), ("--large-duration", large_duration)):
            if not 0 < value <= 86_400:
                raise SpecError(f"{name}: must be > 0 and <= 86400 s, got {value:g}")
        if seed < 0:
            raise SpecError(f"--seed: must be >= 0, got {seed}")
        for n in gen or ():
            if not 2 <= n <= 100_000:
                raise SpecError(f"--gen: each size must be in 2..100000, got {n}")
        if json_out is not None:
            check_output(json_out, "--json")
        worlds = _lazy_worlds(world, SHARING_SIZES if gen is None else gen, seed,
                              SHARING_WORLDS)

        def save(report: SharingReport) -> None:
            if json_out is not None:
                write_atomic(json_out, json.dumps(report.to_json(), indent=2))

        console = Console()
        with _progress(console, "bench sharing", len(worlds) * 4) as step:
            report = run_sharing_bench(worlds, seed=seed, duration_s=duration,
                                       large_duration_s=large_duration, progress=step,
                                       partial=save)
        save(report)
        render_sharing(report, console)
        if json_out is not None:
            console.print(f"report written to {json_out}")

    guard(run)


def _lazy_worlds(paths: list[Path] | None, sizes: Sequence[int], seed: int,
                 defaults: Sequence[str]) -> list[tuple[str, Callable[[], WorldIndex]]]:
    """(label, loader) of every world: files are checked now, generated worlds made when
    their turn comes."""
    from circinus.spec.load import load_indexed_world

    out: list[tuple[str, Callable[[], WorldIndex]]] = []
    for path in paths or [REPO / "examples" / name for name in defaults]:
        _, index = load_indexed_world(path)
        out.append((index.world.name, functools.partial(_same, index)))
    for n in sizes:
        out.append((f"gen-{n}", functools.partial(_generated, n, seed)))
    return out


def _same(index: WorldIndex) -> WorldIndex:
    return index


def _generated(n: int, seed: int) -> WorldIndex:
    from circinus.gen import GenSpec, generate
    from circinus.spec.load import parse_world
    from circinus.spec.validate import build_index

    return build_index(parse_world(generate(GenSpec(queries=n, seed=seed)), origin=f"gen-{n}"))


def render_sharing(report: SharingReport, console: Console) -> None:
    """The bench sharing tables, one row per (world, mode): the plans, then what serving them
    measured (two tables, so each stays readable on a narrow terminal)."""
    plans = Table(title=f"circinus bench sharing: plans (seed {report.seed}, {report.cores} "
                  "cores)")
    for col in ("world", "mode", "admitted", "$/h", "$/admitted", "GPU busy/alloc", "deploy",
                "plan s"):
        plans.add_column(col, justify="left" if col in ("world", "mode") else "right")
    served = Table(title="circinus bench sharing: served (simulated)")
    for col in ("world", "mode", "sim s", "predicted", "simulated", "met SLO", "pred err",
                "load"):
        served.add_column(col, justify="left" if col in ("world", "mode") else "right")
    for r in report.records:
        plans.add_row(
            r.world, r.mode, f"{r.admitted:,}/{r.queries:,}", f"{r.cost_per_hour:,.2f}",
            _fmt(r.cost_per_admitted, ".4f"),
            f"{r.gpu_units_busy:,.1f}/{r.gpu_units_allocated:,.1f}", f"{r.deployments:,}",
            f"{r.plan_seconds:.1f}")
        served.add_row(
            r.world, r.mode, f"{r.simulated_seconds:g}", f"{r.goodput:,g}",
            f"{r.simulated_goodput:,g}", _fmt(r.met_share, ".1%"),
            _fmt(r.prediction_error, "+.1%"), f"{r.load_average:.1f}")
    console.print(plans)
    console.print(served)
    start, end = report.load_average_start, report.load_average_end
    console.print(f"load average (1, 5, 15 min): {start[0]:.2f} {start[1]:.2f} {start[2]:.2f} "
                  f"at the start, {end[0]:.2f} {end[1]:.2f} {end[2]:.2f} at the end")


FIDELITY_WORLDS = ("jellybean-vqa.yaml", "edge-cloud-vision.yaml", "meeting-companion.yaml",
                   "camera-objects.yaml", "fusion-join.yaml", "gpu-shares.yaml")


@bench_app.command("fidelity")
def fidelity_cmd(
    world: Annotated[list[Path] | None, typer.Option(
        "--world", help="World file (repeatable); default: jellybean-vqa, edge-cloud-vision, "
        "meeting-companion, camera-objects, fusion-join and gpu-shares.")] = None,
    per_kind: Annotated[int, typer.Option(
        "--per-kind", help="Generated fidelity worlds of each kind (tandem, uplink, join, "
        "mixed, fanout, branch, sources, shares), seeds seed, seed + 1, ...")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the generated worlds, the planner and "
                                           "the simulations.")] = 0,
    duration: Annotated[float, typer.Option(
        help="Simulated seconds per plan, at least (longer where an admitted query's rate is "
        "too low for its SLO percentile to rest on enough requests, up to 86400).")] = 3600.0,
    rejected: Annotated[int, typer.Option(
        help="Queries rejected on latency tried again per world, at their nearest admissible "
        "bound.")] = 5,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the report here (rewritten after every world).")] = None,
) -> None:
    """Predicted against simulated latency at each admitted query's SLO percentile, the share
    of admitted queries meeting their SLO, and rejected queries that would have met theirs."""

    def run() -> None:
        from circinus.bench.fidelity import run_fidelity_bench
        from circinus.bench.fidelity_worlds import KINDS

        if not 0 < duration <= 86_400:
            raise SpecError(f"--duration: must be > 0 and <= 86400 s, got {duration:g}")
        if seed < 0:
            raise SpecError(f"--seed: must be >= 0, got {seed}")
        if not 0 <= per_kind <= 100:
            raise SpecError(f"--per-kind: must be in 0..100, got {per_kind}")
        if not 0 <= rejected <= 1000:
            raise SpecError(f"--rejected: must be in 0..1000, got {rejected}")
        if json_out is not None:
            check_output(json_out, "--json", inputs=list(world or ()))
        worlds: list[tuple[str, Callable[[], WorldIndex]]] = [
            (f"{kind}-{seed + k}", functools.partial(_fidelity, kind, seed + k))
            for k in range(per_kind) for kind in KINDS]
        worlds += _lazy_worlds(world, (), seed, FIDELITY_WORLDS)

        def save(report: FidelityReport) -> None:
            if json_out is not None:
                write_atomic(json_out, json.dumps(report.to_json(), indent=2))

        console = Console()
        with _progress(console, "bench fidelity", len(worlds) * (1 + rejected)) as step:
            report = run_fidelity_bench(worlds, seed=seed, duration_s=duration,
                                        rejected=rejected, progress=step, partial=save)
        save(report)
        render_fidelity(report, console)
        if json_out is not None:
            console.print(f"report written to {json_out}")

    guard(run)


def _fidelity(kind: str, seed: int) -> WorldIndex:
    from circinus.bench.fidelity_worlds import fidelity_world
    from circinus.spec.load import parse_world
    from circinus.spec.validate import build_index

    return build_index(parse_world(fidelity_world(kind, seed), origin=f"fidelity-{kind}"))


MISSES_SHOWN = 15
"""Queries outside the tolerance (or missing their SLO) listed below the summary, worst first."""


def render_fidelity(report: FidelityReport, console: Console) -> None:
    """One row per world, then the admitted queries predicted worst (each table narrow enough
    for an 80-column terminal)."""
    from circinus.bench.fidelity import TARGET_MET, TARGET_WITHIN

    table = Table(title=f"circinus bench fidelity (seed {report.seed}, at least "
                  f"{report.duration_s:g} s simulated)")
    for col in ("world", "admitted", "met SLO", f"±{report.tolerance:.0%}", "median",
                "worst", "rej→met", "ok"):
        table.add_column(col, justify="left" if col == "world" else "right",
                         overflow="fold")
    for r in report.records:
        table.add_row(
            r.world, f"{r.admitted}/{r.queries}", _fmt(r.met_share, ".1%"),
            _fmt(r.within_share, ".1%"), _fmt(r.median_error, "+.1%"),
            _fmt(r.worst_error, "+.1%"), f"{r.would_have_met}/{r.checked}",
            "yes" if r.targets_met else "NO")
    console.print(table)
    console.print(f"targets per world: met SLO >= {TARGET_MET:.0%}, predicted within "
                  f"{report.tolerance:.0%} of simulated >= {TARGET_WITHIN:.0%} (error = "
                  "(predicted - simulated) / simulated at the SLO percentile); rej→met: "
                  "queries rejected on latency that met their bound when planned at their "
                  "nearest admissible one, of those tried")
    longer = [f"{r.world} {r.simulated_seconds / 3600:.3g} h" for r in report.records
              if r.simulated_seconds > report.duration_s]
    if longer:
        console.print("simulated longer, for enough requests beyond each admitted query's "
                      f"percentile: {', '.join(longer)}")
    worst = sorted(((r.world, q) for r in report.records for q in report_misses(r)),
                   key=lambda wq: -abs(wq[1].error) if wq[1].error is not None else -1e9)
    if worst:
        misses = Table(title=f"queries outside ±{report.tolerance:.0%} or missing their SLO "
                       f"({min(len(worst), MISSES_SHOWN)} of {len(worst)})")
        for col in ("world", "query", "pct", "bound", "pred", "sim", "error", "met"):
            misses.add_column(col, justify="left" if col in ("world", "query") else "right",
                              overflow="fold")
        for w, q in worst[:MISSES_SHOWN]:
            misses.add_row(w, q.query, f"p{q.percentile:g}", _fmt(q.slo_latency_ms, ".4g"),
                           _fmt(q.predicted_ms, ".4g"), _fmt(q.simulated_ms, ".4g"),
                           _fmt(q.error, "+.1%"), "yes" if q.met else "NO")
        console.print(misses)
    start, end = report.load_average_start, report.load_average_end
    console.print(f"load average (1, 5, 15 min): {start[0]:.2f} {start[1]:.2f} {start[2]:.2f} "
                  f"at the start, {end[0]:.2f} {end[1]:.2f} {end[2]:.2f} at the end")


def report_misses(record: FidelityRecord) -> list[QueryFidelity]:
    """The admitted queries of ``record`` outside the tolerance or missing their SLO."""
    from circinus.bench.fidelity import TOLERANCE

    return [q for q in record.per_query
            if not q.met or q.error is None or abs(q.error) > TOLERANCE]


EXECUTABLE_WORLDS = ("digits-edge-cloud.yaml", "ocr-branches.yaml")


@bench_app.command("online")
def online_cmd(
    world: Annotated[Path | None, typer.Option(
        "--world", help="World file; default: a generated world of --queries.")] = None,
    queries: Annotated[int, typer.Option(
        "--queries", "-n", help="Queries of the generated world (2-100000).")] = 10000,
    held_out: Annotated[int, typer.Option(
        help="Last queries of the world left out of the start; they arrive first.")] = 1,
    extra: Annotated[int, typer.Option(
        help="Copies of present queries (new names) that arrive after them.")] = 20,
    departures: Annotated[int, typer.Option(
        help="Admitted queries that leave (timed) before the copies arrive.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the generated world and the draws.")] = 0,
    selector: Annotated[str, typer.Option(
        help="Selection of the start: milp, exact, lp or fcfs.")] = "milp",
    sharing: Annotated[str | None, typer.Option(
        help="Override the world's planner.sharing: shared, dedicated or mixed.")] = None,
    time_limit: Annotated[float | None, typer.Option(
        "--time-limit", help="Override the world's planner.time_limit_s (the start's "
        "selection), s.")] = None,
    freeze_gc: Annotated[bool, typer.Option(
        "--freeze-gc/--no-freeze-gc", help="Move what exists after the start out of the "
        "garbage collector's reach, as a serving process would.")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
) -> None:
    """Start an online planner on all but the held-out queries, then time each arrival (the
    decision and, for a query that waits, its explanation) and each departure."""

    def run() -> None:
        from circinus.bench.online import run_online_bench
        from circinus.planner import SELECTORS

        if world is None and not 2 <= queries <= 100_000:
            raise SpecError(f"--queries: must be in 2..100000, got {queries}")
        for name, value in (("--extra", extra), ("--departures", departures), ("--seed", seed)):
            if value < 0:
                raise SpecError(f"{name}: must be >= 0, got {value}")
        if selector not in SELECTORS:
            raise SpecError(f"--selector: unknown selector {selector!r}; choose from "
                            f"{', '.join(sorted(SELECTORS))}")
        if sharing is not None and sharing not in ("shared", "dedicated", "mixed"):
            raise SpecError(f"--sharing: must be shared, dedicated or mixed, got {sharing!r}")
        if time_limit is not None and not 0 < time_limit <= 86_400:
            raise SpecError(f"--time-limit: must be > 0 and <= 86400 s, got {time_limit:g}")
        if json_out is not None:
            check_output(json_out, "--json", inputs=[world])
        if world is not None:
            from circinus.spec.load import load_indexed_world

            _, index = load_indexed_world(world)
            name = world.stem
        else:
            index, name = _generated(queries, seed), f"gen-{queries}"
        total = len(index.world.queries)
        if not 1 <= held_out < total:
            raise SpecError(f"--held-out: must be in 1..{total - 1} (the world has {total} "
                            f"queries), got {held_out}")
        console = Console()
        console.print(f"{name}: starting an online planner on {total - held_out:,} queries ...")
        report = run_online_bench(name, index, held_out=held_out, extra=extra,
                                  departures=departures, seed=seed, freeze_gc=freeze_gc,
                                  selector=selector, sharing=sharing,  # type: ignore[arg-type]
                                  time_limit_s=time_limit)
        render_online(report, console)
        if json_out is not None:
            write_atomic(json_out, json.dumps(report.to_json(), indent=2))
            console.print(f"report written to {json_out}")

    guard(run)


def render_online(report: OnlineReport, console: Console) -> None:
    """The arrivals, then the start and the summary."""
    t = Table(title=f"Arrivals into {report.world} ({report.sharing})")
    for col in ("query", "outcome", "moved", "decision ms", "why-not ms"):
        t.add_column(col, overflow="fold")
    for a in report.arrivals:
        t.add_row(a.query, "admitted" if a.admitted else "waits", f"{a.moved}",
                  f"{a.decision_seconds * 1e3:.0f}", f"{a.explain_seconds * 1e3:.0f}")
    console.print(t)
    console.print(f"start: {report.start_seconds:.1f} s, {report.start_admitted:,} admitted, "
                  f"{report.start_deployments:,} shared deployments, "
                  f"{report.start_cost_per_hour:,.2f} $/h; collector frozen: {report.gc_frozen}")
    if report.departure_seconds:
        console.print(f"{len(report.departure_seconds)} departures: max "
                      f"{max(report.departure_seconds) * 1e3:.1f} ms")
    summary = report.summary()
    console.print("decision median {:.0f} ms, p90 {:.0f} ms, max {:.0f} ms; with why-not "
                  "median {:.0f} ms, max {:.0f} ms".format(
                      *(summary[k] * 1e3 for k in ("decision_median_s", "decision_p90_s",
                                                   "decision_max_s", "total_median_s",
                                                   "total_max_s"))))


@bench_app.command("profile")
def profile_cmd(
    world: Annotated[list[Path] | None, typer.Option(
        "--world", help="World file (repeatable): executable worlds are measured for real, "
        "others get outcomes drawn from their tables. Default: the bundled examples.")] = None,
    inputs: Annotated[int, typer.Option(
        min=10, help="Stand-in inputs per pipeline of a table-driven world (ImageNet's "
        "validation set has 50,000).")] = 10000,
    max_inputs: Annotated[int | None, typer.Option(
        min=10, help="Use only the first inputs of each executable dataset (quick runs).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the input order and the drawn outcomes.")
                    ] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
) -> None:
    """Compare precision-aware profiling with full profiling (every candidate on every input):
    samples, wall time, and whether the plans made from either agree."""

    def run() -> None:
        from circinus.bench.profile import run_profile_bench
        from circinus.profile import pipelines_to_measure
        from circinus.spec.load import load_world

        paths = world or [REPO / "examples" / n for n in (*EXECUTABLE_WORLDS, *DEFAULT_WORLDS)]
        worlds = []
        for path in paths:
            w = load_world(path)
            kind = "executable" if pipelines_to_measure(w) else "table"
            settings = w.profiling
            if kind == "executable" and max_inputs is not None:
                settings = settings.model_copy(update={"max_inputs": max_inputs})
            planner = w.planner.model_copy(update={"seed": seed})
            worlds.append((path.stem, w.model_copy(update={"profiling": settings,
                                                           "planner": planner}), kind))
        console = Console()
        if not console.is_terminal:  # a file or a pipe: the whole table, not squeezed to 80
            console = Console(width=200)
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
                "{task.completed}/{task.total}"), TimeElapsedColumn(), console=console,
                transient=True) as bar:
            task = bar.add_task("bench profile", total=len(worlds))

            def step(what: str) -> None:
                bar.update(task, description=f"profiling {what} (full, then precision-aware)",
                           completed=[w[0] for w in worlds].index(what))

            report = run_profile_bench(worlds, table_inputs=inputs, seed=seed, progress=step)
        table = Table(title=f"circinus bench profile (seed {seed})")
        for col in ("world", "kind", "inputs", "vectors", "samples full", "samples precise",
                    "sample ratio", "stage calls ratio", "wall s full", "wall s precise",
                    "decision agreement", "admitted full/precise"):
            table.add_column(col, justify="left" if col in ("world", "kind") else "right")
        for r in report.records:
            calls = r.stage_calls_precise / r.stage_calls_full if r.stage_calls_full else 1.0
            table.add_row(r.world, r.kind, f"{r.inputs:,}", str(r.vectors),
                          f"{r.samples_full:,}", f"{r.samples_precise:,}",
                          f"{r.sample_ratio:.1%}", f"{calls:.1%}",
                          f"{r.wall_seconds_full:.1f}", f"{r.wall_seconds_precise:.1f}",
                          f"{r.decision_agreement:.1%}",
                          f"{r.admitted_full}/{r.admitted_precise}")
        console.print(table)
        for r in report.records:
            if r.differing:
                console.print(f"{r.world}: plans differ for {', '.join(r.differing)}")
        if json_out is not None:
            write_atomic(json_out, json.dumps(report.to_json(), indent=2))
            console.print(f"report written to {json_out}")

    guard(run)


@bench_app.command("fuzz")
def fuzz_cmd(
    cases: Annotated[int, typer.Option(
        min=0, max=1_000_000, help="Mutated worlds to load, plan and write.")] = 10_000,
    cli_cases: Annotated[int, typer.Option(
        min=0, max=100_000, help="Runs of the installed command with random options and "
        "files (about a second each).")] = 900,
    seed: Annotated[int, typer.Option(min=0, help="Seed of every mutation.")] = 0,
    jobs: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 2,
    timeout: Annotated[float, typer.Option(
        min=1, max=3600, help="Seconds after which a case counts as a hang.")] = 60.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
) -> None:
    """Fuzz the world format and the command line from the examples (seeded): count every
    case's outcome by class and list the failures (tracebacks, hangs, silently changed data,
    non-finite plans)."""

    def run() -> None:
        from circinus.bench.fuzz import FAILURES, OUTCOMES, run_campaign

        if json_out is not None:
            check_output(json_out, "--json")
        console = Console()
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
                "{task.completed}/{task.total}"), TimeElapsedColumn(), console=console,
                transient=True) as bar:
            task = bar.add_task("fuzz", total=cases + cli_cases)
            report = run_campaign(REPO / "examples", cases=cases, cli_cases=cli_cases,
                                  seed=seed, jobs=jobs, timeout_s=timeout,
                                  progress=lambda _: bar.advance(task))
        table = Table(title=f"circinus bench fuzz (seed {seed}, {report.seconds:.0f} s)")
        table.add_column("outcome")
        table.add_column(f"worlds ({cases:,})", justify="right")
        table.add_column(f"CLI runs ({cli_cases:,})", justify="right")
        for outcome in OUTCOMES:
            mark = " ✗" if outcome in FAILURES else ""
            table.add_row(outcome + mark, f"{report.counts.get(outcome, 0):,}",
                          f"{report.cli_counts.get(outcome, 0):,}")
        console.print(table)
        for failure in report.failures[:20]:
            console.print(f"case {failure.case} ({failure.example}): {failure.outcome}: "
                          f"{'; '.join(failure.mutations)} -> {failure.detail}", markup=False,
                          highlight=False)
        if json_out is not None:
            write_atomic(json_out, json.dumps(report.to_json(), indent=2))
            console.print(f"report written to {json_out}")
        if report.failures:
            raise typer.Exit(1)

    guard(run)


@bench_app.command("service")
def service_cmd(
    world: Annotated[Path, typer.Option("--world", help="World file (YAML) the service plans; "
                                        "its queries are also the pool arrivals copy.")],
    operations: Annotated[int, typer.Option(
        min=2, max=1_000_000, help="Arrivals and departures sent in all.")] = 10_000,
    concurrency: Annotated[int, typer.Option(min=1, max=1024,
                                             help="Requests in flight at once.")] = 32,
    store: Annotated[str | None, typer.Option(
        help="Decision store URL (must be empty); default: a SQLite file in a temporary "
        "folder.")] = None,
    kill: Annotated[bool, typer.Option(
        "--kill/--no-kill", help="SIGKILL the service half way through the load, restart it "
        "and check every acknowledged decision against the store.")] = True,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the load's draws.")] = 0,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the report here (as {'runs': [...]}: runs of other worlds "
        "already in the file are kept, one of the same world replaced).")] = None,
) -> None:
    """Load `circinus service` on 127.0.0.1 with arrivals and departures (throughput, p50/p99
    latency, server errors), kill it mid-load, restart it (time to ready) and check durability
    against the client's log."""

    def run() -> None:
        import tempfile

        from circinus.bench.service import run_service_bench

        if not world.is_file():
            raise SpecError(f"--world: no file {str(world)!r}")
        if json_out is not None:
            check_output(json_out, "--json", inputs=[world])
        console = Console()
        with tempfile.TemporaryDirectory(prefix="circinus-bench-service-") as tmp:
            url = store or f"sqlite:///{Path(tmp) / 'service.db'}"
            console.print(f"{world.name}: starting the service, then {operations:,} requests at "
                          f"concurrency {concurrency} ...")
            report = run_service_bench(world, url, Path(tmp), operations=operations,
                                       concurrency=concurrency, seed=seed, kill=kill)
        render_service(report, console)
        if json_out is not None:
            runs = []
            if json_out.is_file():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    old = json.loads(json_out.read_text(encoding="utf-8"))
                    runs = [r for r in old["runs"] if r["world"] != report["world"]]
            runs = sorted([*runs, report], key=lambda r: r["queries"])
            write_atomic(json_out, json.dumps({"benchmark": "service", "runs": runs},
                                              indent=2))
            console.print(f"report written to {json_out}")

    guard(run)


def render_service(report: dict[str, Any], console: Console) -> None:
    """The load's figures, the restarts and the durability check."""
    load = report["load"]
    t = Table(title=f"Service under load: {report['world']} ({report['queries']:,} queries)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    rows = [
        ("requests (acknowledged)", f"{load['requests']:,} ({load['acknowledged']:,})"),
        ("throughput", f"{load['throughput_per_s']:.1f} decisions/s"),
        ("client latency p50 / p99", f"{load['client_p50_ms']:.0f} / "
                                     f"{load['client_p99_ms']:.0f} ms"),
        ("decision p50 / p99", f"{load['decision_p50_ms']:.1f} / "
                               f"{load['decision_p99_ms']:.1f} ms"),
        ("server errors (5xx)", str(load["server_errors"])),
        ("start to ready", f"{report['start_seconds']:.1f} s"),
        ("admitted at start / after the load", f"{report['admitted_at_start']:,} / "
                                               f"{report['admitted_after_load']:,}"),
        ("restart after kill to ready", "no kill" if report["restart_after_kill_seconds"] is None
         else f"{report['restart_after_kill_seconds']:.1f} s"),
        ("restart to ready", f"{report['restart_seconds']:.1f} s"),
        ("durability problems", str(len(report["durability_problems"]))),
    ]
    for name, value in rows:
        t.add_row(name, value)
    console.print(t)
