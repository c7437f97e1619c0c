"""The hardware catalog: devices that capacity planning may buy, by hardware class and price.

A catalog lists *offerings*: a hardware class the world's operators are profiled on, the price of
one unit for an hour, the sites where a new device of it may stand and how many units one such
device may have at most. ``circinus capacity WORLD --catalog FILE`` may then add one new device
per (offering, site), named ``<offering>@<site>``, with as many whole units as the plan needs::

    version: 1
    offerings:
      - name: orin
        hardware: jetson-orin
        sites: [shop-*]            # fnmatch patterns of the world's sites; default every site
        price_per_unit_hour: 0.04
        memory_gb_per_unit: 8
        max_units: 4

docs/capacity.md explains the format; the ranges are in docs/world-format.md's "Ranges and
limits" table. Fields are checked here on their own; the names a catalog refers to (hardware
classes, sites) are checked against a world by :func:`circinus.capacity.resources.offered`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from circinus.errors import SpecError
from circinus.spec.models import (
    MAX_MEMORY_GB,
    MAX_PRICE_PER_UNIT_HOUR,
    MIN_MEMORY_GB,
    Integer,
    Name,
    Number,
    Text,
    _Model,
)

MAX_NEW_UNITS = 100_000
"""Most units one new device of an offering may have (a very large cloud pool)."""
MAX_OFFERINGS = 1_000
"""Most offerings in one catalog."""
MAX_SITE_PATTERNS = 1_000
"""Most site patterns of one offering."""


class Offering(_Model):
    """One kind of device that may be bought: a hardware class at a price per unit-hour."""

    name: Name = Field(description="Identifier; a new device is named '<name>@<site>'.")
    hardware: Name = Field(
        description="Hardware class of the world that the new device is; the world's operators "
        "must be profiled on it for the device to be of any use.")
    sites: list[Text] = Field(
        default_factory=lambda: ["*"], min_length=1, max_length=MAX_SITE_PATTERNS,
        description="Where a new device may stand: names or fnmatch patterns ('shop-*') of the "
        "world's sites; default every site.")
    price_per_unit_hour: Number = Field(
        ge=0, le=MAX_PRICE_PER_UNIT_HOUR,
        description="Price of one unit of the new device for one hour, $.")
    memory_gb_per_unit: Number | None = Field(
        default=None, ge=MIN_MEMORY_GB, le=MAX_MEMORY_GB,
        description="Memory each unit brings, GB; omitted means memory is not a constraint.")
    max_units: Integer = Field(
        ge=1, le=MAX_NEW_UNITS,
        description="Most units one new device of this offering may have (a box's cores, the "
        "GPUs a region will rent you).")
    description: Text = Field(default="", description="Free text, e.g. the exact model.")


class Catalog(_Model):
    """The devices capacity planning may buy (see the module docstring)."""

    version: Literal[1] = Field(default=1, description="Format version.")
    offerings: list[Offering] = Field(
        min_length=1, max_length=MAX_OFFERINGS, description="What may be bought.")

    @model_validator(mode="after")
    def _unique_names(self) -> Catalog:
        seen: set[str] = set()
        for i, o in enumerate(self.offerings):
            if o.name in seen:
                raise ValueError(f"offerings[{i}].name: {o.name!r} appears twice; give each "
                                 "offering its own name")
            seen.add(o.name)
        return self


def parse_catalog(data: Any, *, origin: str = "catalog") -> Catalog:
    """Validate plain data as a :class:`Catalog`.

    Raises:
        SpecError: naming the offending field, e.g.
            ``offerings[0].max_units: must be >= 1 and <= 100000, got 0``.
    """

    if not isinstance(data, dict):
        raise SpecError(f"{origin}: the top level must be a mapping with the key 'offerings', "
                        f"got {'nothing' if data is None else 'a ' + type(data).__name__}")
    from circinus.spec.load import validate_document

    return validate_document(Catalog, data, origin)


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate the catalog in ``path`` (``.yaml``, ``.yml`` or ``.json``), within
    the same bounds as a world file.

    Raises:
        SpecError: the file or the offending field, and the way out.
    """
    from circinus.spec.load import read_document, short_path

    return parse_catalog(read_document(path), origin=short_path(path))
