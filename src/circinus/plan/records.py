"""The decision records: per stage a configuration, a batch size and a placement.

A *placement* lists the devices an operator runs on and how many replicas each hosts. Load is
split across the devices in proportion to their capacity (requests per second they can serve),
so every device of a placement runs at the same utilisation: what a capacity-weighted load
balancer does.
"""

from __future__ import annotations

from dataclasses import dataclass

from circinus.spec.index import ConfigKey


@dataclass(frozen=True, order=True)
class Replicas:
    """``count`` replicas of a stage on ``device``."""

    device: str
    count: int

    def __post_init__(self) -> None:
        assert self.count >= 1, self


Placement = tuple[Replicas, ...]
"""Replica groups of one stage, sorted by device name, each device at most once."""


@dataclass(frozen=True)
class StagePlan:
    """The decision for one stage of a query's pipeline."""

    stage: str
    config: ConfigKey
    batch: int
    placement: Placement

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
