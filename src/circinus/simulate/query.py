"""One admitted query served end to end: routing, transfers, batching, FIFO queues, DAG joins.

NOTE: a query's replicas are its own (queries never share replicas; only links are shared), so a
query is simulated on its own, stage by stage in topological order, with whole arrays of
requests instead of events:

1. every request is routed at each stage to one of the stage's replica groups at random, with
   the probability the planner assumes (proportional to replicas x b / t_b): a
   capacity-weighted balancer, which splits the Poisson stream into independent Poisson
   streams exactly as the planner's per-device M/G/c model does (join-shortest-queue would do
   better than the planner assumes and so check a different model);
2. a request is ready at a stage when the messages of all its predecessors have arrived (a
   join waits for the last); the sources emit at the arrival;
3. per group, requests queue in the order they became ready, form batches of ``b``
   (:func:`~circinus.simulate.queues.batch_ready`) and are served by the group's replicas
   first come, first served (:func:`~circinus.simulate.queues.fifo_starts`); every request of a
   batch finishes with it;
4. the request completes when the sink finishes it.

Transfers over a link with a capacity take the times the engine passes in ``overrides`` (what
the link's processor sharing gave in the previous round), else their nominal time; the run
reports every link transfer so the engine can share the links among all queries. All random
draws come from the query's own stream, in an order that depends only on request counts, so a
rerun with other transfer times draws the same routes and service times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from circinus.simulate.model import SimQuery, SimStage
from circinus.simulate.queues import batch_ready, busy_seconds, fifo_starts
from circinus.simulate.service import draw_service


@dataclass(frozen=True)
class Transfers:
    """The link transfers of one DAG edge of one query, in request order."""

    edge: int
    """The edge's key (:attr:`SimEdge.key`)."""
    rows: np.ndarray
    """Requests that crossed a link on this edge."""
    link: np.ndarray
    """Link position of each transfer."""
    start: np.ndarray
    """When each message was sent, seconds."""
    seconds: np.ndarray
    """How long each took in this run (nominal, or as given by the engine)."""
    mbit: float
    """Size of every message of the edge, Mbit."""


@dataclass(frozen=True)
class QueryRun:
    """What one run of a query measured (requests arriving inside the window only)."""

    latency: np.ndarray
    """End-to-end latency of each measured request, seconds (``inf``: never completed)."""
    busy: tuple[float, ...]
    """Busy replica-seconds inside the window of each replica group, stage by stage."""
    transfers: tuple[Transfers, ...]


def run_query(query: SimQuery, arrivals: np.ndarray, *, seed: int,
              window: tuple[float, float],
              overrides: Mapping[int, np.ndarray] | None = None) -> QueryRun:
    """Serve ``arrivals`` (sorted, seconds) through the query's plan; see the module note.

    ``window`` is ``[start, end)`` of the measurement; ``overrides`` maps an edge key to the
    seconds each request's message on that edge takes (``nan``: nominal), for links with a
    capacity.
    """
    rng = np.random.default_rng([seed, query.position, 1])
    n = len(arrivals)
    finish: list[np.ndarray] = []
    routed: list[np.ndarray] = []
    busy: list[float] = []
    transfers: list[Transfers] = []
    for stage in query.stages:
        groups = len(stage.groups)
        to = (rng.choice(groups, size=n, p=stage.shares) if groups > 1
              else np.zeros(n, dtype=np.intp))
        ready = _ready(stage, arrivals, finish, routed, to, overrides or {}, transfers)
        done = np.empty(n)
        for gi, group in enumerate(stage.groups):
            idx = np.flatnonzero(to == gi) if groups > 1 else np.arange(n)
            order = np.argsort(ready[idx], kind="stable")
            batches = batch_ready(ready[idx][order], stage.batch)
            service = draw_service(rng, len(batches), group.mean_s, group.cv)
            start = fifo_starts(batches, service, group.replicas)
            end = start + service
            completed = np.full(len(idx), np.inf)
            completed[: len(batches) * stage.batch] = np.repeat(end, stage.batch)
            done[idx[order]] = completed
            busy.append(busy_seconds(start, end, *window))
        finish.append(done)
        routed.append(to)
    measured = (arrivals >= window[0]) & (arrivals < window[1])
    latency = finish[-1][measured] - arrivals[measured]
    return QueryRun(latency=latency, busy=tuple(busy), transfers=tuple(transfers))


def _ready(stage: SimStage, arrivals: np.ndarray, finish: list[np.ndarray],
           routed: list[np.ndarray], to: np.ndarray, overrides: Mapping[int, np.ndarray],
           transfers: list[Transfers]) -> np.ndarray:
    """When each request has all its inputs at the group it was routed to."""
    ready: np.ndarray | None = None
    for edge in stage.inputs:
        if edge.src < 0:
            sent = arrivals
            frm = np.zeros(len(arrivals), dtype=np.intp)
        else:
            sent, frm = finish[edge.src], routed[edge.src]
        delay = edge.delay[frm, to]
        if edge.crosses:
            link = edge.link[frm, to]
            rows = np.flatnonzero((link >= 0) & np.isfinite(sent))
            given = overrides.get(edge.key)
            if given is not None:
                use = rows[~np.isnan(given[rows])]
                delay[use] = given[use]
            transfers.append(Transfers(edge=edge.key, rows=rows, link=link[rows],
                                       start=sent[rows], seconds=delay[rows], mbit=edge.mbit))
        t = sent + delay
        ready = t if ready is None else np.maximum(ready, t)
    assert ready is not None  # every stage has an input (the spec checks reachability)
    return ready
