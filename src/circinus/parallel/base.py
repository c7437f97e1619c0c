"""The executor interface: a splittable search run chunk by chunk, wherever the chunks run.

NOTE: a splittable search (:attr:`BaseSearch.splittable <circinus.search.base.BaseSearch.
splittable>`) answers each query from its group alone (:meth:`~circinus.search.base.
BaseSearch.groups`), so a batch's groups may be searched apart and the answers put together.
:meth:`BaseSearchExecutor.search` does that in four steps:

1. the search names its groups;
2. :func:`chunk_groups` deals them into chunks of about equal estimated work, largest group
   first to the lightest chunk (each chunk's queries stay in query order);
3. every chunk is searched by a fresh instance of the search's class, with the same settings
   and an estimator of the same world (:class:`SearchJob`: the world without its queries, and
   the batch's queries; shipped once per worker, or put once in Ray's object store, while a
   chunk is only its queries' positions), where the executor runs it: here, one chunk after
   another (:class:`~circinus.parallel.local.SerialExecutor`), on worker processes
   (:class:`~circinus.parallel.local.ProcessExecutor`) or as Ray tasks
   (:class:`~circinus.parallel.ray.RayExecutor`);
4. each chunk's candidates come back packed (:mod:`~circinus.parallel.packed`: every
   distinct estimate and stage list once, two integers per candidate) and are unpacked in
   query order.

A search whose candidates the caller could not hold (a million generated queries make eight
million) can run with ``keep=False``: each chunk then sends back only how many candidates it
found and a digest of them (:func:`~circinus.parallel.packed.digest`), which tells whether two
runs found the same, so that the search itself can be timed at that size
(``circinus bench scale --part search``).

Every query gets exactly what the search of the whole batch gives it (candidates, reason and
billed evaluations), whatever the executor, the workers and the chunks: the groups' contract,
checked by ``tests/parallel``. What differs is the estimator's memo: a chunk computes the stage
and transfer estimates it needs again rather than taking them from other groups', so the
kernel evaluations add up to more than a serial search's (``kernel_evaluations`` per chunk).

Each chunk's record (:class:`ChunkRecord`) has its wall and CPU time where it ran;
:func:`projected_makespan` turns measured chunk times into the time ``N`` workers would take.
"""

from __future__ import annotations

import heapq
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import ClassVar

from circinus.collector import paused
from circinus.errors import CircinusError
from circinus.estimate.analytic import AnalyticEstimator
from circinus.parallel.packed import PackedCandidates, digest, pack, unpack
from circinus.search.base import BaseSearch, QueryCandidates
from circinus.spec.index import WorldIndex
from circinus.spec.models import PlannerSettings, Query

CHUNKS_PER_WORKER = 4
"""Chunks per worker when none are asked for: enough for a worker that finishes early to take
another chunk, few enough that shipping and starting each costs little."""
GROUP_WEIGHT = 40
"""Estimated work of a group's enumeration, in members' worth (a member's work is adopting its
representative's candidates, verified by one estimate each). A rough figure, not fitted: the
chunk times ``circinus bench scale --part search`` records show how even the chunks come out
(docs/scale.md)."""

Progress = Callable[[str], None]
"""Called with a short description as chunks finish."""


class ClusterError(CircinusError):
    """The place to run the search is unusable: no Ray cluster answers at the address, or a
    chunk failed there. The message says what was tried and the way out."""


@dataclass(frozen=True)
class SearchJob:
    """What the chunks of one search need; picklable, shipped once per worker.

    ``index`` is the search's world without its queries (the world's queries need not be the
    batch's); ``search`` is the search's class, built again as the planner builds it: with the
    plain :class:`AnalyticEstimator` of the index, and ``settings``; ``queries`` is the batch,
    whose positions each chunk names.
    """

    index: WorldIndex
    search: type[BaseSearch]
    settings: PlannerSettings
    queries: tuple[Query, ...] = ()
    keep: bool = True
    """Whether the chunks send their candidates back (False: their count and digest only)."""

    @classmethod
    def of(cls, search: BaseSearch, queries: Sequence[Query] = (), *, keep: bool = True
           ) -> SearchJob:
        """The job of ``search`` on the batch ``queries``; the search's estimator must be the
        plain analytic estimator of its index (no link load, no sized deployments), as the
        planner's is."""
        est = search.estimator
        assert type(est) is AnalyticEstimator and not est.link_load, \
            "chunks are searched with the plain analytic estimator of the world"
        index = est.index
        bare = replace(index, world=index.world.model_copy(update={"queries": []}))
        return cls(bare, type(search), search.settings, tuple(queries), keep)

    def build(self) -> BaseSearch:
        """A fresh search of this job (cold caches)."""
        return self.search(estimator=AnalyticEstimator(index=self.index),
                           settings=self.settings)


