"""The search of ``circinus bench scale`` on workers: chunk times, speed-up, projected makespan.

NOTE: on one generated world the per-group search (Circinus's decomposed search, as the
planner runs it) is run three times, one after another, each from cold caches:

1. *serial*: in this process, one search over every query (the planner's default,
   :class:`~circinus.parallel.SerialExecutor`: the estimator's memo shared by all groups);
2. *1 worker*: dealt into ``chunks`` chunks (:func:`~circinus.parallel.chunk_groups`), each
   searched by a fresh search in one worker process
   (:class:`~circinus.parallel.ProcessExecutor`), one chunk after another;
3. *2 workers*: the same chunks on two worker processes.

Each run's wall time is measured around the whole run (start-up of the workers, shipping the
job and the chunks' queries, gathering and unpickling the candidates included); each run's
candidates are compared with the serial ones (``same_as_serial``: every query's candidates,
reason and billed evaluations equal). ``speedup_1`` and ``speedup_2`` are the serial time over
the 1- and 2-worker times; the 1-worker run pays the shipping and the lost sharing of the memo
between chunks, which is what distribution costs.

The **projected** makespan at ``N`` workers is computed, not measured: the chunk times measured
in the 1-worker run, started in dispatch order each on the first free worker
(:func:`~circinus.parallel.projected_makespan`), plus that run's overhead (its wall time less
the sum of its chunk times). It assumes ``N`` workers as fast as this machine's core and
shipping that does not grow with ``N``; the 2-worker projection next to the 2-worker
measurement shows how far that holds here. The largest chunk bounds it from below: more
workers than chunks gain nothing.

Above :data:`GATHER_UP_TO` queries the candidates are not gathered (a million generated
queries make eight million, more than the benchmark's process could hold beside the world):
every run then sends back per chunk only its candidates' count and digest
(:func:`~circinus.parallel.packed.digest`), and the serial run searches the same chunks one
after another with one search (its memo shared, as the planner's serial search shares it),
digesting each. Every run's time then includes digesting (the serial run's and each chunk's
alike: packing and hashing a chunk of 250,000 candidates takes seconds). ``same_as_serial``
compares the digests chunk by chunk; the runs' times leave out rebuilding the candidates in
this process (``gathered`` is false), which at 100,000 queries was most of the overhead.

Peak memory is the resident set's high-water mark of the benchmark's process (world, index and
the serial run's candidates) and of the largest worker.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from circinus.collector import paused
from circinus.estimate.analytic import AnalyticEstimator
from circinus.parallel import (
    ChunkRecord,
    ProcessExecutor,
    SearchRun,
    SerialExecutor,
    chunk_groups,
    projected_makespan,
)
from circinus.parallel.base import search_groups
from circinus.parallel.packed import digest, pack
from circinus.planner import SEARCHES
from circinus.search.base import BaseSearch
from circinus.spec.index import WorldIndex
from circinus.spec.models import Query

DEFAULT_CHUNKS = 32
"""Chunks the groups are dealt into: enough to project up to 32 workers, few enough that each
holds many groups."""
GATHER_UP_TO = 200_000
"""Largest world whose candidates the runs gather into this process (module note)."""
PROJECTED_WORKERS = (1, 2, 4, 8, 16, 32)
"""Worker counts whose makespan is projected."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SearchScaling:
    """The search of one generated world, serial and on 1 and 2 workers (module note)."""

    queries: int
    groups: int
    chunks: int
    candidates: int
    serial_seconds: float
    serial_cpu_seconds: float
    one_worker_seconds: float
    two_workers_seconds: float
    speedup_1: float
    """``serial_seconds / one_worker_seconds``."""
    speedup_2: float
    """``serial_seconds / two_workers_seconds``."""
    chunk_seconds: tuple[float, ...]
    """Wall time of each chunk in the 1-worker run, in dispatch order."""
    chunk_cpu_seconds: tuple[float, ...]
    chunk_queries: tuple[int, ...]
    overhead_seconds: float
    """1-worker wall time less the sum of its chunk times (start-up, shipping, gathering)."""
    projected_makespan: tuple[tuple[int, float], ...]
    """``(workers, seconds)``: PROJECTED, not measured (module note)."""
    same_as_serial: bool
    """Whether both chunked runs gave every query exactly the serial candidates."""
    kernel_evaluations_serial: int
    kernel_evaluations_chunked: int
    peak_rss_mb: float
    """High-water mark of the benchmark process's resident memory, MB."""
    worker_peak_rss_mb: float
    """The same for the largest worker process, MB (a forked worker's resident set counts the
    pages it still shares with the benchmark process)."""
    load_average: float
    """One-minute load average when the measurement began."""
    gathered: bool = True
    """Whether the runs gathered the candidates into this process (False: counts and digests
    only, module note)."""


def _search(index: WorldIndex) -> BaseSearch:
    """Circinus's search as the planner builds it, cold."""
    return SEARCHES["circinus"](estimator=AnalyticEstimator(index=index),
                                settings=index.world.planner)


