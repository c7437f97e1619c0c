"""Deterministic world generation from the bundled real data (``circinus gen``).

Usage::

    from circinus.gen import GenSpec, generate
    from circinus.spec import build_index, parse_world

    world = parse_world(generate(GenSpec(queries=1000, seed=7)))
    index = build_index(world)

:class:`GenSpec` says how many queries, sites and GPUs, how tight the SLOs and which mix of
query classes; :func:`generate` returns plain world data, identical for identical specs
(:func:`generate_parts`: the same, its queries one at a time).
"""

from circinus.gen.spec import GenSpec, QueryMix, make_spec
from circinus.gen.world import generate, generate_parts

__all__ = ["GenSpec", "QueryMix", "generate", "generate_parts", "make_spec"]
