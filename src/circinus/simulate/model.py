"""What the simulator serves: a plan file checked against its world and resolved to numbers.

:func:`compile_plan` reads only the world (``circinus.spec``) and the plan file's models; it never
asks the planner's estimator anything. Every deployment of the plan becomes a
:class:`SimDeployment` (device, replicas, batch size, the profile's batch service mean and cv);
every admitted query a :class:`SimQuery`: per stage the deployments its route sends requests to
and their shares, the query's work multiplier there and, per incoming DAG edge, the nominal time
of a message from every upstream endpoint to every routed deployment and the link it crosses. A
plan that does not fit its world (another world, an unknown device or deployment, a
configuration the device has no profile for, shares that do not sum to 1) is a
:class:`~circinus.errors.SpecError` naming the plan's field and the way out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal, NoReturn

import numpy as np

from circinus.errors import SpecError
from circinus.plan.file import DeploymentOut, PlanFile, PredictedOut, QueryOut
from circinus.simulate.network import MBIT_PER_KB, message_seconds
from circinus.simulate.service import batch_mean_ms, profile_cv
from circinus.spec.index import WorldIndex
from circinus.spec.models import Query

REPLAN = "plan this world again with `circinus plan WORLD --json PLAN`"
PLAN_FORMAT = "circinus-plan/2"
"""The plan file format the simulator serves (shared deployments)."""
SHARE_TOLERANCE = 1e-6
"""A stage's route shares must sum to 1 within this."""


@dataclass(frozen=True)
class SimLink:
    """A directed link; ``capacity_mbps`` set means it is shared by processor sharing."""

    src: str
    dst: str
    bandwidth_mbps: float
    rtt_s: float
    capacity_mbps: float | None

    @property
    def shared(self) -> bool:
        """Whether concurrent transfers slow each other (the link has a capacity)."""
        return self.capacity_mbps is not None


@dataclass(frozen=True)
class SimDeployment:
    """One deployment: ``replicas`` servers on a device taking batches from one FIFO queue fed
    by every query routed to it."""

    name: str
    position: int
    """Position in the plan's deployment list: it seeds the deployment's service draws."""
    device: int
    """Position of the device in the world's device list."""
    sharing: Literal["shared", "dedicated"]
    """As the plan says; both are served the same way."""
    replicas: int
    batch: int
    mean_s: float
    """Mean service time of one batch at work multiplier 1, seconds (the profile's)."""
    cv: float
    units: float
    """Capacity units one replica occupies."""
    predicted_utilization: float
    """The plan's predicted busy fraction of its replicas."""


@dataclass(frozen=True)
class SimEdge:
    """One DAG edge into a stage: one message per request from each upstream endpoint."""

    key: int
    """Position of the edge among the query's edges (identifies its link transfers)."""
    src: int
    """Upstream stage position, or ``-1 - k`` for the pipeline's ``k``-th source."""
    mbit: float
    """Message size, Mbit."""
    delay: np.ndarray
    """Nominal seconds from upstream endpoint ``i`` to routed deployment ``j`` (shape
    ``[up, routes]``)."""
    link: np.ndarray
    """Link position crossed from ``i`` to ``j``, or -1 on the same site (same shape)."""

    @property
    def crosses(self) -> bool:
        """Whether some route of this edge crosses a link."""
        return bool(np.any(self.link >= 0))


@dataclass(frozen=True)
class SimStage:
    """One stage of a query: where its requests go, with which work, and its inputs."""

    name: str
    deployments: tuple[int, ...]
    """Positions (in :attr:`SimWorld.deployments`) of the deployments of the stage's route."""
    shares: np.ndarray
    """Fraction of the stage's requests sent to each of them (sums to 1)."""
    work: float
    """Work multiplier of this query's requests at this stage (its ``work_scale``, default 1)."""
    inputs: tuple[SimEdge, ...]
    fanout: tuple[float, float] | None = None
    """For the pipeline's fan-out stage: ``(mean, cv)`` of the objects one request becomes in
    the plan's configuration (:mod:`circinus.spec.counts`); ``None`` elsewhere."""
    choices: tuple[tuple[str, float], ...] = ()
    """For a branch point: ``(successor stage, probability)``, at most one taken per request
    (none with the rest)."""
    objects: bool = False
    """Whether the stage serves the fan-out's objects (it comes after the fan-out stage)."""


