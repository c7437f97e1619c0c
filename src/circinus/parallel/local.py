"""Executors on this machine: in this process, or on worker processes."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, TypeVar

from circinus.collector import paused
from circinus.forks import fork_context
from circinus.parallel.base import (
    BaseSearchExecutor,
    Chunk,
    ChunkRecord,
    ChunkResult,
    Progress,
    SearchJob,
    SearchRun,
    run_chunk,
)
from circinus.parallel.packed import digest, pack
from circinus.search.base import BaseSearch
from circinus.spec.models import Query

_log = logging.getLogger(__name__)
if TYPE_CHECKING:
    from circinus.forks import Context
_A = TypeVar("_A")
_R = TypeVar("_R")


class SerialExecutor(BaseSearchExecutor):
    """Every chunk in this process, one after another; registry key ``serial``.

    Without ``chunks`` the caller's search runs the whole batch as one chunk, sharing its
    estimator's memo across groups as it always has (the planner's default); with ``chunks``
    each chunk gets a fresh search, as on any other executor, which times chunks without any
    shipping.
    """

    kind = "serial"

    def __init__(self, *, chunks: int | None = None) -> None:
        super().__init__(workers=1, chunks=chunks)

    def search(self, search: BaseSearch, queries: Sequence[Query], *,
               progress: Progress | None = None, keep: bool = True) -> SearchRun:
        if self.chunks is not None:
            return super().search(search, queries, progress=progress, keep=keep)
        t0, c0 = time.perf_counter(), time.process_time()
        kernels = search.estimator.kernel_evaluations
        found = search.search(queries)
        wall = time.perf_counter() - t0
        record = ChunkRecord(0, len(queries), 0, wall, time.process_time() - c0,
                             search.estimator.kernel_evaluations - kernels,
                             f"{socket.gethostname()} pid {os.getpid()}")
        count = sum(len(qc.candidates) for qc in found)
        if not keep:
            return SearchRun((), (record,), self.kind, 1, wall, shared_search=True,
                             candidates=count, digests=(digest(pack(found)),))
        return SearchRun(tuple(found), (record,), self.kind, 1, wall, shared_search=True,
                         candidates=count)

    def run_chunks(self, job: SearchJob, chunks: Sequence[Chunk],
                   progress: Progress) -> list[ChunkResult]:
        out = []
        for chunk in chunks:
            out.append(run_chunk(job, chunk))
            progress(f"chunk {len(out)}/{len(chunks)} searched")
        return out


def _serve(work: Callable[[_A], _R], items: Sequence[_A],
           tasks: multiprocessing.connection.Connection,
           results: multiprocessing.connection.Connection) -> None:
    """A worker process of :func:`pool_imap`: ``work`` of each item it is sent (by position)
    and the result sent back (or the error that stopped it), until it is sent ``None`` or its
    parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's
    try:
        with paused():
            while (i := tasks.recv()) is not None:
                try:
                    out: tuple[bool, object] = (True, work(items[i]))
                except Exception as exc:  # the parent raises it
                    out = (False, exc)
                results.send(out)
    except (EOFError, OSError):
        pass  # the parent is gone


class _Worker:
    """One worker process of :func:`pool_imap`: its pipes and the item it holds."""

    def __init__(self, ctx: Context, target: tuple[object, ...], name: str) -> None:
        receive_task, self.tasks = ctx.Pipe(duplex=False)
        self.results, send_result = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_serve, args=(*target, receive_task, send_result),
                                daemon=True, name=name)
        self.proc.start()
        receive_task.close()
        send_result.close()
        self.item: int | None = None

    def give(self, item: int | None) -> None:
        """Hand the worker item ``item`` (``None``: nothing more, it ends)."""
        self.item = item
        # One that has died cannot take it: its sentinel says so, and it runs again.
        with suppress(OSError):
            self.tasks.send(item)

    def stop(self) -> None:
        self.tasks.close()
        self.results.close()
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()


