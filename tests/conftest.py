"""Shared fixtures: a tiny valid world that tests copy and mutate.

``tiny_world`` (the fixture) and :func:`make_tiny_world` (the plain function, for parametrised
cases built at collection time) return a *fresh* ``dict`` on every call, in the plain-data form a
YAML or JSON world file parses to; mutate it freely. It is the same world as
``examples/tiny.yaml`` (the example of ``docs/world-format.md``):

* hardware ``arm-cpu`` (cpu) and ``t4`` (gpu);
* sites ``shop`` (edge, LAN 1000 Mbit/s) and ``region`` (cloud);
* devices ``shop-box`` (shop, arm-cpu, 4 units at $0.01/unit-h) and ``t4-pool``
  (region, t4, 8 units at $0.35/unit-h);
* one link ``shop`` <-> ``region`` (``both_ways``: 50 Mbit/s, 20 ms RTT, $0.05/GB, 100 Mbit/s
  capacity);
* operators ``detect`` (knob ``model``: small | large; profiles on both hardware classes, a batch
  of 4 on t4, per-model ``output_kb`` and ``accuracy``) and ``classify`` (knob ``resolution``:
  224 | 448; constant ``output_kb`` and ``accuracy``);
* pipeline ``vision``: source ``camera`` (150 KB) -> stage ``det`` (detect) -> stage ``cls``
  (classify), accuracy rule ``product``;
* queries ``cam-1`` (5 req/s, p95 <= 400 ms, accuracy >= 0.8) and ``cam-2`` (20 req/s,
  p99 <= 300 ms, weight 2, ``cls`` work scaled by 1.5), both from ``camera`` at ``shop``.

Every query is admitted by the default planner, so tests may also plan it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings

from tinyworld import make_tiny_world

# Property tests draw the same examples on every run: a CI failure is reproducible, never luck.
settings.register_profile("circinus", derandomize=True, deadline=None)
settings.load_profile("circinus")


@pytest.fixture
def tiny_world() -> dict[str, Any]:
    """A fresh copy of :func:`make_tiny_world` for each test."""
    return make_tiny_world()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist's ``--dist loadgroup`` (what ``scripts/test.sh`` runs): a module's
    tests run on one worker, so its module-scoped fixtures (generated worlds, whole searches)
    are built once; and every integration test runs on one worker, one after another, so no two
    real services, Ray clusters or interrupt timings share the machine with each other."""
    for item in items:
        group = ("integration" if item.get_closest_marker("integration") is not None
                 else item.nodeid.split("::", 1)[0])
        item.add_marker(pytest.mark.xdist_group(group))

