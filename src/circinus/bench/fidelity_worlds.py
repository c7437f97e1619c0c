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
  percentile from 50 to 99, high utilisation;
* ``fanout`` - a detector whose configurations emit a random number of objects per frame
  (``operators[].fanout``, mean 1.5-8, cv 0.3-1.2), each classified as a sub-request of a
  burst, on an edge box or behind an uplink on batching GPUs;
* ``branch`` - a router that sends each frame to one of two models (``pipelines[].branches``)
  and a cascade that escalates 10-35 % of its frames to a heavy model;
* ``sources`` - camera and microphone pipelines: one ending in a join without an operator, one
  whose microphone runs on its own clock (``queries[].source_rate_rps``), cameras of their own
  frame size (``queries[].source_output_kb``), a metered uplink;
* ``shares`` - low-rate single- and two-stage queries on two or three cloud GPUs whose replicas
  may take a quarter, a half or the whole GPU (``profiles[].shares``), p95 and p99 SLOs, some
  on replicas of their own.

Every figure is a stand-in drawn from a ``random.Random`` seeded with ``(kind, seed)``: the same
kind and seed give the same world. The profiles are of the magnitude of published edge-vision
measurements (detectors of tens of ms on a CPU core, classifiers of a few ms, GPU batches) but
are not measurements.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

KINDS = ("tandem", "uplink", "join", "mixed", "fanout", "branch", "sources", "shares")
"""The kinds of fidelity world, in the order the bench runs them."""
PERCENTILES = (50.0, 90.0, 95.0, 99.0)

_CPU, _GPU = "edge-cpu", "gpu"


def fidelity_world(kind: str, seed: int) -> dict[str, Any]:
    """The world of ``kind`` (one of :data:`KINDS`) for ``seed``, as a plain dict.

    Raises:
        ValueError: for an unknown kind.
    """
    makers = {"tandem": _tandem, "uplink": _uplink, "join": _join, "mixed": _mixed,
              "fanout": _fanout, "branch": _branch, "sources": _sources, "shares": _shares}
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
    two = _camera_and_mic("av", 40, ("det", "detect"), ("asr", "asr"),
                          {"name": "fuse", "operator": "fuse"})
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


def _edge_site(rng: random.Random, k: int, sites: list[dict[str, Any]],
               devices: list[dict[str, Any]], units: tuple[int, ...]) -> str:
    """Edge site ``edge-k`` with one box of ``units`` cores (a choice); its name."""
    site = f"edge-{k}"
    sites.append({"name": site, "tier": "edge", "lan_bandwidth_mbps": 1000, "lan_rtt_ms": 0.2})
    devices.append({"name": f"box-{k}", "site": site, "hardware": _CPU,
                    "units": rng.choice(units), "price_per_unit_hour": 0.02})
    return site


def _uplink_to_cloud(rng: random.Random, site: str, links: list[dict[str, Any]], *,
                     source_price: bool = False) -> None:
    bw = rng.choice((50.0, 100.0, 200.0))
    link: dict[str, Any] = {"src": site, "dst": "region", "bandwidth_mbps": bw,
                            "rtt_ms": rng.choice((10.0, 20.0)), "price_per_gb": 0.02,
                            "capacity_mbps": round(bw * rng.uniform(1.5, 3.0), 1),
                            "both_ways": True}
    if source_price:
        link["source_price_per_gb"] = 0.2
    links.append(link)


def _fanout(rng: random.Random) -> dict[str, Any]:
    det = _operator(rng, "detect", rng.uniform(15.0, 40.0), gpu=True, out_kb=8.0)
    cls = _operator(rng, "classify", rng.uniform(2.0, 8.0), gpu=True, out_kb=0.2)
    light = rng.uniform(1.5, 5.0)
    cv = round(rng.uniform(0.3, 1.2), 2)
    det["fanout"] = [{"when": {"model": "light"}, "mean": round(light, 2), "cv": cv},
                     {"when": {"model": "heavy"}, "mean": round(light * rng.uniform(1.2, 1.6), 2),
                      "cv": cv}]
    sites: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []
    _cloud(devices, sites, rng.choice((2, 4)))
    fast = det["profiles"][0]["mean_ms"] + light * cls["profiles"][0]["mean_ms"]
    for k in range(rng.choice((2, 3))):
        site = _edge_site(rng, k, sites, devices, (6, 8, 10))
        _uplink_to_cloud(rng, site, links)
        for j in range(rng.randint(3, 6)):
            queries.append({"name": f"cam-{k}-{j}", "pipeline": "objects",
                            "sources": {"camera": site},
                            "rate_rps": round(rng.uniform(1.0, 8.0), 2),
                            "slo": _slo(rng, fast, 1.2, 3.0)})
    return {
        "hardware": _hardware(), "sites": sites, "devices": devices, "links": links,
        "operators": [det, cls],
        "pipelines": [{"name": "objects", "sources": [{"name": "camera", "output_kb": 80}],
                       "stages": [{"name": "det", "operator": "detect"},
                                  {"name": "cls", "operator": "classify"}],
                       "edges": [["camera", "det"], ["det", "cls"]],
                       "accuracy": {"rule": "product"}}],
        "queries": queries,
        "planner": {"sharing": rng.choice(("shared", "dedicated"))},
    }


