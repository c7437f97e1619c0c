"""Helpers every ``circinus`` subcommand shares: error mapping, atomic writes, profiling.

Subcommand modules import this module and never :mod:`circinus.cli.main`, which imports them
(``tests/test_package_graph.py`` checks it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.text import Text

from circinus.errors import CircinusError

if TYPE_CHECKING:
    from circinus.spec.index import WorldIndex

_state = {"debug": False}
"""Set once per invocation by the ``--debug`` option of the ``circinus`` callback."""


def set_debug(debug: bool) -> None:
    """Whether :func:`guard` lets errors through with their traceback (``--debug``)."""
    _state["debug"] = debug


def guard(fn: Callable[[], Any]) -> Any:
    """Run ``fn``, turning Circinus errors into one line on stderr and an exit code."""
    try:
        return fn()
    except CircinusError as exc:
        if _state["debug"]:
            raise
        error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except OSError as exc:
        if _state["debug"]:
            raise
        error(str(exc))
        raise typer.Exit(1) from None


def error(message: str) -> None:
    """One line on stderr; the message is plain text, never rich markup."""
    line = Text.assemble(("error: ", "bold red"), " ".join(message.split()))
    Console(stderr=True, soft_wrap=True).print(line, highlight=False)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)


def measured(index: WorldIndex, store: str | None, *, quiet: bool) -> WorldIndex:
    """``index`` with what it leaves unknown measured (samples from and to the profile
    store), or ``index`` itself when nothing is unknown."""
    from circinus.spec.unknowns import needs_profiling

    if not needs_profiling(index.world):
        return index  # without loading the profiler
    from circinus.planner import default_decisions
    from circinus.profile import SqlProfileStore, default_store_url, measure_world
    from circinus.spec.validate import build_index

    db = SqlProfileStore(store or default_store_url())
    try:
        with Console(stderr=True).status("profiling (samples from the store are reused)",
                                         spinner="dots") if not quiet else _nothing():
            result = measure_world(index.world, db, decide=default_decisions)
    finally:
        db.close()
    if not quiet:
        Console(stderr=True).print(
            f"profiled: {result.samples} runs measured, {result.reused} samples reused "
            f"from {db.url}")
    return build_index(result.world)


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield
