"""One admitted query's requests on their way through its stages: routes, ready and finish times.

NOTE: a :class:`QueryFlow` holds, per stage, where each request was routed, when it was ready
there and when it finished; the deployments (:mod:`circinus.simulate.deployment`) write the
finish times of the requests they serve, the flow derives the next stages' ready times from
them:

1. every request is routed at each stage to one of the deployments of the stage's route at
   random, with the plan's shares (a Poisson stream split at random stays Poisson, the
   planner's model); the routes are drawn once, from the query's own stream, so they never
   depend on other queries or on timing;
2. a request is ready at a stage when the messages of all its predecessors have arrived (a join
   waits for the last); the sources emit at the arrival; a message takes its nominal time, or
   the time the engine's link sharing gave it (:meth:`QueryFlow.override`);
3. the request completes when the sink finishes it.

With branches or fan-out (``docs/world-format.md``) a stage's rows are its *sub-requests*: a
branch point draws, per request (per object after the fan-out), the successor it goes to, from
the query's own stream ``(seed, query, 3)``; a stage is visited by the rows some taken edge
reaches; the fan-out stage draws each request's object count from its configuration's law
(:mod:`circinus.spec.counts`), and the stages after it serve one row per object, all of a
request's objects sent at once when the fan-out stage finishes it (a burst). A request is then
complete when all its rows are: its last object at the sink, or the fan-out stage when it has
no object.

The flow keeps track of what must be computed again: a stage is *dirty* when a predecessor's
finish times or its transfer times moved, and its ready times then get a new *version*; a
deployment serves again only when the version of one of its inputs moved.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from circinus.simulate.model import SimEdge, SimQuery
from circinus.spec.counts import draw_counts


@dataclass(frozen=True)
class Transfers:
    """The link transfers of one DAG edge of one query, in request order."""

    edge: int
    """The edge's key (:attr:`SimEdge.key`)."""
    rows: np.ndarray
    """Rows of the edge's stage (requests, or objects after a fan-out) whose message crossed
    a link on this edge."""
    link: np.ndarray
    """Link position of each transfer."""
    start: np.ndarray
    """When each message was sent, seconds."""
    seconds: np.ndarray
    """How long each took (nominal, or as the engine's link sharing gave it)."""
    mbit: float
    """Size of every message of the edge, Mbit."""


