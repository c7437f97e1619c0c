"""A small two-shop world for the online planner's tests (plain data, fresh on every call):
every stage on replicas of its own (``dedicated``), or on deployments shared by the queries
(``make_world(..., sharing="shared")``)."""

from __future__ import annotations

import copy
from typing import Any

WORLD: dict[str, Any] = {
    "name": "two-shops",
    "hardware": [{"name": "cpu"}, {"name": "gpu", "kind": "gpu"}],
    "sites": [{"name": "shop-a", "tier": "edge"}, {"name": "shop-b", "tier": "edge"},
              {"name": "cloud", "tier": "cloud"}],
    "devices": [
        {"name": "box-a", "site": "shop-a", "hardware": "cpu", "units": 2,
         "price_per_unit_hour": 0.05},
        {"name": "box-b", "site": "shop-b", "hardware": "cpu", "units": 2,
         "price_per_unit_hour": 0.05},
        {"name": "pool", "site": "cloud", "hardware": "gpu", "units": 3,
         "price_per_unit_hour": 1.0},
    ],
    "links": [
        {"src": "shop-a", "dst": "cloud", "bandwidth_mbps": 50, "rtt_ms": 20,
         "price_per_gb": 0.05, "capacity_mbps": 40, "both_ways": True},
        {"src": "shop-b", "dst": "cloud", "bandwidth_mbps": 50, "rtt_ms": 20,
         "price_per_gb": 0.05, "both_ways": True},
    ],
    "operators": [
        {"name": "detect", "knobs": {"size": ["s", "m"]}, "accuracy": [
            {"when": {"size": "s"}, "value": 0.8}, {"when": {"size": "m"}, "value": 0.9}],
         "output_kb": 20, "profiles": [
            {"config": {"size": "s"}, "hardware": "cpu", "mean_ms": 40},
            {"config": {"size": "m"}, "hardware": "cpu", "mean_ms": 90},
            {"config": {"size": "s"}, "hardware": "gpu", "mean_ms": 5},
            {"config": {"size": "m"}, "hardware": "gpu", "mean_ms": 8, "batch_ms": {4: 20}}]},
        {"name": "classify", "knobs": {"model": ["small", "big"]}, "accuracy": [
            {"when": {"model": "small"}, "value": 0.7}, {"when": {"model": "big"}, "value": 0.85}],
         "output_kb": 1, "profiles": [
            {"config": {"model": "small"}, "hardware": "cpu", "mean_ms": 30},
            {"config": {"model": "big"}, "hardware": "cpu", "mean_ms": 120},
            {"config": {"model": "small"}, "hardware": "gpu", "mean_ms": 4, "units": 0.5},
            {"config": {"model": "big"}, "hardware": "gpu", "mean_ms": 10, "units": 0.5}]},
    ],
    "pipelines": [{"name": "vision", "sources": [{"name": "cam", "output_kb": 200}],
                   "stages": [{"name": "detect", "operator": "detect"},
                              {"name": "classify", "operator": "classify"}],
                   "edges": [["cam", "detect"], ["detect", "classify"]]}],
    "queries": [],
    "planner": {"time_limit_s": 10, "sharing": "dedicated"},
}


def make_world(queries: list[dict[str, Any]] | None = None, *,
               sharing: str = "dedicated") -> dict[str, Any]:
    """A fresh copy of the two-shop world with ``queries``, its stages ``sharing``."""
    data = copy.deepcopy(WORLD)
    data["queries"] = copy.deepcopy(queries or [])
    data["planner"]["sharing"] = sharing
    return data


def query(name: str, site: str = "shop-a", rate: float = 5.0, **slo: float) -> dict[str, Any]:
    """A vision query from ``site`` (default SLO: p99 <= 450 ms, accuracy >= 0.6)."""
    return {"name": name, "pipeline": "vision", "sources": {"cam": site}, "rate_rps": rate,
            "slo": {"latency_ms": 450.0, "min_accuracy": 0.6, **slo}}

