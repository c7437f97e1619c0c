"""FIFO queue kernels: pure functions from ready times and service times to start times.

NOTE: a deployment is one FIFO queue, fed by every query routed to it, and is simulated in one
call over all its requests, not event by event (:func:`serve_batches`). A single server obeys
Lindley's recursion ``D_k = max(A_k, D_{k-1}) + S_k``, whose unrolled form
``D_k = C_k + max_{j<=k} (A_j - C_{j-1})`` (``C`` the running sum of service times) is two numpy
scans. ``c`` servers taking jobs in order follow Kiefer and Wolfowitz: job ``k`` starts when it is
ready and the earliest-free server is free; a heap of ``c`` free times does it in one tight loop.
Batches are formed by index arithmetic: with requests in FIFO order, batch ``k`` holds requests
``k*b .. k*b+b-1`` and is ready when its last request is (a batch waits for ``b`` requests, as
the planner assumes; there is no timeout). A last batch that never fills is never served.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np


def fifo_starts(ready: np.ndarray, service: np.ndarray, servers: int) -> np.ndarray:
    """Start times of jobs served first come, first served by ``servers`` identical servers.

    ``ready`` is sorted (non-decreasing; ``inf`` for a job that never arrives) and ``service``
    holds each job's service time; finish times are ``start + service``. Example: one server,
    jobs ready at 0, 0, 5 with service 2 start at 0, 2, 5; two servers start them at 0, 0, 5.
    """
    n = len(ready)
    if n == 0:
        return np.empty(0)
    if servers == 1:
        done = np.cumsum(service)
        before = done - service  # work of the jobs ahead, if they never idled
        finish: np.ndarray = done + np.maximum.accumulate(ready - before)
        start: np.ndarray = finish - service
        return start
    free = [0.0] * servers
    starts: list[float] = []
    append, replace = starts.append, heapq.heapreplace
    for a, s in zip(ready.tolist(), service.tolist(), strict=True):
        t = free[0]
        if a > t:
            t = a
        replace(free, t + s)
        append(t)
    return np.asarray(starts)


def batch_ready(ready_sorted: np.ndarray, batch: int) -> np.ndarray:
    """Ready times of the full batches of requests ready at ``ready_sorted`` (FIFO order).

    A batch is ready when its ``batch``-th request is: ``ready_sorted[b-1::b]``, leaving out a
    last batch that does not fill. Example: requests at 1, 2, 3, 4, 5 in batches of 2 give
    batches ready at 2 and 4; the request at 5 waits for a partner that never comes.
    """
    full = len(ready_sorted) // batch
    return ready_sorted[batch - 1: full * batch: batch]


def busy_seconds(start: np.ndarray, finish: np.ndarray, lo: float, hi: float) -> float:
    """Server-seconds of the intervals ``[start, finish]`` that fall inside ``[lo, hi]``."""
    overlap = np.minimum(finish, hi) - np.maximum(start, lo)
    return float(np.sum(overlap, where=overlap > 0, initial=0.0))


@dataclass(frozen=True)
class BatchService:
    """What one deployment did with its requests: batches, their queueing and their service."""

    done: np.ndarray
    """Completion of each request, in the order given (``inf``: its batch never filled)."""
    batch_of: np.ndarray
    """Batch of each request, in the order given (-1: none)."""
    ready: np.ndarray
    """When each batch was full, seconds, in FIFO order."""
    start: np.ndarray
    """When each batch started service."""
    end: np.ndarray
    """When each batch finished."""


def serve_batches(ready: np.ndarray, work: np.ndarray, *, batch: int, replicas: int,
                  mean_s: float, noise: np.ndarray) -> BatchService:
    """Serve requests ready at ``ready`` (any order) through one FIFO queue of batches.

    Requests are queued in the order they became ready (stable: a tie keeps the given order),
    batch ``k`` holds the ``k``-th ``batch`` of them and is ready with its last one, and
    ``replicas`` servers take batches first come, first served. Batch ``k`` takes
    ``mean_s * mean(work of its requests) * noise[k]`` (``noise`` holds at least one unit-mean
    draw per full batch). Example: requests ready at 3, 1, 2, 4 with work 1, 1, 3, 1, batches of
    2, one server, ``mean_s=1`` and no noise: batch 0 (ready 1, 2) runs 2 s from 2 to 4, batch
    1 (3, 4) 1 s from 4 to 5, so the requests complete at 5, 4, 4, 5.
    """
    n = len(ready)
    full = n // batch
    order = np.argsort(ready, kind="stable")
    in_order = ready[order]
    batch_ready = in_order[batch - 1: full * batch: batch]
    if batch == 1:
        mean_work = work[order]
    else:
        mean_work = work[order[: full * batch]].reshape(full, batch).mean(axis=1)
    service = mean_s * mean_work * noise[:full]
    start = fifo_starts(batch_ready, service, replicas)
    end = start + service
    done = np.full(n, np.inf)
    batch_of = np.full(n, -1, dtype=np.intp)
    served = order[: full * batch]
    done[served] = np.repeat(end, batch)
    batch_of[served] = np.repeat(np.arange(full), batch)
    return BatchService(done=done, batch_of=batch_of, ready=batch_ready, start=start, end=end)