def _branch(rng: random.Random) -> dict[str, Any]:
    ops = [_operator(rng, "route", rng.uniform(1.0, 4.0), out_kb=30.0),
           _operator(rng, "day", rng.uniform(8.0, 25.0), gpu=True),
           _operator(rng, "night", rng.uniform(15.0, 45.0), gpu=True),
           _operator(rng, "log", rng.uniform(0.5, 2.0)),
           _operator(rng, "cheap", rng.uniform(5.0, 15.0)),
           _operator(rng, "expert", rng.uniform(30.0, 80.0), gpu=True)]
    day = round(rng.uniform(0.5, 0.85), 2)
    escalate = round(rng.uniform(0.1, 0.35), 2)
    router = {"name": "router", "sources": [{"name": "camera", "output_kb": 30}],
              "stages": [{"name": "route", "operator": "route"},
                         {"name": "day", "operator": "day"},
                         {"name": "night", "operator": "night"},
                         {"name": "log", "operator": "log"}],
              "edges": [["camera", "route"], ["route", "day"], ["route", "night"],
                        ["day", "log"], ["night", "log"]],
              "branches": [{"at": "route", "to": {"day": day, "night": round(1 - day, 2)}}],
              "accuracy": {"rule": "product"}}
    cascade = {"name": "cascade", "sources": [{"name": "camera", "output_kb": 30}],
               "stages": [{"name": "cheap", "operator": "cheap"},
                          {"name": "expert", "operator": "expert"},
                          {"name": "out", "operator": "log"}],
               "edges": [["camera", "cheap"], ["cheap", "expert"], ["cheap", "out"],
                         ["expert", "out"]],
               "branches": [{"at": "cheap", "to": {"expert": escalate}}],
               "accuracy": {"rule": "product"}}
    sites: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []
    _cloud(devices, sites, rng.choice((2, 4)))
    base = {"router": sum(o["profiles"][0]["mean_ms"] for o in (ops[0], ops[2], ops[3])),
            "cascade": sum(o["profiles"][0]["mean_ms"] for o in (ops[4], ops[5], ops[3]))}
    for k in range(2):
        site = _edge_site(rng, k, sites, devices, (6, 8, 12))
        _uplink_to_cloud(rng, site, links)
        for j in range(rng.randint(3, 6)):
            pipe = rng.choice(("router", "cascade"))
            queries.append({"name": f"q-{k}-{j}", "pipeline": pipe, "sources": {"camera": site},
                            "rate_rps": round(rng.uniform(2.0, 15.0), 2),
                            "slo": _slo(rng, base[pipe], 1.1, 2.5)})
    return {"hardware": _hardware(), "sites": sites, "devices": devices, "links": links,
            "operators": ops, "pipelines": [router, cascade], "queries": queries,
            "planner": {"sharing": rng.choice(("shared", "dedicated"))}}


