"""The tiny world every test copies: see ``tests/conftest.py`` for what it holds.

A module of its own (not ``conftest``), so that test files import it by a name no other
directory's ``conftest.py`` can shadow.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from circinus.spec.index import PipelineIndex


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


def random_tiny_world(seed: int, *, dag: bool = False, queries: int = 3,
                      sharing: str = "dedicated", spread: int = 1) -> dict[str, Any]:
    """A seeded random world small enough for the oracle (:mod:`circinus.search.oracle`).

    An edge site ``shop`` (a box of 2-4 units and a second, dearer box of 1-2), a cloud site
    ``region`` (a GPU pool of 4 units), links both ways with their own prices (cloud->edge the
    dearer, as egress is), bandwidths and RTTs. ``dag=False``: the tiny world's chain
    ``camera -> det -> cls``; ``dag=True``: two sources at ``shop`` (an image of 200-800 KB, a
    clip of 40-120 KB), each with its own encoder, joined by ``fuse``. Two configurations per
    operator with random latencies, units, output sizes and accuracies (product rule); one
    batch size of 2 on the GPU for some. ``queries`` queries of 2-20 req/s with latency (p95)
    and accuracy bounds drawn so that most are admissible and some contend.
    """
    rng = random.Random(seed)

    def r(lo: float, hi: float, digits: int = 3) -> float:
        return round(rng.uniform(lo, hi), digits)

    hardware = [{"name": "arm-cpu", "kind": "cpu"}, {"name": "x86", "kind": "cpu"},
                {"name": "t4", "kind": "gpu"}]
    devices = [
        {"name": "shop-box", "site": "shop", "hardware": "arm-cpu", "units": rng.randint(2, 4),
         "price_per_unit_hour": r(0.005, 0.05), "memory_gb": 8},
        {"name": "shop-x86", "site": "shop", "hardware": "x86", "units": rng.randint(1, 2),
         "price_per_unit_hour": r(0.02, 0.12)},
        {"name": "t4-pool", "site": "region", "hardware": "t4", "units": 4,
         "price_per_unit_hour": r(0.2, 0.5)},
    ]
    links = [
        {"src": "shop", "dst": "region", "bandwidth_mbps": r(40, 200, 0), "rtt_ms": r(5, 30, 1),
         "price_per_gb": r(0.01, 0.3)},
        {"src": "region", "dst": "shop", "bandwidth_mbps": r(40, 200, 0), "rtt_ms": r(5, 30, 1),
         "price_per_gb": r(0.05, 1.0)},
    ]

    def operator(name: str, base_ms: float, out_kb: float) -> dict[str, Any]:
        profiles = []
        for k, model in enumerate(("small", "large")):
            heavy = 1.0 + 1.5 * k
            for hw, speed in (("arm-cpu", 1.0), ("x86", 0.6), ("t4", 0.12)):
                if hw == "x86" and rng.random() < 0.3:
                    continue  # not every configuration runs everywhere
                mean = round(base_ms * heavy * speed * rng.uniform(0.7, 1.3), 2)
                prof: dict[str, Any] = {"config": {"model": model}, "hardware": hw,
                                        "mean_ms": mean, "cv": r(0.1, 0.6, 2)}
                if hw == "arm-cpu":
                    prof["units"] = rng.choice([1, 1, 2])
                elif rng.random() < 0.5:
                    prof["batch_ms"] = {2: round(mean * rng.uniform(1.2, 1.8), 2)}
                profiles.append(prof)
        return {
            "name": name, "knobs": {"model": ["small", "large"]}, "profiles": profiles,
            "output_kb": [{"when": {}, "value": round(out_kb, 2)},
                          {"when": {"model": "large"}, "value": round(out_kb * r(1, 2), 2)}],
            "accuracy": [{"when": {"model": "small"}, "value": r(0.8, 0.9)},
                         {"when": {"model": "large"}, "value": r(0.92, 0.99)}],
        }

    if dag:
        operators = [operator("imgenc", r(20, 60), r(2, 20)), operator("asr", r(15, 40), r(1, 5)),
                     operator("vqa", r(10, 40), 0.5)]
        pipeline = {
            "name": "vision",
            "sources": [{"name": "camera", "output_kb": r(200, 800, 0)},
                        {"name": "mic", "output_kb": r(40, 120, 0)}],
            "stages": [{"name": "img", "operator": "imgenc"}, {"name": "aud", "operator": "asr"},
                       {"name": "fuse", "operator": "vqa"}],
            "edges": [["camera", "img"], ["mic", "aud"], ["img", "fuse"], ["aud", "fuse"]],
            "accuracy": {"rule": "product"},
        }
        sources = {"camera": "shop", "mic": "shop"}
    else:
        operators = [operator("detect", r(20, 60), r(2, 20)), operator("classify", r(10, 30), 0.5)]
        pipeline = {
            "name": "vision",
            "sources": [{"name": "camera", "output_kb": r(100, 400, 0)}],
            "stages": [{"name": "det", "operator": "detect"},
                       {"name": "cls", "operator": "classify"}],
            "edges": [["camera", "det"], ["det", "cls"]],
            "accuracy": {"rule": "product"},
        }
        sources = {"camera": "shop"}
    stages = len(pipeline["stages"]) - (1 if dag else 0)
    qs = [{"name": f"q{i}", "pipeline": "vision", "sources": dict(sources),
           "rate_rps": rng.choice([2, 5, 10, 20]),
           "slo": {"latency_ms": rng.choice([150, 250, 400, 800]) * stages, "percentile": 95,
                   "min_accuracy": rng.choice([0.7, 0.75, 0.8, 0.85])}}
          for i in range(queries)]
    return {
        "version": 1, "name": f"random-tiny-{seed}", "hardware": hardware,
        "sites": [{"name": "shop", "tier": "edge", "lan_bandwidth_mbps": 1000, "lan_rtt_ms": 0.5},
                  {"name": "region", "tier": "cloud"}],
        "devices": devices, "links": links, "operators": operators, "pipelines": [pipeline],
        "queries": qs,
        "planner": {"max_utilization": 0.8, "sharing": sharing,
                    "max_devices_per_operator": spread, "time_limit_s": 20},
    }


def dag_pipeline(sources: list[str], edges: list[list[str]]) -> PipelineIndex:
    """The index of a pipeline ``p`` with these sources and ``[from, to]`` edges, every stage
    one 1 ms operator on one box (for tests of the DAG's structure and composition)."""
    stages = sorted({b for _, b in edges} | {a for a, _ in edges} - set(sources))
    world: dict[str, Any] = {
        "name": "dag", "hardware": [{"name": "cpu"}], "sites": [{"name": "s", "tier": "edge"}],
        "devices": [{"name": "box", "site": "s", "hardware": "cpu", "units": 1,
                     "price_per_unit_hour": 0.0}],
        "operators": [{"name": "op", "profiles": [{"hardware": "cpu", "mean_ms": 1.0}]}],
        "pipelines": [{"name": "p", "sources": [{"name": n, "output_kb": 1} for n in sources],
                       "stages": [{"name": n, "operator": "op"} for n in stages],
                       "edges": edges, "accuracy": {"rule": "none"}}],
        "queries": [],
    }
    from circinus.spec import build_index, parse_world

    return build_index(parse_world(world)).pipelines["p"]
