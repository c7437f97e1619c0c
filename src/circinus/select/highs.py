"""HiGHS (through SciPy) under a hard wall-clock deadline.

NOTE: HiGHS checks its ``time_limit`` only between phases and iterations, so a solve can end
well after it: measured at 10,000 generated queries, an interior-point LP given 0.05 s ran
1.25 s, and the MIP presolve of a dense goodput row ran 136 s against 9 s. SciPy's binding
releases the GIL while HiGHS runs, so every solve here runs on a worker thread and the
caller waits for it at most until its deadline. A solve still running then is abandoned: its
result is dropped and the caller goes on with the incumbent it already holds. HiGHS is given the
same deadline as its own limit, so an abandoned solve stops on its own soon after instead of
holding a core. The worker is not a daemon thread: a process that ends while HiGHS still runs
waits for it (C++ aborts with "terminate called without an active exception" when a daemon
thread inside HiGHS is killed at interpreter exit).

HiGHS (as bundled by SciPy) prints debug lines such as ``transformNewIntegerFeasibleSolution``
from C++ even with ``disp=False``; file descriptor 1 is silenced while the caller waits, and
given back the moment the wait ends, abandoned or not.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from scipy.optimize import linprog, milp
from scipy.sparse import csr_array

T = TypeVar("T")

MIN_SOLVE_S = 0.02
"""A solve is not started with less time than this left before its deadline."""


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence file descriptor 1 for the duration (HiGHS's stray C++ output)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def run_until(fn: Callable[[], T], deadline: float) -> T | None:
    """``fn()`` on a worker thread; its result, or ``None`` if ``deadline`` (a
    :func:`time.monotonic` instant) passes first. An exception of ``fn`` is raised here."""
    box: list[T] = []
    error: list[BaseException] = []

    def work() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # handed to the caller below
            error.append(exc)

    worker = threading.Thread(target=work, name="circinus-highs")
    with quiet_stdout():
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()) if math.isfinite(deadline) else None)
    if error:
        raise error[0]
    return box[0] if box else None


@dataclass(frozen=True)
class LpSolution:
    """An optimal vertex of ``min c x, A x <= b, E x = f, 0 <= x <= 1`` and the duals."""

    x: np.ndarray
    objective: float
    duals: np.ndarray
    """``y >= 0`` per row of ``A``: the objective's rate of increase as ``b`` shrinks."""


def solve_lp(c: np.ndarray, a: csr_array, b: np.ndarray, *, deadline: float,
             a_eq: csr_array | None = None, b_eq: np.ndarray | None = None,
             simplex: bool = False) -> LpSolution | None:
    """Solve the LP by ``deadline`` with HiGHS's interior point method and crossover, or with
    its dual simplex if ``simplex``; either gives a vertex. ``None`` when it is not solved to
    optimality in time.

    Which is faster depends on the LP: for the goodput LP at 50,000 generated queries the
    interior point method takes 7 s and the dual simplex 64 s; for the cost LPs at 10,000
    queries 3.5 s against 1.3 s (over the 7,549 admitted queries, one equality row each) and
    3.3 s against 1.8 s (over all queries, goodput held).
    """
    left = deadline - time.monotonic()
    if left < MIN_SOLVE_S:
        return None

    def work() -> Any:
        return linprog(c, A_ub=a, b_ub=b, A_eq=a_eq, b_eq=b_eq, bounds=(0, 1),
                       method="highs-ds" if simplex else "highs-ipm",
                       options={"time_limit": left, "disp": False})

    res = run_until(work, deadline)
    if res is None or res.status != 0 or res.x is None:
        return None
    return LpSolution(np.asarray(res.x, dtype=float), float(res.fun),
                      np.maximum(-np.asarray(res.ineqlin.marginals, dtype=float), 0.0))


def solve_milp(c: np.ndarray, *, deadline: float, **kwargs: Any) -> Any | None:
    """``scipy.optimize.milp(c, **kwargs)`` with HiGHS's limit at ``deadline``; its result
    (which may carry no solution), or ``None`` when the deadline passes first."""
    left = deadline - time.monotonic()
    if left < MIN_SOLVE_S:
        return None
    options = {**kwargs.pop("options", {}), "time_limit": left, "disp": False}
    return run_until(lambda: milp(c, options=options, **kwargs), deadline)
