"""What the simulator serves: a plan file checked against its world and resolved to numbers.

:func:`compile_plan` reads only the world (``circinus.spec``) and the plan file's models; it never
asks the planner's estimator anything. Every admitted query becomes a :class:`SimQuery`: per
stage its replica groups (device, replicas, batch service mean and cv from the profile, scaled by
the query's ``work_scale``), the probability that a request is routed to each group and, per
incoming DAG edge, the nominal time of a message from every upstream endpoint to every group and
the link it crosses. A plan that does not fit its world (another world, an unknown device, a
configuration the device has no profile for) is a :class:`~circinus.errors.SpecError` naming the
plan's field and the way out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from circinus.errors import SpecError
from circinus.plan.file import OperatorOut, PlanFile, PredictedOut, QueryOut
from circinus.simulate.network import MBIT_PER_KB, message_seconds
from circinus.simulate.service import batch_mean_ms, profile_cv
from circinus.spec.index import PipelineIndex, WorldIndex
from circinus.spec.models import Query

REPLAN = "plan this world again with `circinus plan WORLD --json PLAN`"


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
class SimGroup:
    """The replicas of one stage of one query on one device: a FIFO queue of batches."""

    device: int
    """Position of the device in the world's device list."""
    replicas: int
    mean_s: float
    """Mean service time of one batch, seconds (profile x work_scale)."""
    cv: float
    units: float
    """Capacity units one replica occupies."""


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
    """Nominal seconds from upstream endpoint ``i`` to group ``j`` (shape ``[up, groups]``)."""
    link: np.ndarray
    """Link position crossed from ``i`` to ``j``, or -1 on the same site (same shape)."""

    @property
    def crosses(self) -> bool:
        """Whether some route of this edge crosses a link."""
        return bool(np.any(self.link >= 0))


@dataclass(frozen=True)
class SimStage:
    """One stage of a query: batch size, replica groups, routing shares and inputs."""

    name: str
    batch: int
    groups: tuple[SimGroup, ...]
    shares: np.ndarray
    """Probability that a request goes to each group: proportional to replicas x b / t_b."""
    inputs: tuple[SimEdge, ...]


@dataclass(frozen=True)
class SimQuery:
    """An admitted query resolved to numbers, with what its plan file predicted."""

    position: int
    """Position in the world's query list: it seeds the query's random streams."""
    spec: Query
    stages: tuple[SimStage, ...]
    """In topological order; the last is the sink."""
    predicted: PredictedOut
    extra_arrivals: int
    """Arrivals simulated after the end so that every measured request's batches fill."""


@dataclass(frozen=True)
class SimWorld:
    """Everything the engine needs: the admitted queries, the devices and the links."""

    world: str
    queries: tuple[SimQuery, ...]
    devices: tuple[str, ...]
    links: tuple[SimLink, ...]
    allocated_units: tuple[float, ...]
    """Units the admitted plans allocate on each device."""
    capacity_units: tuple[float, ...]
    predicted_goodput: float
    total_queries: int