def measure_search_scaling(index: WorldIndex, *, chunks: int = DEFAULT_CHUNKS,
                           progress: Progress | None = None, gather: bool | None = None
                           ) -> SearchScaling:
    """Run the search of ``index`` serially, then on 1 and 2 workers (module note); ``gather``
    (default: up to :data:`GATHER_UP_TO` queries) whether the candidates come back."""
    say = progress or (lambda _: None)
    n = len(index.world.queries)
    keep = n <= GATHER_UP_TO if gather is None else gather
    load = os.getloadavg()[0]
    queries = index.world.queries
    say(f"gen-{n} search: serial")
    c0 = time.process_time()
    with paused():  # as the planner runs it (and as every chunk runs)
        serial = (SerialExecutor().search(_search(index), queries) if keep
                  else _serial_digests(_search(index), queries, chunks))
    # not gathered: the serial run's own record times its searches and digests
    serial_cpu = time.process_time() - c0 if keep else serial.chunks[0].cpu_seconds
    timed: list[tuple[float, tuple[ChunkRecord, ...]]] = []
    same = True
    for workers in (1, 2):
        say(f"gen-{n} search: {chunks} chunks on {workers} worker(s)")
        run = ProcessExecutor(workers=workers, chunks=chunks).search(_search(index), queries,
                                                                      keep=keep)
        same = same and run.found == serial.found and run.digests == serial.digests
        timed.append((run.seconds, run.chunks))
        del run  # its candidates: the serial ones are enough to hold
    (one_s, one), (two_s, _) = timed
    chunk_s = tuple(c.seconds for c in one)
    overhead = max(0.0, one_s - sum(chunk_s))
    return SearchScaling(
        queries=n, groups=sum(c.groups for c in one), chunks=len(one),
        candidates=serial.candidates,
        serial_seconds=serial.seconds, serial_cpu_seconds=serial_cpu,
        one_worker_seconds=one_s, two_workers_seconds=two_s,
        speedup_1=serial.seconds / one_s, speedup_2=serial.seconds / two_s,
        chunk_seconds=chunk_s, chunk_cpu_seconds=tuple(c.cpu_seconds for c in one),
        chunk_queries=tuple(c.queries for c in one), overhead_seconds=overhead,
        projected_makespan=tuple((w, projected_makespan(chunk_s, w, overhead_s=overhead))
                                 for w in PROJECTED_WORKERS),
        same_as_serial=same, kernel_evaluations_serial=serial.kernel_evaluations,
        kernel_evaluations_chunked=sum(c.kernel_evaluations for c in one),
        peak_rss_mb=_peak_mb(resource.RUSAGE_SELF),
        worker_peak_rss_mb=_peak_mb(resource.RUSAGE_CHILDREN), load_average=load,
        gathered=keep)


def _serial_digests(search: BaseSearch, queries: Sequence[Query], chunks: int) -> SearchRun:
    """The serial run without gathering (module note): ``search`` itself on the chunks the
    workers get, one after another, each chunk's candidates digested and dropped."""
    wall = cpu = 0.0  # of the searches and their digests, as the chunks' records time them
    dealt = chunk_groups(search_groups(search, queries), chunks)
    digests, count = [], 0
    for chunk in dealt:
        t0, c0 = time.perf_counter(), time.process_time()
        found = search.search([queries[i] for i in chunk.indices])
        digests.append(digest(pack(found)))
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        count += sum(len(qc.candidates) for qc in found)
        del found
    record = ChunkRecord(0, len(queries), len(dealt), wall, cpu,
                         search.estimator.kernel_evaluations, "serial")
    return SearchRun((), (record,), "serial", 1, wall, shared_search=True, candidates=count,
                     digests=tuple(digests))


def _peak_mb(who: int) -> float:
    """``ru_maxrss`` (KB on Linux) in MB."""
    return resource.getrusage(who).ru_maxrss / 1024


def projected_at(record: SearchScaling, workers: int) -> float | None:
    """The projected makespan of ``record`` at ``workers``, if projected."""
    return dict(record.projected_makespan).get(workers)


def scaling_rows(records: Sequence[SearchScaling]) -> list[list[str]]:
    """Table cells per record (:data:`SCALING_COLUMNS`)."""
    return [[f"{r.queries:,}", f"{r.serial_seconds:.1f}",
             f"{r.one_worker_seconds:.1f} ({r.speedup_1:.2f}×)",
             f"{r.two_workers_seconds:.1f} ({r.speedup_2:.2f}×)",
             _s(projected_at(r, 8)), _s(projected_at(r, 32)),
             f"{max(r.chunk_seconds, default=0.0):.2f}"] for r in records]


SCALING_COLUMNS = ("queries", "serial s", "1 worker s", "2 workers s", "proj 8 s", "proj 32 s",
                   "max chunk s")
"""Headers of :func:`scaling_rows` (speed-ups against serial in brackets; ``proj``:
projected, not measured)."""


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"
