"""A small executable world for the runtime's tests: the digits pipeline on two sites.

:func:`digits_world` returns a fresh world dict: sites ``depot`` (edge) and ``region`` (cloud), a
box of two units at the depot and two cloud cores (one replica a unit), the three digits
stages (one configuration each, latency profiles and accuracies written in, so nothing needs
profiling) and two queries from the depot. The default planner puts two stages on the box and
one in the cloud, so a plan of it uses both sites. :func:`planned` plans a world file and returns
``(index, plan file)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from circinus.plan.file import PlanFile, to_plan_file
from circinus.planner import Planner
from circinus.spec.index import WorldIndex
from circinus.spec.load import load_indexed_world


def digits_world() -> dict[str, Any]:
    impl = "circinus.executable.digits:"
    return {
        "name": "digits-two-sites",
        "hardware": [{"name": "local-cpu", "kind": "cpu"}],
        "sites": [{"name": "depot", "tier": "edge", "lan_rtt_ms": 0.2},
                  {"name": "region", "tier": "cloud"}],
        "devices": [
            {"name": "box", "site": "depot", "hardware": "local-cpu", "units": 2,
             "price_per_unit_hour": 0.01},
            {"name": "cloud-cores", "site": "region", "hardware": "local-cpu", "units": 2,
             "price_per_unit_hour": 0.05}],
        "links": [{"src": "depot", "dst": "region", "bandwidth_mbps": 20, "rtt_ms": 10,
                   "both_ways": True}],
        "operators": [
            {"name": "preprocess", "implementation": impl + "preprocess",
             "knobs": {"resolution": [8]}, "output_kb": 0.5, "accuracy": 1.0,
             "profiles": [{"config": {"resolution": 8}, "hardware": "local-cpu",
                           "mean_ms": 0.2}]},
            {"name": "classify", "implementation": impl + "classify",
             "knobs": {"model": ["logreg"]}, "output_kb": 0.08, "accuracy": 0.95,
             "profiles": [{"config": {"model": "logreg"}, "hardware": "local-cpu",
                           "mean_ms": 0.3}]},
            {"name": "postprocess", "implementation": impl + "postprocess", "output_kb": 0.01,
             "accuracy": 1.0,
             "profiles": [{"config": {}, "hardware": "local-cpu", "mean_ms": 0.05}]}],
        "pipelines": [{
            "name": "digits", "dataset": impl + "dataset",
            "sources": [{"name": "camera", "output_kb": 0.5}],
            "stages": [{"name": "pre", "operator": "preprocess"},
                       {"name": "cls", "operator": "classify"},
                       {"name": "post", "operator": "postprocess"}],
            "edges": [["camera", "pre"], ["pre", "cls"], ["cls", "post"]],
            "accuracy": {"rule": "product"}}],
        "queries": [
            {"name": "sorter-a", "pipeline": "digits", "sources": {"camera": "depot"},
             "rate_rps": 5, "slo": {"latency_ms": 500, "percentile": 95, "min_accuracy": 0.8}},
            {"name": "sorter-b", "pipeline": "digits", "sources": {"camera": "depot"},
             "rate_rps": 3, "slo": {"latency_ms": 800, "percentile": 95}}],
        "profiling": {"hardware": "local-cpu"},
    }


def write_world(tmp: Path, world: dict[str, Any]) -> Path:
    path = tmp / "world.yaml"
    path.write_text(yaml.safe_dump(world, sort_keys=False), encoding="utf-8")
    return path


def planned(path: Path) -> tuple[WorldIndex, PlanFile]:
    _, index = load_indexed_world(path)
    return index, to_plan_file(index, Planner().plan(index))
