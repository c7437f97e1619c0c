"""The tiny world every test copies: see ``tests/conftest.py`` for what it holds.

A module of its own (not ``conftest``), so that test files import it by a name no other
directory's ``conftest.py`` can shadow.
"""

from __future__ import annotations

from typing import Any


def make_tiny_world() -> dict[str, Any]:
    """A fresh, valid, plannable tiny world as plain data (see the module docstring)."""
    return {
        "version": 1,
        "name": "tiny",
        "description": "Two sites, two devices, a two-stage vision pipeline, two cameras.",
        "hardware": [
            {"name": "arm-cpu", "kind": "cpu", "description": "4-core ARM edge box"},
            {"name": "t4", "kind": "gpu", "description": "NVIDIA T4"},
        ],
        "sites": [
            {"name": "shop", "tier": "edge", "lan_bandwidth_mbps": 1000, "lan_rtt_ms": 0.5},
            {"name": "region", "tier": "cloud"},
        ],
        "devices": [
            {"name": "shop-box", "site": "shop", "hardware": "arm-cpu", "units": 4,
             "price_per_unit_hour": 0.01, "memory_gb": 8},
            {"name": "t4-pool", "site": "region", "hardware": "t4", "units": 8,
             "price_per_unit_hour": 0.35},
        ],
        "links": [
            {"src": "shop", "dst": "region", "bandwidth_mbps": 50, "rtt_ms": 20,
             "price_per_gb": 0.05, "capacity_mbps": 100, "both_ways": True},
        ],
        "operators": [
            {
                "name": "detect",
                "knobs": {"model": ["small", "large"]},
                "profiles": [
                    {"config": {"model": "small"}, "hardware": "arm-cpu", "mean_ms": 40,
                     "p90_ms": 48, "units": 1, "memory_gb": 1},
                    {"config": {"model": "large"}, "hardware": "arm-cpu", "mean_ms": 150,
                     "p90_ms": 170, "units": 2, "memory_gb": 2},
                    {"config": {"model": "small"}, "hardware": "t4", "mean_ms": 5,
                     "cv": 0.1, "batch_ms": {4: 12}},
                    {"config": {"model": "large"}, "hardware": "t4", "mean_ms": 12,
                     "cv": 0.1, "batch_ms": {4: 30}},
                ],
                "output_kb": [
                    {"when": {}, "value": 2},
                    {"when": {"model": "large"}, "value": 3},
                ],
                "accuracy": [
                    {"when": {"model": "small"}, "value": 0.85},
                    {"when": {"model": "large"}, "value": 0.93},
                ],
            },
            {
                "name": "classify",
                "knobs": {"resolution": [224, 448]},
                "profiles": [
                    {"config": {"resolution": 224}, "hardware": "arm-cpu", "mean_ms": 20},
                    {"config": {"resolution": 224}, "hardware": "t4", "mean_ms": 3},
                    {"config": {"resolution": 448}, "hardware": "t4", "mean_ms": 8},
                ],
                "output_kb": 0.5,
                "accuracy": [
                    {"when": {"resolution": 224}, "value": 0.95},
                    {"when": {"resolution": 448}, "value": 0.98},
                ],
            },
        ],
        "pipelines": [
            {
                "name": "vision",
                "sources": [{"name": "camera", "output_kb": 150}],
                "stages": [
                    {"name": "det", "operator": "detect"},
                    {"name": "cls", "operator": "classify"},
                ],
                "edges": [["camera", "det"], ["det", "cls"]],
                "accuracy": {"rule": "product"},
            },
        ],
        "queries": [
            {"name": "cam-1", "pipeline": "vision", "sources": {"camera": "shop"},
             "rate_rps": 5, "slo": {"latency_ms": 400, "percentile": 95, "min_accuracy": 0.8}},
            {"name": "cam-2", "pipeline": "vision", "sources": {"camera": "shop"},
             "rate_rps": 20, "slo": {"latency_ms": 300}, "weight": 2,
             "work_scale": {"cls": 1.5}},
        ],
        "planner": {"max_utilization": 0.8, "time_limit_s": 10},
    }