def compile_plan(index: WorldIndex, plan: PlanFile, *, origin: str = "plan") -> SimWorld:
    """Check ``plan`` against the world of ``index`` and resolve it for the simulator.

    ``origin`` (the plan file's path) starts every error message.

    Raises:
        SpecError: the plan is for another world or does not fit this one, e.g.
            ``plan.json: queries[3].operators[0].placement[0].device: unknown device 'gpu-9'``.
    """
    world = index.world
    if plan.world != world.name:
        raise SpecError(f"{origin}: world: the plan is for world {plan.world!r}, not "
                        f"{world.name!r}; pass the matching world, or {REPLAN}")
    specs = {q.name: (i, q) for i, q in enumerate(world.queries)}
    if len(plan.queries) != len(specs):
        raise SpecError(f"{origin}: queries: the plan has {len(plan.queries)} queries, the world "
                        f"{len(specs)}; {REPLAN}")
    links = sorted(index.links.items())
    link_pos = {pair: i for i, (pair, _) in enumerate(links)}
    dev_pos = {d.name: i for i, d in enumerate(world.devices)}
    allocated = [0.0] * len(world.devices)
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
        stages = _stages(index, path, out, spec, dev_pos, link_pos)
        for st in stages:
            for g in st.groups:
                allocated[g.device] += g.replicas * g.units
        queries.append(SimQuery(position=position, spec=spec, stages=stages,
                                predicted=out.predicted, extra_arrivals=_extra(stages)))
    sim_links = tuple(SimLink(src=s, dst=d, bandwidth_mbps=ln.bandwidth_mbps,
                              rtt_s=ln.rtt_ms / 1000.0, capacity_mbps=ln.capacity_mbps)
                      for (s, d), ln in links)
    return SimWorld(
        world=world.name, queries=tuple(queries), devices=tuple(d.name for d in world.devices),
        links=sim_links, allocated_units=tuple(allocated),
        capacity_units=tuple(d.units for d in world.devices),
        predicted_goodput=plan.goodput, total_queries=len(plan.queries))


def _unknown(path: str, name: str, known: Iterable[str], what: str) -> None:
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


def _stages(index: WorldIndex, path: str, out: QueryOut, spec: Query,
            dev_pos: dict[str, int], link_pos: dict[tuple[str, str], int]
            ) -> tuple[SimStage, ...]:
    pipe = index.pipelines[spec.pipeline]
    by_stage = {op.stage: (i, op) for i, op in enumerate(out.operators)}
    missing = [s for s in pipe.order if s not in by_stage]
    if missing or len(by_stage) != len(out.operators) or len(out.operators) != len(pipe.order):
        extra = sorted(set(by_stage) - set(pipe.order))
        raise SpecError(f"{path}.operators: must plan each stage of pipeline {spec.pipeline!r} "
                        f"once ({', '.join(pipe.order)}); missing {missing or 'none'}, unknown "
                        f"{extra or 'none'}; {REPLAN}")
    stage_pos = {s: i for i, s in enumerate(pipe.order)}
    sources = list(pipe.source_kb)
    stages: list[SimStage] = []
    sizes: list[float] = []  # output KB of each stage, in order
    groups_at: list[tuple[SimGroup, ...]] = []
    edge_key = 0
    for s in pipe.order:
        oi, op = by_stage[s]
        groups, out_kb = _groups(index, f"{path}.operators[{oi}]", op, spec, pipe, dev_pos)
        inputs = []
        for pred in pipe.preds[s]:
            if pred in stage_pos:
                src = stage_pos[pred]
                up_sites = [index.world.devices[g.device].site for g in groups_at[src]]
                up_devs = [g.device for g in groups_at[src]]
                kb = sizes[src]
            else:
                src = -1 - sources.index(pred)
                up_sites = [spec.sources[pred]]
                up_devs = [-1]
                kb = pipe.source_kb[pred]
            delay, link = _routes(index, f"{path}.operators[{oi}]", kb, up_sites, up_devs,
                                  groups, link_pos)
            inputs.append(SimEdge(key=edge_key, src=src, mbit=kb * MBIT_PER_KB, delay=delay,
                                  link=link))
            edge_key += 1
        cap = np.array([g.replicas * op.allocation.batch / g.mean_s for g in groups])
        stages.append(SimStage(name=s, batch=op.allocation.batch, groups=groups,
                               shares=cap / cap.sum(), inputs=tuple(inputs)))
        sizes.append(out_kb)
        groups_at.append(groups)
    return tuple(stages)