@dataclass(frozen=True)
class Chunk:
    """Whole groups of a batch searched together: their queries' positions, in query order."""

    number: int
    """Position in dispatch order (0 first)."""
    indices: tuple[int, ...]
    groups: int
    weight: float
    """Estimated work (:func:`group_weight` summed)."""


@dataclass(frozen=True)
class ChunkRecord:
    """What searching one chunk took, where it ran."""

    number: int
    queries: int
    groups: int
    """Groups searched (0: not counted, for the serial search of a whole batch, which does
    not deal its groups into chunks)."""
    seconds: float
    """Wall time of the chunk's search where it ran (building the search included, shipping
    not; for a job that does not keep its candidates, digesting them included), s."""
    cpu_seconds: float
    """CPU time of the process that ran it over the same span, s."""
    kernel_evaluations: int
    """Stage and transfer estimates the chunk's search computed."""
    worker: str
    """Where it ran: ``host pid N`` (Ray: the node id's first 8 characters too)."""


@dataclass(frozen=True)
class ChunkResult:
    """A chunk's record and its queries' candidates, in the chunk's query order, packed for
    the way back (:func:`~circinus.parallel.packed.pack`); or, for a job that does not keep
    them, none but their count and digest."""

    record: ChunkRecord
    found: PackedCandidates | None
    candidates: int
    digest: str
    """:func:`~circinus.parallel.packed.digest` of the candidates (empty when kept)."""


@dataclass(frozen=True)
class SearchRun:
    """A whole batch searched by an executor."""

    found: tuple[QueryCandidates, ...]
    """Per query of the batch, in order (empty when the candidates were not kept)."""
    chunks: tuple[ChunkRecord, ...]
    """In dispatch order."""
    executor: str
    workers: int
    """Chunks that could run at once."""
    seconds: float
    """Wall time of the whole run in the caller (start-up, shipping and gathering included)."""
    shared_search: bool
    """Whether the caller's own search instance ran the batch (serial, one chunk): its
    estimator then holds the kernel evaluations, which are not to be added again."""
    candidates: int = 0
    """Candidates found over every query."""
    digests: tuple[str, ...] = ()
    """Per chunk in dispatch order, the digest of its candidates (when they were not kept)."""

    @property
    def kernel_evaluations(self) -> int:
        """Stage and transfer estimates computed by every chunk."""
        return sum(c.kernel_evaluations for c in self.chunks)


def group_weight(members: int) -> float:
    """Estimated work of a group of ``members`` queries (:data:`GROUP_WEIGHT`)."""
    return GROUP_WEIGHT + members


def chunk_groups(groups: Sequence[Sequence[int]], chunks: int) -> list[Chunk]:
    """Deal ``groups`` (query positions) into at most ``chunks`` chunks of about equal
    estimated work: longest processing time first (each group, heaviest first, to the lightest
    chunk so far; ties to the lowest number). Chunks are numbered heaviest first, which is the
    order to start them in; empty ones are left out.

    Example: groups of 100, 10, 10 and 10 members (weights 140, 50, 50, 50) into 2 chunks:
    chunk 0 holds the three small groups (150), chunk 1 the large one (140).
    """
    assert chunks >= 1, chunks
    order = sorted(range(len(groups)), key=lambda g: (-group_weight(len(groups[g])), g))
    bins: list[tuple[float, int, list[int]]] = [(0.0, b, []) for b in range(chunks)]
    for g in order:
        weight, b, members = heapq.heappop(bins)
        members.append(g)
        heapq.heappush(bins, (weight + group_weight(len(groups[g])), b, members))
    filled = sorted((b for b in bins if b[2]), key=lambda b: (-b[0], b[1]))
    return [Chunk(n, tuple(sorted(i for g in members for i in groups[g])), len(members), weight)
            for n, (weight, _, members) in enumerate(filled)]


def run_chunk(job: SearchJob, chunk: Chunk) -> ChunkResult:
    """Search ``chunk``'s queries of ``job`` (in order) with a fresh search of ``job``, the
    collector paused (:func:`circinus.collector.paused`), and pack the candidates (or digest
    them, for a job that does not keep them); what every executor runs. The record's times
    are the search's (packing not included)."""
    queries = [job.queries[i] for i in chunk.indices]
    t0, c0 = time.perf_counter(), time.process_time()
    with paused():
        search = job.build()
        found = search.search(queries)
        # Not kept, the digest is timed with the search: it is all the chunk gives back.
        sha = "" if job.keep else digest(pack(found))
        record = ChunkRecord(
            chunk.number, len(queries), chunk.groups, time.perf_counter() - t0,
            time.process_time() - c0, search.estimator.kernel_evaluations,
            f"{socket.gethostname()} pid {os.getpid()}")
        count = sum(len(qc.candidates) for qc in found)
        if job.keep:
            return ChunkResult(record, pack(found), count, "")
        return ChunkResult(record, None, count, sha)


