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

:func:`solve_mip` calls HiGHS through highspy instead, for its MIP callbacks: the solve is
interrupted at the deadline (keeping the best solution found, where an abandoned SciPy solve
gives nothing) and when it stalls (:class:`StallRule`).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import highspy
import numpy as np
from scipy.optimize import linprog, milp
from scipy.sparse import csr_array, vstack

T = TypeVar("T")

MIN_SOLVE_S = 0.02
"""A solve is not started with less time than this left before its deadline."""
STOP_GRACE_S = 0.25
"""How long before its deadline :func:`solve_mip` interrupts HiGHS (at most a tenth of the
solve's time), so that the answer comes back before the deadline: an interrupted solve
needs a moment to hand back its incumbent, and a caller that stops waiting gets nothing."""


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


_waiting = threading.local()
"""Per thread, the jobs of the :func:`while_solving` blocks it is in (innermost last)."""


@contextlib.contextmanager
def while_solving(job: Callable[[], object]) -> Iterator[None]:
    """Run ``job`` on this thread while :func:`run_until` waits for a solver inside the
    block, else when the block ends (an error inside it included; not an interrupt): once.

    NOTE: HiGHS releases the GIL while it solves, so the thread that waits for it can do
    Python work meanwhile, on another core: work the caller needs whatever the solver answers
    (a greedy floor, memos), which must not depend on the solve, nor print to standard output
    (silenced while the solver runs). At 100,000 generated queries the goodput LP keeps
    HiGHS busy for 4-5 s while this thread would only wait.
    """
    jobs: list[Callable[[], object]] = _waiting.__dict__.setdefault("jobs", [])
    jobs.append(job)

    def left() -> bool:
        """Whether the job is still to run (taken off the list if so)."""
        for i, waiting in enumerate(jobs):
            if waiting is job:
                del jobs[i]
                return True
        return False

    try:
        yield
    except Exception:
        if left():
            job()
        raise
    except BaseException:
        left()
        raise
    if left():
        job()


def _run_one_waiting() -> bool:
    """Run the first job waiting in this thread's :func:`while_solving` blocks, if any;
    whether one ran."""
    jobs: list[Callable[[], object]] = _waiting.__dict__.setdefault("jobs", [])
    if not jobs:
        return False
    jobs.pop(0)()
    return True


def run_until(fn: Callable[[], T], deadline: float) -> T | None:
    """``fn()`` on a worker thread; its result, or ``None`` if ``deadline`` (a
    :func:`time.monotonic` instant) passes first. An exception of ``fn`` is raised here.
    Meanwhile this thread runs the jobs of the :func:`while_solving` blocks it is in."""
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
        while worker.is_alive() and _run_one_waiting():
            pass
        worker.join(max(0.0, deadline - time.monotonic()) if math.isfinite(deadline) else None)
    if error:
        raise error[0]
    return box[0] if box else None


Resolve = Callable[[np.ndarray, float], "LpSolution | None"]
"""The same LP with other right-hand sides ``b`` of its inequality rows, solved by a deadline
from the last solution's basis (``None`` when not solved in time)."""


@dataclass(frozen=True)
class LpSolution:
    """An optimal vertex of ``min c x, A x <= b, E x = f, 0 <= x <= 1`` and the duals."""

    x: np.ndarray
    objective: float
    duals: np.ndarray
    """``y >= 0`` per row of ``A``: the objective's rate of increase as ``b`` shrinks."""
    again: Resolve | None = field(default=None, compare=False, repr=False)
    """Where :func:`solve_lp` was asked to keep the solver (``warm``): the LP again with other
    ``b``, warm-started."""


def solve_lp(c: np.ndarray, a: csr_array, b: np.ndarray, *, deadline: float,
             a_eq: csr_array | None = None, b_eq: np.ndarray | None = None,
             simplex: bool = False, warm: bool = False) -> LpSolution | None:
    """Solve the LP by ``deadline`` with HiGHS's interior point method and crossover, or with
    its dual simplex if ``simplex``; either gives a vertex. ``None`` when it is not solved to
    optimality in time. With ``warm`` the solver is kept (through highspy rather than SciPy)
    and the solution's :attr:`~LpSolution.again` solves the LP for other ``b`` from its basis:
    only the right-hand sides change, so the basis stays dual feasible and HiGHS's dual
    simplex goes on from it rather than starting over (100,000 generated queries, device
    capacities lowered on 127 boxes: 0.2 s against 5.3 s cold).

    Which is faster depends on the LP: for the goodput LP at 50,000 generated queries the
    interior point method takes 7 s and the dual simplex 64 s; for the cost LPs at 10,000
    queries 3.5 s against 1.3 s (over the 7,549 admitted queries, one equality row each) and
    3.3 s against 1.8 s (over all queries, goodput held).
    """
    left = deadline - time.monotonic()
    if left < MIN_SOLVE_S:
        return None
    if warm:
        return _WarmLp(c, a, b, a_eq, b_eq, simplex).solve(b, deadline)

    def work() -> Any:
        return linprog(c, A_ub=a, b_ub=b, A_eq=a_eq, b_eq=b_eq, bounds=(0, 1),
                       method="highs-ds" if simplex else "highs-ipm",
                       options={"time_limit": left, "disp": False})

    res = run_until(work, deadline)
    if res is None or res.status != 0 or res.x is None:
        return None
    return LpSolution(np.asarray(res.x, dtype=float), float(res.fun),
                      np.maximum(-np.asarray(res.ineqlin.marginals, dtype=float), 0.0))