@dataclass(frozen=True)
class SimOutput:
    """An edge from a feed's stage (or source) into a stage of its query's requests: the
    messages load the link, the requests take the latest of them without waiting."""

    edge: SimEdge
    """The edge (``src`` in the feed's numbering; ``delay`` and ``link`` towards ``shares``'s
    deployments)."""
    shares: np.ndarray
    """Fraction of the messages sent to each deployment of the receiving stage's route."""


@dataclass(frozen=True)
class SimQuery:
    """An admitted query resolved to numbers, with what its plan file predicted.

    A query whose sources have rates of their own (``source_rate_rps``) is several streams:
    its requests (``stream`` 0, measured) and one *feed* per such source (``stream`` k, its
    k-th by name), which serves the stages fed only by that source at that source's rate and
    sends its messages into the requests' joins (``outputs``); a feed is not measured.
    """

    position: int
    """Position in the world's query list: it seeds the query's arrivals and routes."""
    spec: Query
    stages: tuple[SimStage, ...]
    """In topological order; the last is the sink unless ``ends`` says otherwise."""
    predicted: PredictedOut
    extra_arrivals: int
    """Arrivals simulated after the end so that every measured request's batches fill."""
    ends: tuple[int, ...] = ()
    """Stages whose finish ends a request (the inputs of a sink without an operator); empty:
    the last stage."""
    stream: int = 0
    """0: the query's requests; k > 0: the feed of its k-th source with a rate of its own."""
    feed_rate_rps: float = 0.0
    """A feed's message rate, req/s (the requests come at the spec's ``rate_rps``)."""
    outputs: tuple[SimOutput, ...] = ()
    """A feed's edges into the requests' stages."""

    @property
    def rate_rps(self) -> float:
        """Arrivals per second of this stream."""
        return self.spec.rate_rps if self.stream == 0 else self.feed_rate_rps

    @property
    def measured(self) -> bool:
        """Whether this stream's latencies are the query's (not a feed)."""
        return self.stream == 0


@dataclass(frozen=True)
class SimWorld:
    """Everything the engine needs: the deployments, the admitted queries, devices and links."""

    world: str
    deployments: tuple[SimDeployment, ...]
    queries: tuple[SimQuery, ...]
    devices: tuple[str, ...]
    links: tuple[SimLink, ...]
    allocated_units: tuple[float, ...]
    """Units the plan's deployments allocate on each device (replicas x units per replica)."""
    capacity_units: tuple[float, ...]
    predicted_goodput: float
    total_queries: int


