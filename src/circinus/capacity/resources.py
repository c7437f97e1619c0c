"""What capacity planning may add to: the world's devices a pattern names, and new devices from
a catalog; and the worlds with capacity added.

A :class:`Growable` is one place units can be added to, at its price per unit-hour: an existing
device or pool (``--resources`` patterns over device names), or a new device of a catalog
offering at one of its sites (``<offering>@<site>``, no units today). Adding a unit to a device
that states its memory adds the memory of one of its units (``memory_gb / units``): a pool grows
by whole machines of the kind it has.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from circinus.errors import SpecError
from circinus.spec.catalog import Catalog
from circinus.spec.models import Device, World

SEARCH_UNITS = 100_000.0
"""Units an existing device or pool is given for the candidate search of capacity planning: far
more than any plan asks for, so that no plan is left out for want of capacity (the search
sizes replicas from the load, so it does no more work for it). The selection bounds each
addition by what its candidates could use at most (:func:`circinus.capacity.model.most_use`)."""


@dataclass(frozen=True)
class Growable:
    """One device or pool units may be added to."""

    name: str
    """Device name (``<offering>@<site>`` for a new one)."""
    new: bool
    """A device from the catalog, not in the world yet."""
    site: str
    hardware: str
    units: float
    """Units it has today (0 for a new one)."""
    price_per_unit_hour: float
    memory_per_unit_gb: float | None
    """Memory one added unit brings, GB; ``None``: memory is not a constraint."""
    most: float
    """Most units it may have (the catalog's ``max_units``; :data:`SEARCH_UNITS` for one of
    the world's)."""

    def device(self, units: float) -> Device:
        """The device with ``units`` units (and the memory they bring). Not validated: the
        search's :data:`SEARCH_UNITS` may bring more memory than a world file may state."""
        memory = None if self.memory_per_unit_gb is None else self.memory_per_unit_gb * units
        return Device.model_construct(name=self.name, site=self.site, hardware=self.hardware,
                                      units=units, price_per_unit_hour=self.price_per_unit_hour,
                                      memory_gb=memory)


def growable(world: World, patterns: Sequence[str] | None, catalog: Catalog | None,
             ) -> tuple[Growable, ...]:
    """The devices of ``world`` whose names match one of ``patterns`` (fnmatch; ``None``: every
    device), then a new device per catalog offering and site it may stand at.

    Raises:
        SpecError: a pattern that matches no device (``--resources``), a catalog naming a
            hardware class or site the world lacks, or a new device's name already taken
            (``--catalog``).
    """
    chosen = list(world.devices)
    if patterns is not None:
        for p in patterns:
            if not any(fnmatch.fnmatchcase(d.name, p) for d in world.devices):
                names = ", ".join(d.name for d in world.devices[:12])
                more = ", ..." if len(world.devices) > 12 else ""
                raise SpecError(f"--resources: {p!r} matches no device of the world; name "
                                f"devices (or fnmatch patterns of them) among: {names}{more}")
        chosen = [d for d in world.devices
                  if any(fnmatch.fnmatchcase(d.name, p) for p in patterns)]
    out = [Growable(d.name, False, d.site, d.hardware, d.units, d.price_per_unit_hour,
                    None if d.memory_gb is None else d.memory_gb / d.units, SEARCH_UNITS)
           for d in chosen]
    if catalog is not None:
        out += list(offered(world, catalog))
    return tuple(out)


def offered(world: World, catalog: Catalog) -> tuple[Growable, ...]:
    """A new device per offering of ``catalog`` and site of ``world`` it may stand at.

    Raises:
        SpecError: naming the offending catalog field and the way out.
    """
    hardware = {h.name for h in world.hardware}
    sites = [s.name for s in world.sites]
    taken = {d.name for d in world.devices}
    out = []
    for i, o in enumerate(catalog.offerings):
        where = f"--catalog: offerings[{i}]"
        if o.hardware not in hardware:
            raise SpecError(f"{where}.hardware: {o.hardware!r} is not a hardware class of the "
                            f"world ({', '.join(sorted(hardware))}); offer a class its "
                            "operators are profiled on")
        at = []
        for p in o.sites:
            found = [s for s in sites if fnmatch.fnmatchcase(s, p)]
            if not found:
                raise SpecError(f"{where}.sites: {p!r} matches no site of the world "
                                f"({', '.join(sites[:12])}{', ...' if len(sites) > 12 else ''})")
            at += [s for s in found if s not in at]
        for site in at:
            name = f"{o.name}@{site}"
            if name in taken:
                raise SpecError(f"{where}.name: the new device {name!r} would take the name of "
                                "a device of the world; rename the offering")
            taken.add(name)
            out.append(Growable(name, True, site, o.hardware, 0.0, o.price_per_unit_hour,
                                o.memory_gb_per_unit, float(o.max_units)))
    return tuple(out)


def grown(world: World, growables: Sequence[Growable], units: Mapping[str, float]) -> World:
    """``world`` with the devices of ``growables`` at ``units`` (device name -> units it has;
    a device left out keeps its units, a new one left out or at 0 is not added)."""
    by_name = {g.name: g for g in growables}
    devices = [by_name[d.name].device(units[d.name]) if d.name in units and d.name in by_name
               else d for d in world.devices]
    devices += [g.device(units[g.name]) for g in growables
                if g.new and units.get(g.name, 0.0) > 0]
    return world.model_copy(update={"devices": devices})