class _WarmLp:
    """One LP held in a highspy solver, solved again for new right-hand sides from the last
    basis (:func:`solve_lp` with ``warm``). One solve at a time: a solve abandoned at its
    deadline holds the solver until HiGHS's own time limit stops it."""

    def __init__(self, c: np.ndarray, a: csr_array, b: np.ndarray, a_eq: csr_array | None,
                 b_eq: np.ndarray | None, simplex: bool) -> None:
        self.rows = len(b)
        self.simplex = simplex
        self.model: tuple[Any, ...] | None = (c, a, a_eq, b_eq)
        self.lock = threading.Lock()
        self.h: Any = None  # made on the solver's thread, where its banner is silenced

    def _make(self, b: np.ndarray) -> Any:
        assert self.model is not None
        c, a, a_eq, b_eq = self.model
        csc = (csr_array(vstack([a, a_eq])) if a_eq is not None else csr_array(a)).tocsc()
        eq = np.zeros(0) if b_eq is None else np.asarray(b_eq, dtype=float)
        h = highspy.Highs()  # type: ignore[no-untyped-call]
        h.setOptionValue("output_flag", False)
        if self.simplex:
            h.setOptionValue("solver", "simplex")
            h.setOptionValue("simplex_strategy", 1)  # dual
        else:
            h.setOptionValue("solver", "ipm")
            h.setOptionValue("run_crossover", "on")  # a vertex and a basis to go on from
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = csc.shape[1], csc.shape[0]
        lp.col_cost_ = np.asarray(c, dtype=float)
        lp.col_lower_ = np.zeros(csc.shape[1])
        lp.col_upper_ = np.ones(csc.shape[1])
        lp.row_lower_ = np.concatenate([np.full(self.rows, -highspy.kHighsInf), eq])
        lp.row_upper_ = np.concatenate([np.asarray(b, dtype=float), eq])
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr
        lp.a_matrix_.index_ = csc.indices
        lp.a_matrix_.value_ = csc.data
        h.passModel(lp)
        self.model = None  # the solver holds it now
        return h

    def solve(self, b: np.ndarray, deadline: float) -> LpSolution | None:
        """The LP with inequality right-hand sides ``b`` by ``deadline``."""
        left = deadline - time.monotonic()
        if left < MIN_SOLVE_S:
            return None

        def work() -> LpSolution | None:
            with self.lock:
                if self.h is None:
                    h = self.h = self._make(b)
                else:
                    h = self.h
                    h.changeRowsBounds(self.rows, np.arange(self.rows, dtype=np.int32),
                                       np.full(self.rows, -highspy.kHighsInf),
                                       np.asarray(b, dtype=float))
                    h.setOptionValue("solver", "simplex")  # from the basis
                    h.setOptionValue("simplex_strategy", 1)
                # HiGHS holds its time limit against its run time summed over every run of
                # the object: a re-solve's limit counts the runs before it
                h.setOptionValue("time_limit", h.getRunTime() + max(
                    MIN_SOLVE_S, deadline - time.monotonic()))
                h.run()
                if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                    return None
                sol = h.getSolution()
                x = np.clip(np.asarray(sol.col_value, dtype=float), 0.0, 1.0)
                duals = np.asarray(sol.row_dual, dtype=float)[: self.rows]
                return LpSolution(x, float(h.getInfo().objective_function_value),
                                  np.maximum(-duals, 0.0), self.solve)

        return run_until(work, deadline)


def solve_milp(c: np.ndarray, *, deadline: float, **kwargs: Any) -> Any | None:
    """``scipy.optimize.milp(c, **kwargs)`` with HiGHS's limit at ``deadline``; its result
    (which may carry no solution), or ``None`` when the deadline passes first."""
    left = deadline - time.monotonic()
    if left < MIN_SOLVE_S:
        return None
    options = {**kwargs.pop("options", {}), "time_limit": left, "disp": False}
    return run_until(lambda: milp(c, options=options, **kwargs), deadline)