def compile_plan(index: WorldIndex, plan: PlanFile, *, origin: str = "plan") -> SimWorld:
    """Check ``plan`` against the world of ``index`` and resolve it for the simulator.

    ``origin`` (the plan file's path) starts every error message.

    Raises:
        SpecError: the plan is for another world or does not fit this one, e.g.
            ``plan.json: deployments[3].device: unknown device 'gpu-9'``.
    """
    world = index.world
    if plan.format != PLAN_FORMAT:
        raise SpecError(f"{origin}: format: the simulator serves {PLAN_FORMAT!r} plan files "
                        f"(shared deployments), not {plan.format!r}; {REPLAN}")
    if plan.world != world.name:
        raise SpecError(f"{origin}: world: the plan is for world {plan.world!r}, not "
                        f"{world.name!r}; pass the matching world, or {REPLAN}")
    specs = {q.name: (i, q) for i, q in enumerate(world.queries)}
    if len(plan.queries) != len(specs):
        raise SpecError(f"{origin}: queries: the plan has {len(plan.queries)} queries, the world "
                        f"{len(specs)}; {REPLAN}")
    dev_pos = {d.name: i for i, d in enumerate(world.devices)}
    deployments = tuple(_deployment(index, f"{origin}: deployments[{i}]", i, dep, dev_pos)
                        for i, dep in enumerate(plan.deployments))
    dep_pos: dict[str, int] = {}
    for i, dep in enumerate(plan.deployments):
        if dep.name in dep_pos:
            raise SpecError(f"{origin}: deployments[{i}].name: {dep.name!r} is also "
                            f"deployments[{dep_pos[dep.name]}]; names must be unique; {REPLAN}")
        dep_pos[dep.name] = i
    allocated = [0.0] * len(world.devices)
    for d in deployments:
        allocated[d.device] += d.replicas * d.units
    for dev, used in zip(world.devices, allocated, strict=True):
        # A plan never allocates more than a device has; one that does was not written by
        # the planner (and 10**9 replicas would exhaust memory before the first request).
        if used > dev.units * (1 + 1e-9) + 1e-9:
            raise SpecError(f"{origin}: deployments: {used:g} units allocated on device "
                            f"{dev.name!r}, which has {dev.units:g}; {REPLAN}")
    links = sorted(index.links.items())
    link_pos = {pair: i for i, (pair, _) in enumerate(links)}
    resolve = _Resolver(index, plan.deployments, deployments, dep_pos, link_pos)
    queries = []
    for qi, out in enumerate(plan.queries):
        path = f"{origin}: queries[{qi}]"
        if out.name not in specs:
            _unknown(f"{path}.name", out.name, specs, f"query of world {world.name!r}")
        position, spec = specs[out.name]
        _same_query(path, out, spec)
        if not out.admitted:
            continue
        if out.predicted is None:
            raise SpecError(f"{path}.predicted: an admitted query needs its prediction; {REPLAN}")
        stages = resolve.stages(path, out, spec)
        queries.extend(_streams(index, SimQuery(position=position, spec=spec, stages=stages,
                                                predicted=out.predicted, extra_arrivals=0),
                                deployments))
    resolve.check_dedicated(origin)
    sim_links = tuple(SimLink(src=s, dst=d, bandwidth_mbps=ln.bandwidth_mbps,
                              rtt_s=ln.rtt_ms / 1000.0, capacity_mbps=ln.capacity_mbps)
                      for (s, d), ln in links)
    return SimWorld(
        world=world.name, deployments=deployments, queries=tuple(queries),
        devices=tuple(d.name for d in world.devices), links=sim_links,
        allocated_units=tuple(allocated), capacity_units=tuple(d.units for d in world.devices),
        predicted_goodput=plan.goodput, total_queries=len(plan.queries))


def _unknown(path: str, name: str, known: Iterable[str], what: str) -> NoReturn:
    pool = sorted(set(known))
    hint = ", ".join(pool[:8]) + (", ..." if len(pool) > 8 else "") or "none"
    raise SpecError(f"{path}: unknown {what} {name!r}; known: {hint}; {REPLAN}")


def _same_query(path: str, out: QueryOut, spec: Query) -> None:
    """The plan's copy of the query must be the world's: same pipeline and rate."""
    if out.pipeline != spec.pipeline:
        raise SpecError(f"{path}.pipeline: the plan runs {out.name!r} on pipeline "
                        f"{out.pipeline!r}, the world on {spec.pipeline!r}; {REPLAN}")
    if not math.isclose(out.rate_rps, spec.rate_rps, rel_tol=1e-9):
        raise SpecError(f"{path}.rate_rps: the plan was made for {out.rate_rps:g} req/s, the "
                        f"world's {out.name!r} sends {spec.rate_rps:g}; {REPLAN}")
    if out.source_rate_rps != spec.source_rate_rps:
        raise SpecError(f"{path}.source_rate_rps: the plan was made for source rates "
                        f"{out.source_rate_rps or 'none'}, the world's {out.name!r} has "
                        f"{spec.source_rate_rps or 'none'}; {REPLAN}")


