"""``circinus profile WORLD``: measure what a world leaves unknown, keep every sample."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from circinus.cli.common import check_output, guard, write_atomic

if TYPE_CHECKING:
    from circinus.profile import Measured, Progress


def profile(
    world: Annotated[Path, typer.Argument(help="World file (.yaml, .yml or .json).")],
    store: Annotated[str | None, typer.Option(
        help="Profile store: a SQLAlchemy URL (sqlite:///file.db, postgresql+psycopg://...) or a "
        "file path. Default: $CIRCINUS_STORE, else ~/.cache/circinus/profiles.db.")] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Measure every candidate on every input (no early stop).")] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Also write the measured world (YAML) here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Run WORLD's executable pipelines on their datasets until every latency and accuracy the
    planner needs is known well enough to decide, committing each sample to the profile store
    (a rerun reuses them; an interrupted run resumes)."""

    def run() -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn
        from rich.progress import Progress as Bar

        from circinus.planner import default_decisions
        from circinus.profile import SqlProfileStore, default_store_url, measure_world
        from circinus.profile import pipelines_to_measure as to_measure
        from circinus.spec.load import load_indexed_world

        if out is not None:
            check_output(out, "--out", inputs=[world])
        w, _ = load_indexed_world(world)
        console = Console(soft_wrap=True)
        if not to_measure(w):
            if not quiet:
                console.print(f"{world}: nothing to measure (no executable operator without "
                              "a profile, no 'measured' accuracy)")
            return
        db = SqlProfileStore(store or default_store_url())
        try:
            with Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("decided · {task.fields[samples]} samples"),
                          console=console, disable=quiet, transient=False) as bar:
                tasks: dict[str, TaskID] = {}

                def progress(p: Progress) -> None:
                    if p.pipeline not in tasks:
                        tasks[p.pipeline] = bar.add_task(p.pipeline, total=p.total, samples=0)
                    bar.update(tasks[p.pipeline], completed=p.decided, total=p.total,
                               samples=p.samples)

                measured = measure_world(w, db, full=full, progress=progress,
                                         decide=default_decisions)
        finally:
            db.close()
        if out is not None:
            write_atomic(out, _to_yaml(measured))
        if not quiet:
            _render(console, measured, db.display_url)
            if out is not None:
                console.print(f"measured world written to {out}")

    guard(run, interrupted="interrupted; every sample measured so far is in the store, and "
          "a rerun resumes from them")


def _to_yaml(measured: Measured) -> str:
    import yaml

    data = measured.world.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, width=100).rstrip()


def _render(console: Console, measured: Measured, url: str) -> None:
    from rich.table import Table

    for prof in measured.profiles:
        table = Table(title=f"pipeline {prof.pipeline}: accuracy per configuration vector",
                      title_justify="left")
        for col in ("vector", "inputs", "accuracy", "interval", "verdict"):
            table.add_column(col, justify="right" if col in ("inputs", "accuracy") else "left")
        for vector, arm in prof.accuracy.items():
            iv = arm.interval(0.01)
            table.add_row(" | ".join(",".join(map(str, c)) or "-" for c in vector), str(arm.n),
                          f"{arm.mean:.4f}" if arm.n else "-",
                          f"[{iv.low:.3f}, {iv.high:.3f}]" if arm.n else "-", arm.verdict)
        console.print(table)
        console.print(
            f"{prof.pipeline}: {prof.samples} runs measured now, {prof.reused} samples reused "
            f"from the store, {prof.stage_calls} stage calls, {prof.wall_seconds:.1f} s")
    console.print(f"store: {url}")
