"""One deployment serving every query routed to it: one FIFO queue, batches across queries.

NOTE: the requests of all the (query, stage) pairs routed to a deployment are merged into one
stream in the order they became ready (a tie keeps query order, then stage order), cut into
batches of ``b`` consecutive requests (a batch is ready with its last request: no timeout, as
the planner assumes) and served first come, first served by the ``replicas`` servers
(:func:`~circinus.simulate.queues.serve_batches`). A batch takes the profile's batch time times
the mean work multiplier of its requests (each query's ``work_scale`` for the stage), times a
unit-mean gamma draw with the profile's cv. The draws come from the deployment's own stream
(seeded by its position in the plan), one per batch in FIFO order; their number depends only on
how many requests the deployment serves, so serving again with other ready times reuses them.
"""

from __future__ import annotations

import numpy as np

from circinus.simulate.model import SimDeployment
from circinus.simulate.query import QueryFlow
from circinus.simulate.queues import BatchService, busy_seconds, serve_batches
from circinus.simulate.service import draw_service


class DeploymentQueue:
    """The state of one deployment over the engine's rounds. Mutable; owned by the engine."""

    def __init__(self, deployment: SimDeployment, pieces: list[tuple[int, int, np.ndarray]],
                 flows: list[QueryFlow], *, seed: int) -> None:
        """``pieces`` lists ``(query, stage, rows)``: the requests of a stage of a query (by
        position in ``flows``) routed here."""
        self.deployment = deployment
        self.pieces = pieces
        self._users = {flows[q].query.position for q, _, _ in pieces}
        self.work = (np.concatenate([np.full(len(rows), flows[q].query.stages[s].work)
                                     for q, s, rows in pieces]) if pieces else np.empty(0))
        rng = np.random.default_rng([seed, deployment.position, 2])
        self.noise = draw_service(rng, len(self.work) // deployment.batch, 1.0, deployment.cv)
        self.ready = np.empty(0)
        """Ready time of each request, pieces concatenated (as last served)."""
        self.service: BatchService | None = None
        self._seen: tuple[int, ...] | None = None

    @property
    def queries(self) -> int:
        """Number of distinct queries routed here."""
        return len(self._users)

    def serve(self, flows: list[QueryFlow]) -> None:
        """Serve the requests routed here at their current ready times, unless none of them
        moved since the last time, and write their finish times to the flows."""
        if not self.pieces:
            return
        ready = [flows[q].ready_at(s) for q, s, _ in self.pieces]
        seen = tuple(flows[q].version[s] for q, s, _ in self.pieces)
        if seen == self._seen:
            return
        self._seen = seen
        dep = self.deployment
        self.ready = np.concatenate([r[rows] for r, (_, _, rows) in
                                     zip(ready, self.pieces, strict=True)])
        self.service = serve_batches(self.ready, self.work, batch=dep.batch,
                                     replicas=dep.replicas, mean_s=dep.mean_s, noise=self.noise)
        at = 0
        for q, s, rows in self.pieces:
            flows[q].set_finish(s, rows, self.service.done[at: at + len(rows)])
            at += len(rows)

    def busy(self, window: tuple[float, float]) -> float:
        """Busy server-seconds inside ``window``."""
        if self.service is None:
            return 0.0
        return busy_seconds(self.service.start, self.service.end, *window)

    def waits(self, window: tuple[float, float]) -> tuple[int, float | None, float | None]:
        """Requests ready inside ``window`` that were served, with their mean wait for the
        batch to fill and their mean wait in the queue of batches, seconds (``None``: none)."""
        if self.service is None:
            return 0, None, None
        sv = self.service
        ready = self.ready
        served = np.flatnonzero((ready >= window[0]) & (ready < window[1])
                                & np.isfinite(sv.done))
        if not len(served):
            return 0, None, None
        batch = sv.batch_of[served]
        fill = float(np.mean(sv.ready[batch] - ready[served]))
        queue = float(np.mean(sv.start[batch] - sv.ready[batch]))
        return len(served), fill, queue