@dataclass(frozen=True)
class StallRule:
    """When a MIP solve stops for want of progress: once its incumbent (its best solution) has
    not improved for ``nodes`` branch-and-bound nodes. Nodes count work, not time, so a solve
    stops at the same point whatever the machine's load (HiGHS's MIP search is deterministic);
    the root node (presolve, cut rounds, heuristics: where most improvements are found) is
    never cut short by it, only by the deadline. No solve stalls before it has an incumbent.

    Example: ``StallRule(nodes=300)`` and incumbents found at the root and at node 40: the
    solve stops at node 340 unless a better solution turns up before (which restarts the
    count from that node).
    """

    nodes: int

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError(f"a stall needs nodes >= 1, got {self.nodes}")


class StallWatch:
    """Follows one solve's progress against a :class:`StallRule` (fed by HiGHS's MIP interrupt
    callback, minimisation)."""

    def __init__(self, rule: StallRule) -> None:
        self.rule = rule
        self.best = math.inf
        self.since = 0  # the node count when the incumbent last improved
        self.stalled = False

    def see(self, primal: float, nodes: int) -> bool:
        """Record the solve's incumbent objective ``primal`` (``inf`` without one) after
        ``nodes`` nodes; whether it has stalled."""
        if primal < self.best - 1e-9 * max(1.0, abs(primal)):
            self.best, self.since = primal, nodes
            return False
        self.stalled = math.isfinite(self.best) and nodes - self.since >= self.rule.nodes
        return self.stalled


MipStatus = Literal["optimal", "stalled", "time_limit", "infeasible", "failed"]


@dataclass(frozen=True)
class MipOutcome:
    """How a :func:`solve_mip` ended: ``optimal`` (within the relative gap), ``stalled`` (the
    :class:`StallRule` stopped it), ``time_limit``, ``infeasible`` or ``failed``."""

    status: MipStatus
    x: np.ndarray | None
    """The best solution found (``None`` without one)."""
    dual_bound: float
    """Proven lower bound on the objective (``-inf`` without one)."""
    nodes: int


def solve_mip(c: np.ndarray, a: csr_array, row_upper: np.ndarray, lower: np.ndarray,
              upper: np.ndarray, *, deadline: float, rel_gap: float,
              stall: StallRule | None = None,
              start: np.ndarray | None = None) -> MipOutcome | None:
    """Minimise ``c x`` over integer ``x`` with ``a x <= row_upper`` and ``lower <= x <=
    upper`` by ``deadline``, stopping early when ``stall`` says the solve has stalled; ``start``
    is a feasible solution to begin from (another pass's answer). ``None``
    when the deadline passes before HiGHS hands back anything (the outer guard: the callback
    interrupts it just before the deadline, but HiGHS calls it only between steps of its
    search, and a presolve or an LP solve can run past)."""
    left = deadline - time.monotonic()
    if left < MIN_SOLVE_S:
        return None
    stop = deadline - min(STOP_GRACE_S, 0.1 * left)  # time for HiGHS to return its answer
    csc = a.tocsc()
    watch = StallWatch(stall) if stall is not None else None

    def check(event: Any) -> None:
        out = event.data_out
        if time.monotonic() >= stop or (watch is not None and watch.see(
                float(out.mip_primal_bound), int(out.mip_node_count))):
            event.interrupt()

    def work() -> MipOutcome:
        h = highspy.Highs()  # type: ignore[no-untyped-call]
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", max(MIN_SOLVE_S, stop - time.monotonic()))
        h.setOptionValue("mip_rel_gap", rel_gap)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = csc.shape[1], csc.shape[0]
        lp.col_cost_ = np.asarray(c, dtype=float)
        lp.col_lower_ = np.asarray(lower, dtype=float)
        lp.col_upper_ = np.asarray(upper, dtype=float)
        lp.row_lower_ = np.full(csc.shape[0], -highspy.kHighsInf)
        lp.row_upper_ = np.asarray(row_upper, dtype=float)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr
        lp.a_matrix_.index_ = csc.indices
        lp.a_matrix_.value_ = csc.data
        lp.integrality_ = [highspy.HighsVarType.kInteger] * csc.shape[1]
        h.passModel(lp)
        if start is not None:
            given = highspy.HighsSolution()
            given.col_value = np.asarray(start, dtype=float)
            h.setSolution(given)
        h.cbMipInterrupt.subscribe(check)
        h.run()
        info = h.getInfo()
        model = h.getModelStatus()
        x = (np.asarray(h.getSolution().col_value, dtype=float)
             if info.primal_solution_status == 2 else None)  # 2: feasible
        status: MipStatus
        if model == highspy.HighsModelStatus.kOptimal:
            status = "optimal"
        elif model == highspy.HighsModelStatus.kInfeasible:
            status = "infeasible"
        elif model == highspy.HighsModelStatus.kInterrupt and watch is not None and watch.stalled:
            status = "stalled"
        elif model in (highspy.HighsModelStatus.kInterrupt, highspy.HighsModelStatus.kTimeLimit):
            status = "time_limit"
        else:
            status = "failed"
        bound = float(info.mip_dual_bound)
        return MipOutcome(status, x, bound if math.isfinite(bound) else -math.inf,
                          int(info.mip_node_count))

    return run_until(work, deadline)
