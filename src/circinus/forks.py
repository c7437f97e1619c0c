"""Forked copies of this process: work beside the process, or dealt over it and its copies.

A forked copy sees everything this process holds, unshipped (the world, the candidates, a
selection), so handing it work costs a fork and the pickled answer only. Each helper works the
same without forks (a platform without them, one core): what a copy would do runs here.

* :func:`beside` - one piece of work on a copy while this process goes on (the planner's
  first fit to whole replicas; the second half of a large world file being read);
* :func:`until_on_forks` - items dealt round robin over this process and copies until a
  deadline (the why-not's searches);
* :func:`fork_context`, :func:`cores` - for worker pools (:func:`circinus.parallel.local.
  pool_imap`).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from circinus.collector import paused

_log = logging.getLogger(__name__)
if TYPE_CHECKING:  # ForkContext is not there on every platform; (what fork_context gives)
    from typing import TypeAlias

    Context: TypeAlias = (
        multiprocessing.context.DefaultContext | multiprocessing.context.ForkContext)
_R = TypeVar("_R")
_K = TypeVar("_K")
_V = TypeVar("_V")


def cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def fork_context() -> Context:
    """The fork start method where the platform has it, else the default one. Forked workers
    and copies inherit what this process holds (a search's job: the world and the batch's
    queries) instead of unpickling it. Not the default start method, which a process itself
    started by spawning (as ``circinus bench scale`` runs each part) inherits: its workers
    then unpickled the job each, at 1,000,000 queries 69 s of a 163 s run on one worker,
    against 7.5 s forked."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def forking() -> bool:
    """Whether work here may go to a forked copy: the platform forks and this process may run
    on two cores or more (else :func:`beside` runs its work here)."""
    return fork_context().get_start_method() == "fork" and cores() >= 2


def _forked(ctx: Context, work: Callable[[], object], name: str,
            ) -> tuple[multiprocessing.connection.Connection, multiprocessing.process.BaseProcess]:
    """A forked copy of this process that sends ``work()`` back (it must pickle) and ends; the
    end of the pipe to receive it on, and the copy. A copy that fails ends quietly, without
    sending: its parent goes on without the answer (or works it out itself)."""
    receive, send = ctx.Pipe(duplex=False)

    def child() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's
        try:
            with paused():
                send.send(work())
            send.close()
        except BaseException:
            os._exit(1)  # quietly: the command's output stays its own

    proc = ctx.Process(target=child, daemon=True, name=name)
    proc.start()
    send.close()
    return receive, proc


def _done(receive: multiprocessing.connection.Connection,
          proc: multiprocessing.process.BaseProcess) -> None:
    """Close the pipe from a :func:`_forked` copy and stop the copy if it still runs."""
    receive.close()
    proc.join(0.1)
    if proc.is_alive():
        proc.kill()
        proc.join()


FORK_GRACE_S = 30.0
"""How long :func:`until_on_forks` waits for a forked copy's answers past the deadline (or past
its own share, when that ends later) before it stops the copy and goes on without them, and
:func:`beside`'s ``answer()`` for its copy's before it works the answer out itself."""


@contextmanager
def beside(work: Callable[[], _R], *, name: str = "circinus-beside",
           fork: bool = True) -> Iterator[Callable[[], _R]]:
    """``work()`` on a forked copy of this process (which sees everything this process holds,
    unshipped) while this one goes on; the block gets ``answer()``, which waits for the copy's
    result (it must pickle). Without ``fork``, where the platform has no fork, or on a single
    core, ``work()`` runs here before the block (as early as a copy would have started it);
    where the copy fails or has not answered :data:`FORK_GRACE_S` after being asked,
    ``answer()`` runs it here: the answer is the same, only later. A copy still running when
    the block ends is stopped.

    Example: fitting one selection to whole replicas on the second core while this process
    selects again and fits the new selection (:func:`circinus.planner.select_checked`)::

        with beside(lambda: settle(problem, first)) as first_settled:
            second = settle(problem, reselect(problem, first))
            best = better(first_settled(), second)
    """
    if not fork or not forking():
        done = work()
        yield lambda: done
        return
    receive, proc = _forked(fork_context(), work, name)

    def answer() -> _R:
        try:
            ready = multiprocessing.connection.wait([receive, proc.sentinel], FORK_GRACE_S)
            if receive in ready or receive.poll():
                return receive.recv()  # type: ignore[no-any-return]
            if ready:
                proc.join()
                _log.warning("%s pid %s ended (exit code %s) without answering; its work "
                             "runs here", name, proc.pid, proc.exitcode)
            else:
                _log.warning("%s pid %s has not answered in %g s; its work runs here", name,
                             proc.pid, FORK_GRACE_S)
        except (EOFError, OSError):
            _log.warning("%s pid %s ended without answering; its work runs here", name,
                         proc.pid)
        return work()

    try:
        yield answer
    finally:
        _done(receive, proc)


def until_on_forks(items: Sequence[Sequence[_K]], work: Callable[[Sequence[_K]], dict[_K, _V]],
                   deadline: float, *, workers: int = 1) -> dict[_K, _V]:
    """``work(item)`` for the ``items`` in order until ``deadline`` (a :func:`time.monotonic`
    instant) passes, the answers merged: dealt round robin over ``workers`` processes, this one
    and forked copies of it (which see everything this process holds, unshipped), so that
    within the same wall time about ``workers`` times as many items are done, the first ones
    first. An item is started only while the mean time of the items done before it, from its
    start, still ends before the deadline, and is finished. Each copy sends back its answers,
    which must pickle; a copy that fails, or has not answered :data:`FORK_GRACE_S` after the
    deadline, loses only its own answers (its items count as not done, and it is stopped).
    Without ``fork`` (or with one worker, or one item) all run here.

    Example: the why-not searches of a plan's rejected classes, largest first, on 2 cores:
    this process takes classes 0, 2, 4, ... and a fork 1, 3, 5, ...
    """

    def run(mine: Sequence[Sequence[_K]]) -> dict[_K, _V]:
        out: dict[_K, _V] = {}
        spent = 0.0
        for done, item in enumerate(mine):
            start = time.monotonic()
            if start + (spent / done if done else 0.0) > deadline:
                break
            out.update(work(item))
            spent += time.monotonic() - start
        return out

    width = min(workers, len(items))
    ctx = fork_context()
    if width < 2 or ctx.get_start_method() != "fork":
        return run(items)
    pipes, procs = [], []
    for w in range(1, width):
        receive, proc = _forked(ctx, partial(run, items[w::width]), f"circinus-fork-{w}")
        pipes.append(receive)
        procs.append(proc)
    out = run(items[0::width])
    # A copy finishes the item it holds at the deadline, as this process does; one that has not
    # answered FORK_GRACE_S after the deadline (or after this process's own share) is stopped:
    # a forked copy of a process with threads can hang on a lock one of them held, and the
    # command must not.
    wait_until = max(deadline, time.monotonic()) + FORK_GRACE_S
    for receive, proc in zip(pipes, procs, strict=True):
        try:
            left = max(wait_until - time.monotonic(), 0.0) if math.isfinite(wait_until) else None
            if receive.poll(left):
                out.update(receive.recv())
        except (EOFError, OSError):
            pass  # the copy failed: its items are not done
        finally:
            _done(receive, proc)
    return out
