"""A read-only index over a validated :class:`~circinus.spec.models.World`.

The planner and the estimator look things up millions of times (the profile of a configuration
on a hardware class, the link between two sites, a stage's predecessors); this module resolves
every name once so that those look-ups are dictionary hits. Build it with
:func:`circinus.spec.validate.build_index`, which also checks every reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from circinus.spec.shares import share_ratio

if TYPE_CHECKING:
    from circinus.spec.models import (
        Config,
        Device,
        KnobValue,
        LatencyProfile,
        Link,
        Operator,
        Pipeline,
        Query,
        Site,
        World,
    )

ConfigKey = tuple["KnobValue", ...]
"""A configuration as a tuple of knob values, in the operator's knob order; for an operator
whose profiles list replica shares, followed by the share (:mod:`circinus.spec.shares`)."""


@dataclass(frozen=True)
class OperatorIndex:
    """The configurations of one operator and their profiles by hardware class."""

    spec: Operator
    knob_names: tuple[str, ...]
    configs: tuple[ConfigKey, ...]
    profiles: dict[tuple[ConfigKey, str], LatencyProfile]
    output_kb: dict[ConfigKey, float]
    accuracy: dict[ConfigKey, float]
    fanout: dict[ConfigKey, tuple[float, float]] = field(default_factory=dict)
    """Per configuration, the ``(mean, cv)`` of the objects one request becomes after the
    operator (:class:`~circinus.spec.models.FanOut`); empty when it does not fan out."""
    has_shares: bool = False
    """Whether a profile lists replica shares: keys then end with the share's ratio to the
    profile's own units (1.0: the profile as written)."""

    def config_dict(self, key: ConfigKey) -> Config:
        """The knobs of configuration ``key`` as a ``{knob: value}`` mapping (without the share:
        :meth:`share_of`)."""
        return dict(zip(self.knob_names, key[:len(self.knob_names)], strict=True))

    def share_of(self, key: ConfigKey) -> float:
        """The share of ``key`` as a ratio to its profiles' own units (1.0 without shares)."""
        return float(key[-1]) if self.has_shares else 1.0

    def is_own(self, key: ConfigKey) -> bool:
        """Whether ``key`` is at its profiles' own units (always, for an operator without
        shares): the configurations a profiler measures."""
        return self.share_of(key) == 1.0

    def key_of(self, config: Config, *, hardware: str | None = None,
               units: float | None = None) -> ConfigKey:
        """The key of a full configuration mapping (raises ``KeyError`` on a missing knob); for
        an operator with shares, the share a replica of ``units`` takes on ``hardware`` (without
        them: the profiles' own units). A share no profile lists gives a key without profile."""
        base = tuple(config[k] for k in self.knob_names)
        if not self.has_shares:
            return base
        own = (*base, 1.0)
        profile = self.profiles.get((own, hardware)) if hardware is not None else None
        if units is None or profile is None:
            return own
        return (*base, share_ratio(units, profile.units))


