"""The worlds of ``circinus bench fidelity``: small generated worlds that stress the estimator.

NOTE: each world is built to sit where a latency model is fragile, with latency bounds close
to what the plans achieve, so that an optimistic prediction admits queries that miss and a
pessimistic one rejects queries that would have met:

* ``tandem`` - 3-4 stages in a chain on one edge box, service with little variance (cv
  0.02-0.15: the stages of a real vision pipeline), utilisations up to 0.8;
* ``uplink`` - many queries per edge site behind one slow uplink (a capacity of 1-2.5
  transfers' worth), large frames, the heavy stage only in the cloud: the link runs busy;
* ``join`` - a fork (detector -> two branches -> merge) and a two-source join (camera and
  microphone into one stage), low-variance stages;
* ``mixed`` - tandems on edge boxes and a batching GPU pool behind a shared uplink, every SLO
  percentile from 50 to 99, high utilisation.

Every figure is a stand-in drawn from a ``random.Random`` seeded with ``(kind, seed)``: the same
kind and seed give the same world. The profiles are of the magnitude of published edge-vision
measurements (detectors of tens of ms on a CPU core, classifiers of a few ms, GPU batches) but
are not measurements.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

KINDS = ("tandem", "uplink", "join", "mixed")
"""The kinds of fidelity world, in the order the bench runs them."""
PERCENTILES = (50.0, 90.0, 95.0, 99.0)

_CPU, _GPU = "edge-cpu", "gpu"


def fidelity_world(kind: str, seed: int) -> dict[str, Any]:
    """The world of ``kind`` (one of :data:`KINDS`) for ``seed``, as a plain dict.

    Raises:
        ValueError: for an unknown kind.
    """
    makers = {"tandem": _tandem, "uplink": _uplink, "join": _join, "mixed": _mixed}
    if kind not in makers:
        raise ValueError(f"unknown fidelity world {kind!r}; choose from {', '.join(KINDS)}")
    rng = random.Random(f"fidelity-{kind}-{seed}")
    world = makers[kind](rng)
    world.update(version=1, name=f"fidelity-{kind}-{seed}")
    world["planner"] = {"max_utilization": 0.85, "time_limit_s": 20, "seed": seed,
                        **world.get("planner", {})}
    return world


def _hardware() -> list[dict[str, Any]]:
    return [{"name": _CPU, "kind": "cpu", "description": "edge box core (stand-in)"},
            {"name": _GPU, "kind": "gpu", "description": "cloud GPU (stand-in)"}]


def _operator(rng: random.Random, name: str, fast_ms: float, *, cv_hi: float = 0.15,
              gpu: bool = False, out_kb: float = 2.0) -> dict[str, Any]:
    """An operator with a light and a heavy configuration (more accurate, ~1.6-2.4x slower),
    low-variance CPU profiles and, with ``gpu``, batching GPU profiles."""
    heavy = fast_ms * rng.uniform(1.6, 2.4)
    profiles = []
    for model, ms in (("light", fast_ms), ("heavy", heavy)):
        cv = rng.uniform(0.02, cv_hi)
        profiles.append({"config": {"model": model}, "hardware": _CPU, "mean_ms": round(ms, 2),
                         "p90_ms": round(ms * (1 + 1.2816 * cv), 2), "units": 1})
        if gpu:
            g = ms * rng.uniform(0.12, 0.2)
            profiles.append({"config": {"model": model}, "hardware": _GPU,
                             "mean_ms": round(g, 2), "cv": round(rng.uniform(0.02, 0.1), 3),
                             "batch_ms": {2: round(g * 1.3, 2), 4: round(g * 1.9, 2)},
                             "units": 0.25})
    return {
        "name": name, "knobs": {"model": ["light", "heavy"]}, "profiles": profiles,
        "output_kb": [{"when": {}, "value": out_kb}],
        "accuracy": [{"when": {"model": "light"}, "value": round(rng.uniform(0.9, 0.95), 3)},
                     {"when": {"model": "heavy"}, "value": round(rng.uniform(0.96, 0.99), 3)}],
    }


def _slo(rng: random.Random, base_ms: float, lo: float, hi: float) -> dict[str, Any]:
    return {"latency_ms": round(base_ms * rng.uniform(lo, hi), 1),
            "percentile": rng.choice(PERCENTILES)}


def _tandem(rng: random.Random) -> dict[str, Any]:
    stages = rng.choice((3, 4))
    ops = [_operator(rng, f"op{i}", rng.uniform(4.0, 25.0) if i else rng.uniform(20.0, 45.0))
           for i in range(stages)]
    names = [f"s{i}" for i in range(stages)]
    sites, devices, queries = [], [], []
    for k in range(rng.choice((2, 3))):
        site = f"edge-{k}"
        sites.append({"name": site, "tier": "edge", "lan_bandwidth_mbps": 1000,
                      "lan_rtt_ms": 0.2})
        devices.append({"name": f"box-{k}", "site": site, "hardware": _CPU,
                        "units": rng.choice((6, 8, 10)), "price_per_unit_hour": 0.02})
        for j in range(rng.randint(3, 6)):
            light = sum(o["profiles"][0]["mean_ms"] for o in ops)
            queries.append({"name": f"cam-{k}-{j}", "pipeline": "chain",
                            "sources": {"camera": site},
                            "rate_rps": round(rng.uniform(3.0, 18.0), 2),
                            "slo": _slo(rng, light, 1.1, 2.6)})
    return {
        "hardware": _hardware(), "sites": sites, "devices": devices, "links": [],
        "operators": ops,
        "pipelines": [{"name": "chain", "sources": [{"name": "camera", "output_kb": 50}],
                       "stages": [{"name": s, "operator": f"op{i}"}
                                  for i, s in enumerate(names)],
                       "edges": [["camera", names[0]], *([a, b] for a, b in
                                                         itertools.pairwise(names))],
                       "accuracy": {"rule": "product"}}],
        "queries": queries,
        "planner": {"sharing": rng.choice(("shared", "dedicated"))},
    }


def _cloud(devices: list[dict[str, Any]], sites: list[dict[str, Any]], gpus: int) -> None:
    sites.append({"name": "region", "tier": "cloud"})
    devices.append({"name": "gpu-pool", "site": "region", "hardware": _GPU, "units": gpus,
                    "price_per_unit_hour": 0.9})


def _uplink(rng: random.Random) -> dict[str, Any]:
    det = _operator(rng, "detect", rng.uniform(30.0, 60.0), gpu=True, out_kb=4.0)
    cls = _operator(rng, "classify", rng.uniform(8.0, 20.0), gpu=True, out_kb=0.5)
    # The detector runs only on the GPUs, so every frame crosses its site's uplink.
    det["profiles"] = [p for p in det["profiles"] if p["hardware"] == _GPU]
    sites: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []
    frames: dict[str, float] = {}
    _cloud(devices, sites, 8)
    for k in range(rng.choice((2, 3))):
        site = f"edge-{k}"
        sites.append({"name": site, "tier": "edge"})
        devices.append({"name": f"box-{k}", "site": site, "hardware": _CPU,
                        "units": 1, "price_per_unit_hour": 0.02})
        bw = rng.choice((10.0, 20.0, 40.0))
        frame = rng.choice((60.0, 100.0, 160.0))
        wire_ms = frame * 8.192 / bw
        capacity = round(bw * rng.uniform(1.0, 2.5), 1)
        links.append({"src": site, "dst": "region", "bandwidth_mbps": bw,
                      "rtt_ms": rng.choice((10.0, 20.0, 40.0)), "price_per_gb": 0.02,
                      "capacity_mbps": capacity, "both_ways": True})
        cameras = rng.randint(3, 8)
        # Together the site's cameras would fill 40-90 % of the uplink.
        each = rng.uniform(0.4, 0.9) * capacity / (frame * 8.192e-3) / cameras
        for j in range(cameras):
            queries.append({"name": f"cam-{k}-{j}", "pipeline": "vision",
                            "sources": {"camera": site},
                            "rate_rps": round(each * rng.uniform(0.7, 1.3), 2),
                            "slo": _slo(rng, wire_ms + 25.0, 1.3, 3.5)})
        frames[site] = frame
    pipelines: list[dict[str, Any]] = [
                 {"name": "vision", "sources": [{"name": "camera", "output_kb": 100}],
                  "stages": [{"name": "det", "operator": "detect"},
                             {"name": "cls", "operator": "classify"}],
                  "edges": [["camera", "det"], ["det", "cls"]],
                  "accuracy": {"rule": "product"}}]
    # One pipeline per frame size: a site's cameras send frames of its size.
    sizes = sorted(set(frames.values()))
    if len(sizes) > 1:
        base = pipelines[0]
        pipelines = [{**base, "name": f"vision-{int(s)}",
                      "sources": [{"name": "camera", "output_kb": s}]} for s in sizes]
        for q in queries:
            q["pipeline"] = f"vision-{int(frames[q['sources']['camera']])}"
    else:
        pipelines[0]["sources"][0]["output_kb"] = sizes[0]
    return {"hardware": _hardware(), "sites": sites, "devices": devices, "links": links,
            "operators": [det, cls], "pipelines": pipelines, "queries": queries}


def _join(rng: random.Random) -> dict[str, Any]:
    ops = [_operator(rng, "detect", rng.uniform(20.0, 40.0)),
           _operator(rng, "classify", rng.uniform(5.0, 20.0)),
           _operator(rng, "ocr", rng.uniform(5.0, 25.0)),
           _operator(rng, "merge", rng.uniform(1.0, 4.0)),
           _operator(rng, "asr", rng.uniform(15.0, 35.0)),
           _operator(rng, "fuse", rng.uniform(3.0, 10.0))]
    fork = {"name": "fork", "sources": [{"name": "camera", "output_kb": 40}],
            "stages": [{"name": "det", "operator": "detect"},
                       {"name": "cls", "operator": "classify"},
                       {"name": "ocr", "operator": "ocr"},
                       {"name": "out", "operator": "merge"}],
            "edges": [["camera", "det"], ["det", "cls"], ["det", "ocr"], ["cls", "out"],
                      ["ocr", "out"]],
            "accuracy": {"rule": "product"}}
    two = {"name": "av", "sources": [{"name": "camera", "output_kb": 40},
                                     {"name": "mic", "output_kb": 8}],
           "stages": [{"name": "det", "operator": "detect"},
                      {"name": "asr", "operator": "asr"},
                      {"name": "fuse", "operator": "fuse"}],
           "edges": [["camera", "det"], ["mic", "asr"], ["det", "fuse"], ["asr", "fuse"]],
           "accuracy": {"rule": "product"}}
    sites, devices, queries = [], [], []
    for k in range(2):
        site = f"edge-{k}"
        sites.append({"name": site, "tier": "edge", "lan_bandwidth_mbps": 1000,
                      "lan_rtt_ms": 0.2})
        devices.append({"name": f"box-{k}", "site": site, "hardware": _CPU,
                        "units": rng.choice((8, 10, 12)), "price_per_unit_hour": 0.02})
        for j in range(rng.randint(3, 5)):
            pipe = rng.choice(("fork", "av"))
            base = 45.0 if pipe == "fork" else 40.0
            sources = {"camera": site} if pipe == "fork" else {"camera": site, "mic": site}
            queries.append({"name": f"q-{k}-{j}", "pipeline": pipe, "sources": sources,
                            "rate_rps": round(rng.uniform(3.0, 15.0), 2),
                            "slo": _slo(rng, base, 1.2, 2.8)})
    return {"hardware": _hardware(), "sites": sites, "devices": devices, "links": [],
            "operators": ops, "pipelines": [fork, two], "queries": queries,
            "planner": {"sharing": rng.choice(("shared", "dedicated"))}}


def _mixed(rng: random.Random) -> dict[str, Any]:
    stages = rng.choice((3, 4))
    ops = [_operator(rng, f"op{i}", rng.uniform(4.0, 20.0) if i else rng.uniform(20.0, 40.0),
                     gpu=True, out_kb=rng.choice((2.0, 8.0, 20.0)))
           for i in range(stages)]
    names = [f"s{i}" for i in range(stages)]
    sites: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []
    _cloud(devices, sites, 4)
    for k in range(rng.choice((2, 3))):
        site = f"edge-{k}"
        sites.append({"name": site, "tier": "edge", "lan_bandwidth_mbps": 1000,
                      "lan_rtt_ms": 0.2})
        devices.append({"name": f"box-{k}", "site": site, "hardware": _CPU,
                        "units": rng.choice((3, 4, 6)), "price_per_unit_hour": 0.02})
        bw = rng.choice((20.0, 50.0))
        links.append({"src": site, "dst": "region", "bandwidth_mbps": bw, "rtt_ms": 20.0,
                      "price_per_gb": 0.02, "capacity_mbps": round(bw * rng.uniform(1.0, 2.0), 1),
                      "both_ways": True})
        for j in range(rng.randint(4, 8)):
            light = sum(o["profiles"][0]["mean_ms"] for o in ops)
            queries.append({"name": f"cam-{k}-{j}", "pipeline": "chain",
                            "sources": {"camera": site},
                            "rate_rps": round(rng.uniform(2.0, 20.0), 2),
                            "slo": _slo(rng, light, 1.0, 2.5)})
    return {
        "hardware": _hardware(), "sites": sites, "devices": devices, "links": links,
        "operators": ops,
        "pipelines": [{"name": "chain", "sources": [{"name": "camera", "output_kb": 60}],
                       "stages": [{"name": s, "operator": f"op{i}"}
                                  for i, s in enumerate(names)],
                       "edges": [["camera", names[0]], *([a, b] for a, b in
                                                         itertools.pairwise(names))],
                       "accuracy": {"rule": "product"}}],
        "queries": queries,
    }
