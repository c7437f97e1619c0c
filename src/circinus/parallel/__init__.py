"""Where the per-group search runs: in this process, on local processes, or as Ray tasks.

* :mod:`~circinus.parallel.base` - the executor interface, chunking, the chunk kernel, records
  and the projected makespan;
* :mod:`~circinus.parallel.local` - :class:`SerialExecutor`, :class:`ProcessExecutor` and
  :class:`AutoExecutor` (worker processes for a large enough batch on two cores or more), on
  :func:`~circinus.parallel.local.pool_imap`, the worker pool that loses no item to a worker
  that dies (also the report's load sweep; the planner's own forked copies are
  :mod:`circinus.forks`);
* :mod:`~circinus.parallel.ray` - :class:`~circinus.parallel.ray.RayExecutor` (needs the
  ``ray`` extra; imported only when asked for).

Usage::

    executor = make_executor("processes", workers=2)
    result = Planner(executor=executor).plan(world)   # the same plan as the serial one
    print([c.seconds for c in result.search_chunks])
"""

from __future__ import annotations

import importlib.util

from circinus.errors import SpecError
from circinus.parallel.base import (
    BaseSearchExecutor,
    ChunkRecord,
    ClusterError,
    SearchRun,
    chunk_groups,
    projected_makespan,
)
from circinus.parallel.local import AutoExecutor, ProcessExecutor, SerialExecutor

EXECUTORS = ("auto", "serial", "processes", "ray")
"""Registry keys of the executors."""
MAX_WORKERS = 4096
MAX_CHUNKS = 100_000


def make_executor(kind: str, *, workers: int | None = None, chunks: int | None = None,
                  address: str | None = None) -> BaseSearchExecutor:
    """The executor ``kind`` (a key of :data:`EXECUTORS`).

    Raises:
        SpecError: an unknown kind, ``workers`` outside 1..:data:`MAX_WORKERS`, ``chunks``
            outside 1..:data:`MAX_CHUNKS`, an ``address`` for another kind than ``ray``, or
            ``workers`` for ``serial``; each naming the command-line option.
        MissingExtraError: ``ray`` without Ray installed.
    """
    if kind not in EXECUTORS:
        raise SpecError(f"--executor: unknown executor {kind!r}; choose from "
                        f"{', '.join(EXECUTORS)}")
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise SpecError(f"--workers: must be in 1..{MAX_WORKERS}, got {workers}")
    if chunks is not None and not 1 <= chunks <= MAX_CHUNKS:
        raise SpecError(f"--chunks: must be in 1..{MAX_CHUNKS}, got {chunks}")
    if address is not None and kind != "ray":
        raise SpecError(f"--address: only for --executor ray, got --executor {kind}; add "
                        "--executor ray")
    if kind == "auto":
        if workers is not None or chunks is not None:
            raise SpecError("--workers and --chunks: for --executor processes or ray (the "
                            "automatic choice sets them itself); add --executor processes")
        return AutoExecutor()
    if kind == "serial":
        if workers is not None and workers > 1:
            raise SpecError(f"--workers: serial runs one chunk at a time, got {workers}; use "
                            "--executor processes or ray")
        return SerialExecutor(chunks=chunks)
    if kind == "processes":
        return ProcessExecutor(workers=workers, chunks=chunks)
    if importlib.util.find_spec("ray") is None:
        from circinus.runtime import MissingExtraError

        raise MissingExtraError("--executor ray needs Ray, which is not installed; install it "
                                "with `pip install 'circinus[ray]'` or use --executor "
                                "processes")
    from circinus.parallel.ray import RayExecutor

    return RayExecutor(address=address, workers=workers, chunks=chunks)


__all__ = [
    "EXECUTORS",
    "AutoExecutor",
    "BaseSearchExecutor",
    "ChunkRecord",
    "ClusterError",
    "ProcessExecutor",
    "SearchRun",
    "SerialExecutor",
    "chunk_groups",
    "make_executor",
    "projected_makespan",
]
