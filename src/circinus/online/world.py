"""Edits of a world's devices and links while it is being served, validated at the boundary.

Each function returns a new :class:`~circinus.spec.models.World` (models are immutable) and a
one-line description of the change; bad requests raise :class:`~circinus.errors.SpecError` (or
:class:`~circinus.errors.UnknownNameError`) saying what to do instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from circinus.errors import SpecError, UnknownNameError
from circinus.spec.load import validate_document
from circinus.spec.models import Device, Link, World


def resize_device(world: World, name: str, *, units: float | None,
                  memory_gb: float | None) -> tuple[World, str]:
    """``world`` with device ``name`` given ``units`` and/or ``memory_gb``."""
    dev = _device(world, name)
    changes: dict[str, Any] = {}
    if units is not None:
        changes["units"] = units
    if memory_gb is not None:
        changes["memory_gb"] = memory_gb
    if not changes:
        raise SpecError(f"set_capacity: device {name!r}: give units=... and/or memory_gb=...")
    new = validated(Device, {**dev.model_dump(), **changes}, f"device {name!r}")
    what = f"device {name}: {dev.units:g} -> {new.units:g} units"
    if memory_gb is not None:
        what += f", memory {dev.memory_gb} -> {new.memory_gb} GB"
    devices = [new if d.name == name else d for d in world.devices]
    return world.model_copy(update={"devices": devices}), what


def add_device(world: World, device: Device | Mapping[str, Any]) -> tuple[World, Device, str]:
    """``world`` with ``device`` added (its site and hardware class must exist)."""
    dev = device if isinstance(device, Device) else validated(Device, device, "add_device")
    if any(d.name == dev.name for d in world.devices):
        raise SpecError(f"add_device: a device named {dev.name!r} exists; use set_capacity to "
                        "resize it or choose another name")
    if dev.site not in {s.name for s in world.sites}:
        raise SpecError(f"add_device: unknown site {dev.site!r}; choose one of "
                        f"{sorted(s.name for s in world.sites)}")
    if dev.hardware not in {h.name for h in world.hardware}:
        raise SpecError(f"add_device: unknown hardware class {dev.hardware!r}; choose one of "
                        f"{sorted(h.name for h in world.hardware)}")
    what = f"device {dev.name} added at {dev.site} ({dev.units:g} units of {dev.hardware})"
    return world.model_copy(update={"devices": [*world.devices, dev]}), dev, what


def remove_device(world: World, name: str) -> tuple[World, str]:
    """``world`` without device ``name``."""
    _device(world, name)
    if len(world.devices) == 1:
        raise SpecError(f"remove_device: {name!r} is the world's only device; add another first")
    devices = [d for d in world.devices if d.name != name]
    return world.model_copy(update={"devices": devices}), f"device {name} removed"


def set_link_capacity(world: World, link: str, mbps: float | None) -> tuple[World, str]:
    """``world`` with the directed link ``"src->dst"`` limited to ``mbps`` (``None``: no limit).

    A ``both_ways`` link is split into its two directions so that only this one changes.
    """
    src, sep, dst = link.partition("->")
    if not sep:
        raise SpecError(f"set_capacity: link must be named 'src->dst', got {link!r}")
    links: list[Link] = []
    old: Link | None = None
    for ln in world.links:
        if (ln.src, ln.dst) == (src, dst) or (ln.both_ways and (ln.dst, ln.src) == (src, dst)):
            old = ln
            fields = ln.model_dump()
            fields.update(both_ways=False, src=src, dst=dst)
            links.append(validated(Link, {**fields, "capacity_mbps": mbps}, f"link {link!r}"))
            if ln.both_ways:
                links.append(validated(Link, {**fields, "src": dst, "dst": src}, "link"))
        else:
            links.append(ln)
    if old is None:
        known = sorted({f"{ln.src}->{ln.dst}" for ln in world.links} | {
            f"{ln.dst}->{ln.src}" for ln in world.links if ln.both_ways})
        raise UnknownNameError(f"set_capacity: no link {link!r}; the links are {known}")
    before = "unlimited" if old.capacity_mbps is None else f"{old.capacity_mbps:g} Mbit/s"
    after = "unlimited" if mbps is None else f"{mbps:g} Mbit/s"
    return world.model_copy(update={"links": links}), f"link {link}: {before} -> {after}"


def _device(world: World, name: str) -> Device:
    for d in world.devices:
        if d.name == name:
            return d
    raise UnknownNameError(f"no device {name!r}; the devices are "
                           f"{sorted(d.name for d in world.devices)}")


def validated(model: type[Any], data: Mapping[str, Any], where: str) -> Any:
    """``model`` validated from ``data``; a :class:`SpecError` naming ``where`` and the first
    bad field otherwise."""
    return validate_document(model, dict(data), where)