@dataclass(frozen=True)
class PipelineIndex:
    """A pipeline's DAG in topological order with its source-to-sink paths.

    Stages without an operator (*joins*: they only wait for their inputs) are not among
    ``order``, ``operator_of`` and ``preds``: a stage after a join has the join's inputs as its
    predecessors (their messages go to it directly), and a join that is the sink ends a
    request when the last of ``sink_inputs`` is done. ``joins`` keeps them for display.
    """

    spec: Pipeline
    order: tuple[str, ...]
    """Names of the stages with an operator, in a topological order."""
    operator_of: dict[str, str]
    preds: dict[str, tuple[str, ...]]
    """Stage -> predecessors (sources or stages with an operator; joins resolved)."""
    sink: str
    paths: tuple[tuple[str, ...], ...]
    """Every path from a source to a stage whose completion ends a request (the sink, or one
    of ``sink_inputs``), each starting with a source name; joins left out."""
    forks: dict[str, str | None]
    """Per stage with several inputs (and an operator-less sink with several): the nearest
    source or stage every path into it passes (its immediate dominator), ``None`` when its
    inputs start from different sources."""
    source_kb: dict[str, float]
    joins: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Stage without an operator -> its inputs as the edges name them."""
    sink_inputs: tuple[str, ...] = ()
    """When the sink is a join: the sources and stages whose completion ends a request."""
    ancestors: dict[str, frozenset[str]] = field(default_factory=dict)
    """Source or stage -> the sources it descends from (a source: itself)."""
    dominators: dict[str, frozenset[str]] = field(default_factory=dict)
    """Source or stage -> the nodes every path into it passes, itself included."""
    fanout_stage: str | None = None
    """The stage whose operator fans out (at most one per pipeline), or ``None``."""
    scope: frozenset[str] = frozenset()
    """The stages after :attr:`fanout_stage`: they serve its objects, one sub-request each."""
    branch_at: dict[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)
    """Per stage that chooses a branch: ``((successor, probability), ...)``."""
    outcomes: tuple[Outcome, ...] = ()
    """The ways a request may go through the stages outside :attr:`scope` (every branch
    point's choice), with their probabilities; one outcome, every edge, without branches."""
    object_outcomes: tuple[Outcome, ...] = ()
    """The same for one object through the stages of :attr:`scope` (empty without fan-out)."""

    @property
    def ends(self) -> tuple[str, ...]:
        """The nodes whose completion ends a request: the sink, or a join sink's inputs."""
        return self.sink_inputs or (self.sink,)

    def rate(self, query: Query, node: str) -> float:
        """Messages per second ``node`` (a source or a stage) handles for ``query``: the query's
        ``rate_rps``, unless every source it descends from has its own rate
        (``source_rate_rps``; the world is checked so that it then descends from one)."""
        own = query.source_rate_rps
        if not own:
            return query.rate_rps
        ancestry = self.ancestors[node]
        if any(s not in own for s in ancestry):
            return query.rate_rps
        return own[min(ancestry)]

    def unwaited(self, query: Query) -> frozenset[str]:
        """The sources and stages of ``query`` that its requests do not wait for: those fed
        only by sources with their own rate, whose latest message a join takes as it is."""
        own = query.source_rate_rps
        if not own:
            return frozenset()
        return frozenset(n for n, srcs in self.ancestors.items() if srcs <= own.keys())

    def source_message_kb(self, query: Query, source: str) -> float:
        """Size of ``query``'s messages from ``source``, KB (its own, or the pipeline's)."""
        return query.source_output_kb.get(source, self.source_kb[source])

    def fork_of(self, inputs: tuple[str, ...]) -> str | None:
        """The nearest node every path into all of ``inputs`` passes, ``None`` when they start
        from different sources (see :attr:`forks`)."""
        common = frozenset.intersection(*(self.dominators[n] for n in inputs))
        rank = {name: i for i, name in enumerate((*self.source_kb, *self.order))}
        return max(common, key=lambda n: rank.get(n, -1), default=None)

    @property
    def plain(self) -> bool:
        """Whether every request visits every stage once (no fan-out, no branch)."""
        return self.fanout_stage is None and not self.branch_at

    def fanout_mean(self, operators: dict[str, OperatorIndex],
                    configs: Mapping[str, ConfigKey]) -> float:
        """Mean objects per request of the fan-out stage in its configuration (1 without)."""
        if self.fanout_stage is None:
            return 1.0
        return operators[self.operator_of[self.fanout_stage]].fanout[
            configs[self.fanout_stage]][0]

    def visits(self, k_mean: float = 1.0
               ) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
        """Sub-requests per request at each stage and messages per request on each edge
        ``(from, to)``: the probability of the outcomes that visit it, times ``k_mean``, the
        fan-out's mean objects per request, after the fan-out stage. Example: a branch sending
        30 % of requests to ``ocr`` gives it 0.3; a fan-out of mean 7.7 gives the stage after
        it 7.7."""
        stage = {s: 0.0 for s in self.order}
        edge = {(p, s): 0.0 for s in self.order for p in self.preds[s]}
        for outcomes, times in ((self.outcomes, 1.0), (self.object_outcomes, k_mean)):
            for oc in outcomes:
                for s in oc.stages:
                    stage[s] += oc.prob * times
                for e in oc.edges:
                    edge[e] += oc.prob * times
        return stage, edge


@dataclass(frozen=True)
class Outcome:
    """One way through a pipeline with branches: the edges taken and the stages visited."""

    prob: float
    edges: frozenset[tuple[str, str]]
    stages: frozenset[str]


@dataclass(frozen=True)
class WorldIndex:
    """Every name of a world resolved to its object."""

    world: World
    sites: dict[str, Site]
    devices: dict[str, Device]
    links: dict[tuple[str, str], Link]
    operators: dict[str, OperatorIndex]
    pipelines: dict[str, PipelineIndex]

    @cached_property
    def capacities(self) -> dict[tuple[str, str], float]:
        """Every constrained resource and its capacity, named as plans' usage names them:
        ``("device", name)`` in units, ``("memory", device)`` in GB where the device states its
        memory, ``("link", "src->dst")`` in Mbit/s where the link states a capacity."""
        cap: dict[tuple[str, str], float] = {}
        for d in self.world.devices:
            cap["device", d.name] = d.units
            if d.memory_gb is not None:
                cap["memory", d.name] = d.memory_gb
        for (src, dst), link in self.links.items():
            if link.capacity_mbps is not None:
                cap["link", f"{src}->{dst}"] = link.capacity_mbps
        return cap

    def link(self, src_site: str, dst_site: str) -> Link | None:
        """The link from ``src_site`` to ``dst_site`` or ``None`` (same site: ``None`` too)."""
        return self.links.get((src_site, dst_site))

    def reachable(self, src_site: str, dst_site: str) -> bool:
        """Whether data at ``src_site`` can be sent to ``dst_site`` (one hop)."""
        return src_site == dst_site or (src_site, dst_site) in self.links