def _sources(rng: random.Random) -> dict[str, Any]:
    ops = [_operator(rng, "faces", rng.uniform(15.0, 40.0), gpu=True, out_kb=2.0),
           _operator(rng, "asr", rng.uniform(3.0, 10.0), gpu=True, out_kb=0.5),
           _operator(rng, "fuse", rng.uniform(1.0, 5.0), out_kb=0.2)]
    watch = _camera_and_mic("watch", 60, ("faces", "faces"), ("speech", "asr"),
                            {"name": "done"})
    fusion = _camera_and_mic("fusion", 60, ("faces", "faces"), ("speech", "asr"),
                             {"name": "fused", "operator": "fuse"})
    sites: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    queries: list[dict[str, Any]] = []
    _cloud(devices, sites, rng.choice((2, 4)))
    base = ops[0]["profiles"][0]["mean_ms"] + ops[2]["profiles"][0]["mean_ms"]
    for k in range(2):
        site = _edge_site(rng, k, sites, devices, (6, 8, 12))
        _uplink_to_cloud(rng, site, links, source_price=True)
        for j in range(rng.randint(3, 6)):
            pipe = rng.choice(("watch", "fusion"))
            query: dict[str, Any] = {
                "name": f"q-{k}-{j}", "pipeline": pipe,
                "sources": {"camera": site, "mic": site},
                "rate_rps": round(rng.uniform(2.0, 12.0), 2), "slo": _slo(rng, base, 1.2, 3.0)}
            if pipe == "fusion" and rng.random() < 0.7:
                query["source_rate_rps"] = {"mic": round(rng.uniform(5.0, 40.0), 1)}
            if rng.random() < 0.4:
                query["source_output_kb"] = {"camera": rng.choice((30.0, 120.0, 240.0))}
            queries.append(query)
    return {"hardware": _hardware(), "sites": sites, "devices": devices, "links": links,
            "operators": ops, "pipelines": [watch, fusion], "queries": queries}


def _shares(rng: random.Random) -> dict[str, Any]:
    ops: list[dict[str, Any]] = []
    for name, lo, hi in (("small", 1.5, 4.0), ("medium", 3.0, 8.0), ("large", 8.0, 20.0)):
        ms = rng.uniform(lo, hi)
        ops.append({
            "name": name,
            "profiles": [{"hardware": _GPU, "mean_ms": round(ms, 3),
                          "cv": round(rng.uniform(0.05, 0.3), 3),
                          "batch_ms": {4: round(ms * rng.uniform(1.4, 2.2), 3)}, "units": 1,
                          "shares": [{"units": 0.25}, {"units": 0.5}]}],
            "output_kb": 1.0, "accuracy": round(rng.uniform(0.8, 0.95), 3)})
    single: list[dict[str, Any]] = [
        {"name": f"{op['name']}-only", "sources": [{"name": "camera", "output_kb": 60}],
         "stages": [{"name": "m", "operator": op["name"]}], "edges": [["camera", "m"]]}
        for op in ops]
    pair: dict[str, Any] = {"name": "pair", "sources": [{"name": "camera", "output_kb": 60}],
            "stages": [{"name": "a", "operator": "small"}, {"name": "b", "operator": "large"}],
            "edges": [["camera", "a"], ["a", "b"]]}
    sites: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    _cloud(devices, sites, rng.choice((2, 3)))
    site = "store"
    sites.append({"name": site, "tier": "edge"})
    links.append({"src": site, "dst": "region", "bandwidth_mbps": 200.0, "rtt_ms": 10.0,
                  "price_per_gb": 0.0, "both_ways": True})
    queries: list[dict[str, Any]] = []
    pipes = [*single, pair]
    for j in range(rng.randint(4, 8)):
        pipe = rng.choice(pipes)
        ms = sum(o["profiles"][0]["mean_ms"] for o in ops
                 if o["name"] in {s["operator"] for s in pipe["stages"]})
        query: dict[str, Any] = {
            "name": f"cam-{j}", "pipeline": pipe["name"], "sources": {"camera": site},
            "rate_rps": round(rng.uniform(0.5, 8.0), 2),
            "slo": {"latency_ms": round(10.0 + ms * rng.uniform(1.5, 5.0), 1),
                    "percentile": rng.choice((95.0, 99.0))}}
        if rng.random() < 0.3:
            query["sharing"] = "dedicated"
        queries.append(query)
    return {"hardware": _hardware(), "sites": sites, "devices": devices, "links": links,
            "operators": ops, "pipelines": pipes, "queries": queries}


def _camera_and_mic(name: str, camera_kb: float, vision: tuple[str, str],
                    speech: tuple[str, str], sink: dict[str, Any]) -> dict[str, Any]:
    """A two-source pipeline: the camera's frames (``camera_kb``) to a vision stage, the
    microphone's (8 KB) to a speech stage (each ``(stage, operator)``), both into ``sink`` (a
    stage with an operator, or without one: a join)."""
    (v, v_op), (a, a_op) = vision, speech
    return {"name": name, "sources": [{"name": "camera", "output_kb": camera_kb},
                                      {"name": "mic", "output_kb": 8}],
            "stages": [{"name": v, "operator": v_op}, {"name": a, "operator": a_op}, sink],
            "edges": [["camera", v], ["mic", a], [v, sink["name"]], [a, sink["name"]]],
            "accuracy": {"rule": "product"}}
