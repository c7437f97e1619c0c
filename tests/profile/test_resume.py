"""An interrupted profiling run, resumed, measures no more than a fresh run had left.

The executor is deterministic (tests/profile/test_profiler.py's fake), so a fresh run and an
interrupted-then-resumed one see the same outcomes and timings: whatever they measure
differently is the profiler's doing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_profiler import ACCURACY, SETTINGS, VECTORS, FakeExecutor

from circinus.profile import SqlProfileStore
from circinus.profile.profiler import Profiler, Progress

FLOORS = [0.75, 0.9]


def _run(store: SqlProfileStore, *, stop_after: int | None = None) -> int | None:
    """Runs measured by one profiling run, or ``None`` when Ctrl-C stopped it after
    ``stop_after`` rounds."""
    rounds = 0

    def progress(_: Progress) -> None:
        nonlocal rounds
        rounds += 1
        if stop_after is not None and rounds > stop_after:
            raise KeyboardInterrupt

    try:
        result = Profiler(store, SETTINGS, progress=progress).profile(
            FakeExecutor(ACCURACY), VECTORS, FLOORS, latency_tolerance_ms=0.0)
    except KeyboardInterrupt:
        return None
    return result.samples


@pytest.mark.parametrize("stop_after", [1, 2, 3, 5, 8])
def test_resumed_run_measures_only_what_a_fresh_run_had_left(tmp_path: Path,
                                                             stop_after: int) -> None:
    fresh = _run(SqlProfileStore(str(tmp_path / "fresh.db")))
    assert fresh is not None
    store = SqlProfileStore(str(tmp_path / "interrupted.db"))
    assert _run(store, stop_after=stop_after) is None
    kept = sum(store.counts("accuracy/").values())
    assert 0 < kept < fresh
    resumed = _run(store)
    assert resumed is not None
    assert resumed <= fresh - kept, (fresh, kept, resumed)
    assert sum(store.counts("accuracy/").values()) <= fresh  # nor more in all