class QueryFlow:
    """The state of one query's requests (see the module note). Mutable; owned by the engine."""

    def __init__(self, query: SimQuery, arrivals: np.ndarray, *, seed: int) -> None:
        self.query = query
        self.arrivals = arrivals
        n = len(arrivals)
        self.plain = all(st.fanout is None and not st.choices for st in query.stages)
        """Every request visits every stage once (no fan-out nor branch)."""
        self.owner: list[np.ndarray] = []
        """Per stage, the request each of its rows (sub-requests) belongs to."""
        self.up: dict[int, np.ndarray] = {}
        """Per edge key, for each row of its stage: the upstream row whose message it waits
        for (a request for a source), -1 when that edge brings it nothing."""
        if self.plain:
            self.owner = [np.arange(n) for _ in query.stages]
            self.up = {e.key: np.arange(n) for st in query.stages for e in st.inputs}
        else:
            self._unfold(np.random.default_rng(stream_seed(seed, query, 3)))
        rng = np.random.default_rng(stream_seed(seed, query, 1))
        self.routed: list[np.ndarray] = []
        """Per stage, the position in the stage's route of each row's deployment."""
        self.rows: list[list[np.ndarray]] = []
        """Per stage and routed deployment, the rows sent there."""
        for st, owner in zip(query.stages, self.owner, strict=True):
            k, m = len(st.deployments), len(owner)
            to = (rng.choice(k, size=m, p=st.shares) if k > 1 else np.zeros(m, dtype=np.intp))
            self.routed.append(to)
            self.rows.append([np.flatnonzero(to == j) for j in range(k)] if k > 1
                             else [np.arange(m)])
        self.out_routed = [rng.choice(len(o.shares), size=n, p=o.shares) if len(o.shares) > 1
                           else np.zeros(n, dtype=np.intp) for o in query.outputs]
        """Per output edge of a feed, the receiving deployment of each message."""
        stages = len(query.stages)
        self.finish = [np.full(len(owner), np.nan) for owner in self.owner]
        self.ready: list[np.ndarray | None] = [None] * stages
        self.version = [0] * stages
        self.dirty = set(range(stages))
        """Stages whose ready times must be computed again."""
        self.transfers: dict[int, Transfers] = {}
        self._overrides: dict[int, np.ndarray] = {}
        self._edge_stage = {e.key: si for si, st in enumerate(query.stages) for e in st.inputs}
        self._next: list[list[int]] = [[] for _ in range(stages)]
        for si, st in enumerate(query.stages):
            for e in st.inputs:
                if e.src >= 0:
                    self._next[e.src].append(si)

    def _unfold(self, rng: np.random.Generator) -> None:
        """Draw each request's way: the branch each branch point takes (per request, or per
        object after the fan-out) and the objects the fan-out stage emits, and derive every
        stage's rows and every edge's upstream rows (:attr:`owner`, :attr:`up`)."""
        stages = self.query.stages
        n = len(self.arrivals)
        row_of: list[np.ndarray] = []  # per stage: row of each unit of its universe, or -1
        choice: dict[int, np.ndarray] = {}  # per branch point: chosen successor per row
        parent = np.empty(0, dtype=np.intp)  # per object: the fan-out stage's row
        objects_owner = np.empty(0, dtype=np.intp)
        for si, st in enumerate(stages):
            size = len(parent) if st.objects else n
            visited = np.zeros(size, dtype=bool)
            edges: list[tuple[int, np.ndarray]] = []
            for e in st.inputs:
                if e.src < 0:
                    src_row = np.arange(n)
                elif st.objects and not stages[e.src].objects:  # from the fan-out stage
                    src_row = parent
                else:
                    src_row = row_of[e.src].copy()
                    if e.src in choice and any(t == st.name for t, _ in stages[e.src].choices):
                        mine = [t for t, _ in stages[e.src].choices].index(st.name)
                        has = src_row >= 0
                        src_row[has] = np.where(choice[e.src][src_row[has]] == mine,
                                                src_row[has], -1)
                visited |= src_row >= 0
                edges.append((e.key, src_row))
            units = np.flatnonzero(visited)
            rows = np.full(size, -1, dtype=np.intp)
            rows[units] = np.arange(len(units))
            row_of.append(rows)
            for key, src_row in edges:
                self.up[key] = src_row[units]
            self.owner.append(objects_owner[units] if st.objects else units)
            m = len(units)
            if st.choices:
                odds = np.array([*(p for _, p in st.choices), 0.0])
                odds[-1] = max(0.0, 1.0 - odds.sum())  # none of them
                picked = rng.choice(len(odds), size=m, p=odds / odds.sum())
                choice[si] = np.where(picked == len(odds) - 1, -1, picked)
            if st.fanout is not None:
                counts = draw_counts(rng, st.fanout[0], st.fanout[1], m)
                parent = np.repeat(np.arange(m), counts)
                objects_owner = self.owner[si][parent]

    def start_from_lower_bound(self) -> None:
        """Set every finish time to a lower bound: transfers only, no waiting nor service.

        A cycle of deployments reads finish times before they are computed in a round; starting
        from below, the rounds rise to the fixed point.
        """
        for si in range(len(self.query.stages)):
            self.finish[si] = self.ready_at(si).copy()
        self.dirty = set(range(len(self.query.stages)))

    def ready_at(self, si: int) -> np.ndarray:
        """Ready times of stage ``si`` (computed again when the stage is dirty)."""
        cached = self.ready[si]
        if si not in self.dirty and cached is not None:
            return cached
        self.dirty.discard(si)
        ready = self._compute_ready(si)
        if cached is None or not np.array_equal(cached, ready):
            self.ready[si] = ready
            self.version[si] += 1
            return ready
        return cached

    def set_finish(self, si: int, rows: np.ndarray, done: np.ndarray) -> None:
        """Record when the requests ``rows`` of stage ``si`` finished; marks the next stages
        dirty when that moved."""
        old = self.finish[si]
        if np.array_equal(old[rows], done):
            return
        old[rows] = done
        self.dirty.update(self._next[si])

    def override(self, edge: int, seconds: np.ndarray) -> None:
        """The messages of ``edge`` that cross a link take ``seconds`` (one per record of
        :attr:`transfers`); marks the edge's stage dirty."""
        tr = self.transfers[edge]
        full = np.full(len(self.owner[self._edge_stage[edge]]), np.nan)
        full[tr.rows] = seconds
        self._overrides[edge] = full
        if edge in self._edge_stage:
            self.dirty.add(self._edge_stage[edge])
        else:  # a feed's output edge makes nothing wait: only its record changes
            self.transfers[edge] = replace(tr, seconds=np.asarray(seconds, dtype=float))

    def emit(self) -> None:
        """Record the link transfers of a feed's output edges at the current finish times."""
        for out, to in zip(self.query.outputs, self.out_routed, strict=True):
            self._sent(out.edge, to)

    def latency(self, window: tuple[float, float]) -> np.ndarray:
        """End-to-end latency of the requests arriving inside ``window``, seconds."""
        a = self.arrivals
        measured = (a >= window[0]) & (a < window[1])
        if self.plain:
            ends = self.query.ends or ((len(self.finish) - 1,) if self.finish else ())
            done = a.copy()  # a request whose sink only joins sources is done on arrival
            for e in ends:
                done = np.maximum(done, self.finish[e])
        else:  # a request is done when every row of it is (its last object at the sink)
            done = np.full(len(a), -np.inf)
            for owner, finish in zip(self.owner, self.finish, strict=True):
                np.fmax.at(done, owner, np.where(np.isnan(finish), np.inf, finish))
        out: np.ndarray = done[measured] - a[measured]
        return out

    def _compute_ready(self, si: int) -> np.ndarray:
        if self.plain:
            return self._compute_ready_plain(si)
        stage = self.query.stages[si]
        to = self.routed[si]
        ready = np.full(len(to), -np.inf)
        for edge in stage.inputs:
            up = self.up[edge.key]
            rows = np.flatnonzero(up >= 0)
            src = up[rows]
            if edge.src < 0:
                sent = self.arrivals[src]
                frm = np.zeros(len(src), dtype=np.intp)
            else:
                sent, frm = self.finish[edge.src][src], self.routed[edge.src][src]
            delay = edge.delay[frm, to[rows]]
            if edge.crosses:
                link = edge.link[frm, to[rows]]
                over = np.flatnonzero((link >= 0) & np.isfinite(sent))
                given = self._overrides.get(edge.key)
                if given is not None:
                    use = over[~np.isnan(given[rows[over]])]
                    delay[use] = given[rows[use]]
                self.transfers[edge.key] = Transfers(
                    edge=edge.key, rows=rows[over], link=link[over], start=sent[over],
                    seconds=delay[over], mbit=edge.mbit)
            ready[rows] = np.maximum(ready[rows], sent + delay)
        return ready

    def _compute_ready_plain(self, si: int) -> np.ndarray:
        """:meth:`_compute_ready` when every request visits every stage once (rows are
        requests)."""
        stage = self.query.stages[si]
        to = self.routed[si]
        ready: np.ndarray | None = None
        for edge in stage.inputs:
            t = self._sent(edge, to)
            ready = t if ready is None else np.maximum(ready, t)
        assert ready is not None  # every stage has an input (the spec checks reachability)
        return ready

    def _sent(self, edge: SimEdge, to: np.ndarray) -> np.ndarray:
        """When each request's message on ``edge`` arrives at its routed deployment ``to``,
        recording the edge's link transfers."""
        if edge.src < 0:
            sent = self.arrivals
            frm = np.zeros(len(sent), dtype=np.intp)
        else:
            sent, frm = self.finish[edge.src], self.routed[edge.src]
        delay = edge.delay[frm, to]
        if edge.crosses:
            link = edge.link[frm, to]
            rows = np.flatnonzero((link >= 0) & np.isfinite(sent))
            given = self._overrides.get(edge.key)
            if given is not None:
                use = rows[~np.isnan(given[rows])]
                delay[use] = given[use]
            self.transfers[edge.key] = Transfers(
                edge=edge.key, rows=rows, link=link[rows], start=sent[rows],
                seconds=delay[rows], mbit=edge.mbit)
        out: np.ndarray = sent + delay
        return out


def stream_seed(seed: int, query: SimQuery, kind: int) -> list[int]:
    """The seed of a query's draws of ``kind`` (0: arrivals, 1: routes): ``[seed, position,
    kind]`` for its requests, with the stream appended for a feed."""
    out = [seed, query.position, kind]
    return out if query.stream == 0 else [*out, query.stream]
