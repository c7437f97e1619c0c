"""The decision records: per stage a configuration, a batch size and a placement.

A *placement* lists the devices an operator runs on and how many replicas each hosts. Load is
split across the devices in proportion to their capacity (requests per second they can serve),
so every device of a placement runs at the same utilisation: what a capacity-weighted load
balancer does; unless every replica group states its ``share`` of the stage's requests, which is
then the split (a balancer routes any shares: e.g. the edge devices filled to the utilisation
bound first and the rest sent to the cloud, :func:`circinus.plan.units.fill_shares`).

A stage is either *dedicated* (``level is None``: the placement's replicas serve this query
alone) or *shared*: on each device of its placement it joins the :class:`DeploymentKey`
``(operator, configuration, device, batch, level)``, whose replicas serve every query routed to
it and are sized so that the deployment runs at no more than ``level`` utilisation. A shared
stage's ``Replicas.count`` is then the fewest replicas that deployment can have with this query
on it (its own load over the level, rounded up): what its latency is guaranteed against.
"""

from __future__ import annotations

from dataclasses import dataclass

from circinus.spec.index import ConfigKey


@dataclass(frozen=True, order=True)
class Replicas:
    """``count`` replicas of a stage on ``device``."""

    device: str
    count: int
    share: float | None = None
    """Fraction of the stage's requests sent here, ``0 < share <= 1``; ``None`` on every group
    of a placement: in proportion to capacity (see the module note)."""

    def __post_init__(self) -> None:
        assert self.count >= 1, self
        assert self.share is None or 0 < self.share <= 1 + 1e-9, self


Placement = tuple[Replicas, ...]
"""Replica groups of one stage, sorted by device name, each device at most once; either every
group states its share (they sum to 1) or none does."""


@dataclass(frozen=True)
class StagePlan:
    """The decision for one stage of a query's pipeline."""

    stage: str
    config: ConfigKey
    batch: int
    placement: Placement
    level: float | None = None
    """Utilisation bound of the shared deployments the stage joins; ``None``: dedicated."""

    @property
    def shared(self) -> bool:
        """Whether the stage runs on shared deployments."""
        return self.level is not None

    @property
    def devices(self) -> tuple[str, ...]:
        """Names of the devices this stage runs on."""
        return tuple(r.device for r in self.placement)


@dataclass(frozen=True)
class QueryPlan:
    """A full plan of one query: one :class:`StagePlan` per stage, in topological order."""

    query: str
    stages: tuple[StagePlan, ...]

    def stage(self, name: str) -> StagePlan:
        """The decision for stage ``name`` (raises ``KeyError`` if absent)."""
        for s in self.stages:
            if s.stage == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True)
class DeploymentKey:
    """What makes two shared stages one deployment: the same operator configuration on the same
    device, with the same batch size, sized for the same utilisation level."""

    operator: str
    config: ConfigKey
    device: str
    batch: int
    level: float

    @property
    def resource(self) -> str:
        """The deployment's name among a plan's resources (``("deployment", resource)``)."""
        knobs = ",".join(map(str, self.config))
        return f"{self.operator}[{knobs}]@{self.device}/b{self.batch}/u{self.level:.6g}"
