"""What admitted plans use of every constrained resource, and who holds it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from circinus.estimate.base import EPS

Resource = tuple[str, str]
"""``("device", name)``, ``("memory", device)`` or ``("link", "src->dst")``."""


class Ledger:
    """Capacities, their use by the admitted plans, and the holders of each resource.

    Use is kept as running sums; a resource whose last holder leaves is reset to exactly 0, so
    rounding errors do not accumulate over a long run. A plan *fits* when, for every constrained
    resource it uses, ``used + amount <= capacity + EPS`` (the rule of the selectors).
    """

    def __init__(self, capacity: Mapping[Resource, float]) -> None:
        self.capacity: dict[Resource, float] = dict(capacity)
        self.used: dict[Resource, float] = {}
        self._holders: dict[Resource, dict[str, None]] = {}

    def fits(self, usage: Mapping[Resource, float]) -> bool:
        """Whether a plan using ``usage`` fits what is left."""
        cap = self.capacity
        used = self.used
        return all(used.get(r, 0.0) + v <= cap[r] + EPS for r, v in usage.items() if r in cap)

    def add(self, name: str, usage: Mapping[Resource, float]) -> None:
        """Book ``usage`` for the admitted query ``name`` (no capacity check)."""
        for r, v in usage.items():
            self.used[r] = self.used.get(r, 0.0) + v
            self._holders.setdefault(r, {})[name] = None

    def remove(self, name: str, usage: Mapping[Resource, float]) -> None:
        """Release what ``add(name, usage)`` booked."""
        for r, v in usage.items():
            holders = self._holders[r]
            del holders[name]
            if holders:
                self.used[r] -= v
            else:
                del self._holders[r]
                self.used.pop(r, None)

    def holders(self, resource: Resource) -> Iterator[str]:
        """The admitted queries using ``resource``, in the order they took it."""
        return iter(self._holders.get(resource, {}))

    def left(self, resource: Resource) -> float:
        """Capacity left of ``resource`` (infinite when it is not constrained)."""
        cap = self.capacity.get(resource)
        return float("inf") if cap is None else cap - self.used.get(resource, 0.0)

    def over(self) -> list[Resource]:
        """The resources used beyond their capacity (after a capacity cut), sorted."""
        return sorted(r for r, cap in self.capacity.items()
                      if self.used.get(r, 0.0) > cap + EPS)