def _groups(index: WorldIndex, path: str, op: OperatorOut, spec: Query, pipe: PipelineIndex,
            dev_pos: dict[str, int]) -> tuple[tuple[SimGroup, ...], float]:
    """The replica groups of one planned stage and the stage's output size, KB."""
    operator = index.operators[pipe.operator_of[op.stage]]
    if op.operator != operator.spec.name:
        raise SpecError(f"{path}.operator: stage {op.stage!r} runs operator "
                        f"{operator.spec.name!r} in this world, not {op.operator!r}; {REPLAN}")
    try:
        key = operator.key_of(op.configuration)
    except KeyError as exc:
        raise SpecError(f"{path}.configuration: knob {exc.args[0]!r} of operator "
                        f"{op.operator!r} has no value; {REPLAN}") from None
    if key not in operator.output_kb or len(op.configuration) != len(operator.knob_names):
        raise SpecError(f"{path}.configuration: {op.configuration!r} is not a configuration of "
                        f"operator {op.operator!r}; {REPLAN}")
    if not op.placement:
        raise SpecError(f"{path}.placement: an admitted stage needs at least one device; {REPLAN}")
    scale = spec.work_scale.get(op.stage, 1.0)
    groups = []
    for ri, rep in enumerate(op.placement):
        rpath = f"{path}.placement[{ri}]"
        if rep.device not in dev_pos:
            _unknown(f"{rpath}.device", rep.device, dev_pos, "device")
        dev = index.devices[rep.device]
        if rep.site != dev.site:
            raise SpecError(f"{rpath}.site: device {rep.device!r} stands at {dev.site!r} in this "
                            f"world, not {rep.site!r}; {REPLAN}")
        profile = operator.profiles.get((key, dev.hardware))
        if profile is None:
            raise SpecError(f"{rpath}.device: operator {op.operator!r} {op.configuration!r} has "
                            f"no profile on {dev.hardware!r} (device {rep.device!r}); {REPLAN}")
        mean_ms = batch_mean_ms(profile, op.allocation.batch)
        if mean_ms is None:
            raise SpecError(f"{path}.allocation.batch: batch {op.allocation.batch} is not "
                            f"profiled for {op.operator!r} {op.configuration!r} on "
                            f"{dev.hardware!r}; {REPLAN}")
        groups.append(SimGroup(device=dev_pos[rep.device], replicas=rep.replicas,
                               mean_s=mean_ms * scale / 1000.0, cv=profile_cv(profile),
                               units=profile.units))
    if len({g.device for g in groups}) != len(groups):
        raise SpecError(f"{path}.placement: a device is listed twice; {REPLAN}")
    return tuple(groups), operator.output_kb[key]


def _routes(index: WorldIndex, path: str, kb: float, up_sites: list[str], up_devs: list[int],
            groups: tuple[SimGroup, ...], link_pos: dict[tuple[str, str], int]
            ) -> tuple[np.ndarray, np.ndarray]:
    """Nominal message seconds and crossed link from every upstream endpoint to every group."""
    delay = np.zeros((len(up_sites), len(groups)))
    link = np.full((len(up_sites), len(groups)), -1, dtype=np.intp)
    devices = index.world.devices
    for i, (site_a, dev_a) in enumerate(zip(up_sites, up_devs, strict=True)):
        for j, g in enumerate(groups):
            site_b = devices[g.device].site
            if dev_a == g.device:
                continue
            if site_a == site_b:
                site = index.sites[site_a]
                delay[i, j] = message_seconds(kb, site.lan_bandwidth_mbps, site.lan_rtt_ms)
                continue
            ln = index.link(site_a, site_b)
            if ln is None:
                raise SpecError(f"{path}.placement: no link from site {site_a!r} to "
                                f"{site_b!r} (device {devices[g.device].name!r}) in this world; "
                                f"{REPLAN}")
            solo = min(ln.bandwidth_mbps, ln.capacity_mbps or math.inf)
            delay[i, j] = message_seconds(kb, solo, ln.rtt_ms)
            link[i, j] = link_pos[site_a, site_b]
    return delay, link


def _extra(stages: tuple[SimStage, ...]) -> int:
    """Arrivals to simulate after the end: enough that each group's last measured batch fills.

    Per stage, ``2b + 4`` more requests are wanted on the group with the smallest share.
    """
    need = sum(math.ceil((2 * st.batch + 4) / float(st.shares.min())) for st in stages)
    return min(need, 100_000)