class BaseSearchExecutor(ABC):
    """Runs a splittable search chunk by chunk (see module note).

    Subclasses implement :meth:`run_chunks` (run every chunk with :func:`run_chunk`,
    somewhere) and may override :meth:`session` (start or connect to what runs them, and end
    it). :meth:`search` returns what ``search.search(queries)`` returns for every query; it
    ends whatever it started (processes, a local cluster) before it returns or raises, Ctrl-C
    included.

    Args:
        workers: chunks run at once (``None``: the executor's default, e.g. the cores).
        chunks: chunks to deal the groups into (``None``: :data:`CHUNKS_PER_WORKER` per
            worker).

    Raises:
        ClusterError: from :meth:`search`, when the place to run the chunks is unusable.
    """

    kind: ClassVar[str]
    """Registry key (``serial``, ``processes``, ``ray``)."""

    def __init__(self, *, workers: int | None = None, chunks: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if chunks is not None and chunks < 1:
            raise ValueError(f"chunks must be >= 1, got {chunks}")
        self.workers = workers
        self.chunks = chunks

    def search(self, search: BaseSearch, queries: Sequence[Query], *,
               progress: Progress | None = None, keep: bool = True) -> SearchRun:
        """Candidates of every query of ``queries`` as ``search.search(queries)`` gives them,
        searched chunk by chunk (a search that is not splittable is one chunk); with
        ``keep=False`` only their count and each chunk's digest (module note)."""
        t0 = time.perf_counter()
        groups = search_groups(search, queries)
        found: list[QueryCandidates | None] = [None] * len(queries)
        results: list[ChunkResult] = []
        with self.session() as width:
            chunks = chunk_groups(groups, self.chunks or CHUNKS_PER_WORKER * width) \
                if groups else []
            # Each result is unpacked as it comes (unpacking makes millions of objects, so
            # with the collector paused): while the other chunks are still being searched,
            # where an executor yields them so.
            with paused():
                for res in self.run_chunks(SearchJob.of(search, queries, keep=keep), chunks,
                                           progress or (lambda _: None)):
                    results.append(res)
                    if keep:
                        chunk = chunks[res.record.number]
                        assert res.found is not None
                        for i, qc in zip(chunk.indices, unpack(res.found), strict=True):
                            found[i] = qc
        records = tuple(sorted((r.record for r in results), key=lambda r: r.number))
        count = sum(r.candidates for r in results)
        if not keep:
            digests = tuple(r.digest for r in sorted(results, key=lambda r: r.record.number))
            return SearchRun((), records, self.kind, width, time.perf_counter() - t0,
                             shared_search=False, candidates=count, digests=digests)
        assert all(f is not None for f in found), "a chunk left queries out"
        return SearchRun(tuple(f for f in found if f is not None), records, self.kind, width,
                         time.perf_counter() - t0, shared_search=False, candidates=count)

    @contextmanager
    def session(self) -> Iterator[int]:
        """Start what runs the chunks for the span of a :meth:`search`, yielding how many run
        at once; end it after."""
        yield self.workers or 1

    @abstractmethod
    def run_chunks(self, job: SearchJob, chunks: Sequence[Chunk],
                   progress: Progress) -> Iterable[ChunkResult]:
        """:func:`run_chunk` of ``job`` on every chunk of ``chunks``, started in order, within
        :meth:`session`; the results in any order, as a list or yielded each as it comes (the
        caller then unpacks it while the others run; closing the iterator early must end
        whatever runs them). ``job`` is to be shipped once per worker, not with every
        chunk."""


def search_groups(search: BaseSearch, queries: Sequence[Query]) -> list[list[int]]:
    """The groups of ``queries`` (positions) ``search`` answers apart: its own, or the whole
    batch as one when it is not splittable."""
    if search.splittable:
        return [list(g) for g in search.groups(queries)]
    return [list(range(len(queries)))] if queries else []


def projected_makespan(chunk_seconds: Sequence[float], workers: int, *,
                       overhead_s: float = 0.0) -> float:
    """The wall time ``workers`` identical workers would take for chunks of the measured
    ``chunk_seconds``, started in the given order each on the first worker free (as a task
    queue runs them), plus a fixed ``overhead_s`` (start-up, shipping, gathering). A
    projection: it assumes every worker as fast as the one measured and nothing shared
    between them.

    Example: chunks of 4, 3, 2 and 1 s on 2 workers: the third starts at 3 s on the second
    worker, the fourth at 4 s on the first; both end at 5 s, the makespan.
    """
    assert workers >= 1, workers
    free = [0.0] * min(workers, max(1, len(chunk_seconds)))
    for s in chunk_seconds:
        start = heapq.heappop(free)
        heapq.heappush(free, start + s)
    return overhead_s + max(free)