def _deployment(index: WorldIndex, path: str, position: int, dep: DeploymentOut,
                dev_pos: dict[str, int]) -> SimDeployment:
    """One deployment checked against the world: operator, configuration, device, profile."""
    operator = index.operators.get(dep.operator)
    if operator is None:
        _unknown(f"{path}.operator", dep.operator, index.operators, "operator")
    if dep.device not in dev_pos:
        _unknown(f"{path}.device", dep.device, dev_pos, "device")
    dev = index.devices[dep.device]
    try:
        key = operator.key_of(dep.config, hardware=dev.hardware, units=dep.units_per_replica)
    except KeyError as exc:
        raise SpecError(f"{path}.config: knob {exc.args[0]!r} of operator {dep.operator!r} has "
                        f"no value; {REPLAN}") from None
    if key not in operator.output_kb or len(dep.config) != len(operator.knob_names):
        own = operator.key_of(dep.config)
        if own in operator.output_kb and len(dep.config) == len(operator.knob_names):
            offered = sorted(p.units for (k, hw), p in operator.profiles.items()
                             if k[:-1] == own[:-1] and hw == dev.hardware)
            raise SpecError(f"{path}.units_per_replica: {dep.units_per_replica:g} is not a "
                            f"share a replica of {dep.operator!r} {dep.config!r} may take on "
                            f"{dev.hardware!r} ({', '.join(f'{u:g}' for u in offered)}); "
                            f"{REPLAN}")
        raise SpecError(f"{path}.config: {dep.config!r} is not a configuration of operator "
                        f"{dep.operator!r}; {REPLAN}")
    if dep.site != dev.site:
        raise SpecError(f"{path}.site: device {dep.device!r} stands at {dev.site!r} in this "
                        f"world, not {dep.site!r}; {REPLAN}")
    profile = operator.profiles.get((key, dev.hardware))
    if profile is None:
        raise SpecError(f"{path}.device: operator {dep.operator!r} {dep.config!r} has no "
                        f"profile on {dev.hardware!r} (device {dep.device!r}); {REPLAN}")
    batch = dep.batch.max_batch_size
    mean_ms = batch_mean_ms(profile, batch)
    if mean_ms is None:
        raise SpecError(f"{path}.batch.max_batch_size: batch {batch} is not profiled for "
                        f"{dep.operator!r} {dep.config!r} on {dev.hardware!r}; {REPLAN}")
    if dep.batch.timeout_ms is not None:
        raise SpecError(f"{path}.batch.timeout_ms: the simulator serves batches when full, as "
                        f"the planner sizes them; got a timeout of {dep.batch.timeout_ms:g} ms; "
                        f"{REPLAN}")
    if not math.isclose(dep.units_per_replica, profile.units, rel_tol=1e-9, abs_tol=1e-12):
        raise SpecError(f"{path}.units_per_replica: {dep.units_per_replica:g}, but a replica of "
                        f"{dep.operator!r} {dep.config!r} takes {profile.units:g} units on "
                        f"{dev.hardware!r} in this world; {REPLAN}")
    return SimDeployment(
        name=dep.name, position=position, device=dev_pos[dep.device], sharing=dep.sharing,
        replicas=dep.replicas, batch=batch, mean_s=mean_ms / 1000.0, cv=profile_cv(profile),
        units=profile.units, predicted_utilization=dep.utilization)


