"""Configuration dominance: only configurations no better on anything are pruned."""

from __future__ import annotations

from typing import Any

from circinus.search.dominance import dominates, undominated_configs
from circinus.spec import build_index, parse_world


def _world(profiles: list[dict[str, Any]], accuracy: list[dict[str, Any]]) -> Any:
    data = {
        "hardware": [{"name": "cpu"}, {"name": "gpu"}],
        "sites": [{"name": "s", "tier": "edge"}],
        "devices": [{"name": "d", "site": "s", "hardware": "cpu", "units": 4,
                     "price_per_unit_hour": 1}],
        "operators": [{"name": "op", "knobs": {"m": ["a", "b", "c"]}, "profiles": profiles,
                       "accuracy": accuracy, "output_kb": 1}],
        "pipelines": [{"name": "p", "sources": [{"name": "x", "output_kb": 1}],
                       "stages": [{"name": "op", "operator": "op"}], "edges": [["x", "op"]]}],
        "queries": [],
    }
    return build_index(parse_world(data)).operators["op"]


def _acc(a: float, b: float, c: float) -> list[dict[str, Any]]:
    return [{"when": {"m": k}, "value": v} for k, v in (("a", a), ("b", b), ("c", c))]


def _prof(m: str, hw: str, ms: float, **extra: Any) -> dict[str, Any]:
    return {"config": {"m": m}, "hardware": hw, "mean_ms": ms, **extra}


def test_slower_and_less_accurate_is_pruned() -> None:
    op = _world([_prof("a", "cpu", 10), _prof("b", "cpu", 20), _prof("c", "cpu", 5)],
                _acc(0.8, 0.7, 0.6))
    assert dominates(op, ("a",), ("b",))
    assert undominated_configs(op) == (("a",), ("c",))


def test_faster_on_one_hardware_only_is_kept() -> None:
    op = _world([_prof("a", "cpu", 10), _prof("a", "gpu", 5), _prof("b", "cpu", 20),
                 _prof("b", "gpu", 2), _prof("c", "cpu", 30)], _acc(0.8, 0.7, 0.6))
    assert not dominates(op, ("a",), ("b",))  # b is faster on the gpu
    assert dominates(op, ("a",), ("c",))  # c runs only where a is better
    assert undominated_configs(op) == (("a",), ("b",))


def test_missing_profile_or_fewer_batches_blocks_domination() -> None:
    op = _world([_prof("a", "cpu", 10), _prof("b", "cpu", 20), _prof("b", "gpu", 20),
                 _prof("c", "cpu", 30, batch_ms={4: 50})], _acc(0.8, 0.7, 0.6))
    assert not dominates(op, ("a",), ("b",))  # a cannot run on the gpu
    assert not dominates(op, ("a",), ("c",))  # a has no batch-4 profile
    assert len(undominated_configs(op)) == 3


def test_equal_configurations_keep_the_first() -> None:
    op = _world([_prof("a", "cpu", 10), _prof("b", "cpu", 10), _prof("c", "cpu", 10)],
                _acc(0.8, 0.8, 0.8))
    assert undominated_configs(op) == (("a",),)
