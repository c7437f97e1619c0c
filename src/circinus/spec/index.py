"""A read-only index over a validated :class:`~circinus.spec.models.World`.

The planner and the estimator look things up millions of times (the profile of a configuration
on a hardware class, the link between two sites, a stage's predecessors); this module resolves
every name once so that those look-ups are dictionary hits. Build it with
:func:`circinus.spec.validate.build_index`, which also checks every reference.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """A pipeline's DAG in topological order with its source-to-sink paths."""

    spec: Pipeline
    order: tuple[str, ...]
    """Stage names in a topological order."""
    operator_of: dict[str, str]
    preds: dict[str, tuple[str, ...]]
    """Stage -> predecessors (sources or stages)."""
    sink: str
    paths: tuple[tuple[str, ...], ...]
    """Every source-to-sink path, each starting with a source name."""
    forks: dict[str, str | None]
    """Per stage with several inputs: the nearest source or stage every path into it passes
    (its immediate dominator), ``None`` when its inputs start from different sources."""
    source_kb: dict[str, float]


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