def pool_imap(work: Callable[[_A], _R], items: Sequence[_A], width: int, *,
              name: str = "circinus-worker", label: str = "item") -> Iterator[_R]:
    """``work(item)`` of every item on ``width`` worker processes (named ``name-N``), each
    handed the next item, in order, as it finishes one; the results yielded as they come,
    while the workers go on. Forked workers inherit ``work`` and ``items``; with another
    start method they must pickle. The workers ignore Ctrl-C and run with the collector
    paused. The warning of a lost item calls it ``label`` and its position, e.g. "chunk 3".

    NOTE: not :class:`multiprocessing.pool.Pool`, which loses the task of a worker that dies
    and then waits for it forever: once in CI a plan hung there until it was killed, a
    replacement worker still waiting for a task. Here the parent waits on every busy worker's
    result pipe and process at once, with no helper threads; the item of a worker that ends
    without answering runs again on the next free worker, or in this process when no worker
    is left, and a warning is logged. An error raised by ``work`` is raised here. Every
    worker is stopped before this ends or is closed, Ctrl-C included.
    """
    ctx = fork_context()
    pending = list(reversed(range(len(items))))  # popped from the end: in order
    workers: list[_Worker] = []
    try:
        for number in range(min(width, len(items))):
            workers.append(_Worker(ctx, (work, items), f"{name}-{number}"))
            workers[-1].give(pending.pop())
        while busy := [w for w in workers if w.item is not None]:
            ready = multiprocessing.connection.wait(
                [w.results for w in busy] + [w.proc.sentinel for w in busy])
            answers = []
            for worker in busy:
                if worker.results in ready or worker.results.poll():
                    try:
                        answers.append(worker.results.recv_bytes())
                    except (EOFError, OSError):
                        pass  # ended mid-answer: as a worker that died, below
                    else:
                        worker.give(pending.pop() if pending else None)
                        continue
                if worker.proc.sentinel in ready or not worker.proc.is_alive():
                    assert worker.item is not None
                    worker.proc.join(1.0)  # its pipes close a moment before it exits
                    _log.warning("%s pid %s ended (exit code %s) without answering for %s "
                                 "%d; it runs again", worker.proc.name, worker.proc.pid,
                                 worker.proc.exitcode, label, worker.item)
                    pending.append(worker.item)
                    worker.item = None  # a busy worker takes it when it is free
            # Every worker that answered has its next item before any answer is unpickled
            # or yielded (the caller's work on one would hold up the others).
            while answers:
                ok, value = ForkingPickler.loads(answers.pop(0))
                if not ok:
                    assert isinstance(value, BaseException)
                    raise value
                yield value
        while pending:  # lost items and no busy worker left: the rest in this process
            yield work(items[pending.pop()])
    finally:
        for worker in workers:
            worker.stop()


class ProcessExecutor(BaseSearchExecutor):
    """Chunks on a pool of worker processes of this machine; registry key ``processes``.

    Each worker gets the job (the world and the batch's queries) once when it starts, a
    chunk as its queries' positions; ``workers`` defaults to the machine's cores.
    """

    kind = "processes"

    @contextmanager
    def session(self) -> Iterator[int]:
        yield self.workers or os.cpu_count() or 1

    def run_chunks(self, job: SearchJob, chunks: Sequence[Chunk],
                   progress: Progress) -> Iterator[ChunkResult]:
        if not chunks:
            return
        # NOTE: on Ctrl-C (or any error) every worker is stopped at once; they ignore SIGINT
        # themselves. The parent's collector stays paused while results arrive: unpickling
        # them makes many objects. Forked workers inherit the job; others (a spawn or
        # forkserver start) unpickle it once each.
        with paused():
            for count, result in enumerate(pool_imap(
                    partial(run_chunk, job), chunks, self.workers or os.cpu_count() or 1,
                    name="circinus-search", label="chunk"), start=1):
                progress(f"chunk {count}/{len(chunks)} searched")
                yield result


AUTO_PROCESSES_FROM = 200
"""Queries from which :class:`AutoExecutor` searches on worker processes. Measured with
``circinus plan`` on 2 cores: the search of examples/edge-cloud-vision.yaml (240 queries) took
1.6 s on two workers against 3.0 s in this process, of ``circinus gen`` worlds of 3,000, 20,000
and 100,000 queries 4.6, 8.6 and 12.3 s against 8.6, 15.3 and 15.5-17.7 s, the same plans;
starting the workers costs a few tenths of a second, which a smaller batch does not repay."""


class AutoExecutor(BaseSearchExecutor):
    """Worker processes where they help, else this process; registry key ``auto``.

    A batch of at least :data:`AUTO_PROCESSES_FROM` queries of a splittable search on a
    machine with two cores or more is searched by a :class:`ProcessExecutor` (one worker per
    core), anything else by a :class:`SerialExecutor`; the plan is the same either way (the
    executors' contract), only the time differs. The run's ``executor`` says which ran.
    """

    kind = "auto"

    def __init__(self, *, cores: int | None = None) -> None:
        super().__init__()
        self.cores = cores if cores is not None else os.cpu_count() or 1

    def choose(self, search: BaseSearch, queries: Sequence[Query]) -> BaseSearchExecutor:
        """The executor a batch of ``queries`` of ``search`` runs on."""
        if self.cores >= 2 and search.splittable and len(queries) >= AUTO_PROCESSES_FROM:
            return ProcessExecutor(workers=self.cores)
        return SerialExecutor()

    def search(self, search: BaseSearch, queries: Sequence[Query], *,
               progress: Progress | None = None, keep: bool = True) -> SearchRun:
        return self.choose(search, queries).search(search, queries, progress=progress,
                                                   keep=keep)

    def run_chunks(self, job: SearchJob, chunks: Sequence[Chunk],
                   progress: Progress) -> list[ChunkResult]:
        raise NotImplementedError("AutoExecutor.search hands the batch to the executor it "
                                  "chooses")  # pragma: no cover - search() never calls it