class _Resolver:
    """Resolves the admitted queries' routes against the checked deployments."""

    def __init__(self, index: WorldIndex, plans: list[DeploymentOut],
                 deployments: tuple[SimDeployment, ...], dep_pos: dict[str, int],
                 link_pos: dict[tuple[str, str], int]) -> None:
        self.index = index
        self.plans = plans
        self.deployments = deployments
        self.dep_pos = dep_pos
        self.link_pos = link_pos
        self.users: dict[int, set[str]] = {}
        """Per deployment position, the queries routed to it."""

    def stages(self, path: str, out: QueryOut, spec: Query) -> tuple[SimStage, ...]:
        """The query's stages in topological order, each with its routed deployments."""
        pipe = self.index.pipelines[spec.pipeline]
        by_stage = {r.stage: i for i, r in enumerate(out.route)}
        missing = [s for s in pipe.order if s not in by_stage]
        if missing or len(by_stage) != len(out.route) or len(out.route) != len(pipe.order):
            extra = sorted(set(by_stage) - set(pipe.order))
            raise SpecError(f"{path}.route: must route each stage of pipeline {spec.pipeline!r} "
                            f"once ({', '.join(pipe.order)}); missing {missing or 'none'}, "
                            f"unknown {extra or 'none'}; {REPLAN}")
        stage_pos = {s: i for i, s in enumerate(pipe.order)}
        sources = list(pipe.source_kb)
        stages: list[SimStage] = []
        sizes: list[float] = []  # output KB of each stage, in order
        edge_key = 0
        for s in pipe.order:
            ri = by_stage[s]
            rpath = f"{path}.route[{ri}]"
            targets, shares = self._route(rpath, out, ri, pipe.operator_of[s])
            inputs = []
            for pred in pipe.preds[s]:
                if pred in stage_pos:
                    src = stage_pos[pred]
                    up_devs = [self.deployments[d].device for d in stages[src].deployments]
                    up_sites = [self.index.world.devices[d].site for d in up_devs]
                    kb = sizes[src]
                else:
                    src = -1 - sources.index(pred)
                    up_sites = [spec.sources[pred]]
                    up_devs = [-1]
                    kb = pipe.source_message_kb(spec, pred)
                delay, link = self._transfers(rpath, kb, up_sites, up_devs, targets)
                inputs.append(SimEdge(key=edge_key, src=src, mbit=kb * MBIT_PER_KB,
                                      delay=delay, link=link))
                edge_key += 1
            first = self.plans[targets[0]]
            operator = self.index.operators[first.operator]
            key = operator.key_of(first.config)
            stages.append(SimStage(
                name=s, deployments=targets, shares=shares, work=spec.work_scale.get(s, 1.0),
                inputs=tuple(inputs),
                fanout=operator.fanout[key] if s == pipe.fanout_stage else None,
                choices=pipe.branch_at.get(s, ()), objects=s in pipe.scope))
            sizes.append(operator.output_kb[key])
        return tuple(stages)

    def _route(self, path: str, out: QueryOut, ri: int, operator: str
               ) -> tuple[tuple[int, ...], np.ndarray]:
        """The deployments of one stage's route and their shares, checked."""
        targets: list[int] = []
        for k, step in enumerate(out.route[ri].deployments):
            spath = f"{path}.deployments[{k}].deployment"
            pos = self.dep_pos.get(step.deployment)
            if pos is None:
                _unknown(spath, step.deployment, self.dep_pos, "deployment")
            if pos in targets:
                raise SpecError(f"{spath}: {step.deployment!r} is listed twice; {REPLAN}")
            dep = self.plans[pos]
            if dep.operator != operator:
                raise SpecError(f"{spath}: deployment {step.deployment!r} runs operator "
                                f"{dep.operator!r}, stage {out.route[ri].stage!r} runs "
                                f"{operator!r}; {REPLAN}")
            if targets:
                first = self.plans[targets[0]]
                if dep.config != first.config:
                    raise SpecError(f"{spath}: deployment {step.deployment!r} runs "
                                    f"{dep.config!r}, {first.name!r} of the same stage "
                                    f"{first.config!r}; a stage runs one configuration; {REPLAN}")
            targets.append(pos)
            self.users.setdefault(pos, set()).add(out.name)
        shares = np.array([step.share for step in out.route[ri].deployments])
        total = float(shares.sum())
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise SpecError(f"{path}.deployments: shares sum to {total:.9g}, not 1; {REPLAN}")
        return tuple(targets), shares / total

    def _transfers(self, path: str, kb: float, up_sites: list[str], up_devs: list[int],
                   targets: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Nominal message seconds and crossed link from every upstream endpoint to every
        routed deployment."""
        delay = np.zeros((len(up_sites), len(targets)))
        link = np.full((len(up_sites), len(targets)), -1, dtype=np.intp)
        index = self.index
        devices = index.world.devices
        for i, (site_a, dev_a) in enumerate(zip(up_sites, up_devs, strict=True)):
            for j, pos in enumerate(targets):
                dev_b = self.deployments[pos].device
                site_b = devices[dev_b].site
                if dev_a == dev_b:
                    continue
                if site_a == site_b:
                    site = index.sites[site_a]
                    delay[i, j] = message_seconds(kb, site.lan_bandwidth_mbps, site.lan_rtt_ms)
                    continue
                ln = index.link(site_a, site_b)
                if ln is None:
                    raise SpecError(f"{path}.deployments[{j}]: no link from site {site_a!r} to "
                                    f"{site_b!r} (device {devices[dev_b].name!r}) in this "
                                    f"world; {REPLAN}")
                solo = min(ln.bandwidth_mbps, ln.capacity_mbps or math.inf)
                delay[i, j] = message_seconds(kb, solo, ln.rtt_ms)
                link[i, j] = self.link_pos[site_a, site_b]
        return delay, link

    def check_dedicated(self, origin: str) -> None:
        """A dedicated deployment serves one query."""
        for pos, users in sorted(self.users.items()):
            dep = self.plans[pos]
            if dep.sharing == "dedicated" and len(users) > 1:
                raise SpecError(f"{origin}: deployments[{pos}].sharing: dedicated deployment "
                                f"{dep.name!r} is routed by {len(users)} queries "
                                f"({', '.join(sorted(users)[:3])}); a dedicated deployment "
                                f"serves one query; {REPLAN}")


def _streams(index: WorldIndex, base: SimQuery, deployments: tuple[SimDeployment, ...]
             ) -> list[SimQuery]:
    """``base`` (every stage of the pipeline, in ``pipe.order``) as the streams it is served
    in: its requests and a feed per source with a rate of its own (see :class:`SimQuery`)."""
    spec = base.spec
    pipe = index.pipelines[spec.pipeline]
    unwaited = pipe.unwaited(spec)
    sources = list(pipe.source_kb)
    names = [st.name for st in base.stages]
    out = []
    groups: list[str | None] = [None, *sorted(spec.source_rate_rps)]
    for stream, feed in enumerate(groups):
        def ours(node: str, feed: str | None = feed) -> bool:
            return (node not in unwaited if feed is None
                    else node in unwaited and pipe.ancestors[node] == {feed})
        keep = [i for i, name in enumerate(names) if ours(name)]
        pos = {old: new for new, old in enumerate(keep)}

        def node(e: SimEdge) -> str:
            return names[e.src] if e.src >= 0 else sources[-1 - e.src]

        def renumbered(e: SimEdge, pos: dict[int, int] = pos) -> SimEdge:
            return e if e.src < 0 else replace(e, src=pos[e.src])
        stages = tuple(replace(base.stages[i], inputs=tuple(
            renumbered(e) for e in base.stages[i].inputs if ours(node(e))))
            for i in keep)
        outputs = tuple(SimOutput(edge=renumbered(e), shares=st.shares)
                        for i, st in enumerate(base.stages) if feed is not None and i not in pos
                        for e in st.inputs if ours(node(e)))
        ends = tuple(pos[names.index(e)] for e in pipe.ends
                     if e in names and names.index(e) in pos)
        out.append(replace(base, stages=stages, ends=ends if feed is None else (),
                           stream=stream, outputs=outputs,
                           feed_rate_rps=0.0 if feed is None else spec.source_rate_rps[feed],
                           extra_arrivals=_extra(stages, deployments)))
    return out


def _extra(stages: tuple[SimStage, ...], deployments: tuple[SimDeployment, ...]) -> int:
    """Arrivals to simulate after the end: enough that the query's last measured batches fill
    even without other queries.

    Per stage, ``2b + 4`` more requests are wanted on the routed deployment that needs the most
    of the query's arrivals for them (batch ``b`` over its share).
    """
    need = sum(max(math.ceil((2 * deployments[d].batch + 4) / float(share))
                   for d, share in zip(st.deployments, st.shares.tolist(), strict=True))
               for st in stages)
    return min(need, 100_000)
