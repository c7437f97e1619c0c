"""Generate ``examples/edge-cloud-vision.yaml``: a camera -> decode -> detect -> classify world.

The classifier variants are real: timm ImageNet top-1 and measured latency/throughput from
``data/real/timm-imagenet/joined_accuracy_latency.csv`` (Apache-2.0, huggingface/
pytorch-image-models). Everything else (decode, detector, the GPU service-time model, sites,
links, prices, queries) is a documented stand-in. The output is byte-identical run to run.

Usage: ``python scripts/examples/make_edge_cloud_vision.py [--out PATH]``.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from circinus.gen.data import TIMM, pareto_layers, read_timm_variants, upstream_commit
from circinus.gen.pipelines import (
    CAMERAS,
    DECODE,
    DETECT,
    FAMILIES,
    GPU_OVERHEAD_MS,
    GPU_REPLICA_UNITS,
    classify_operator,
    standin_operator,
    vision_pipeline,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "examples" / "edge-cloud-vision.yaml"
SCRIPT = "scripts/examples/make_edge_cloud_vision.py"

SEED = 20240607
N_QUERIES = 240
MAX_VARIANTS = 40  # whole Pareto layers are taken while the total stays at or below this
GPU_BATCHES = (4, 16)  # this example also offers batch 16 on the GPU
# Edge sites: camera, box replica slots, uplink Mbit/s, RTT ms, $/GB, uplink capacity Mbit/s.
EDGE_SITES = [
    ("shop-north", "sd", 8.0, 100.0, 12.0, 0.01, None),
    ("shop-south", "hd", 12.0, 200.0, 10.0, 0.01, None),
    ("shop-east", "sd", 8.0, 50.0, 20.0, 0.02, 80.0),
    ("mall-west", "hd", 16.0, 150.0, 15.0, 0.02, None),
    ("pole-a", "sd", 6.0, 20.0, 40.0, 0.05, 30.0),
    ("pole-b", "hd", 6.0, 30.0, 35.0, 0.05, 40.0),
]
EDGE_PRICE = 0.015  # amortised edge box, $ per replica slot-hour
# RTX 4090s in the pool: sized for shared deployments (every query routed to a classifier
# configuration shares its replicas). With 80 GPUs, shared plans kept 2.5 of them busy and
# admitted 201 queries with the pool idle; with 2 they admit 179 and the pool is a resource the
# selection trades (dedicated replicas: 167 of 240 admitted with 80 GPUs, far fewer with 2).
CLOUD_SITE, GPU_UNITS, GPU_PRICE = "cloud-eu", 2.0, 0.70
# SLO classes: name, weight, latency bounds ms, percentile, min accuracies (recall x top-1).
SLO_CLASSES = [
    ("alert", 3, (100.0, 150.0), 99.0, (0.55, 0.6, 0.65)),
    ("monitor", 5, (250.0, 400.0), 95.0, (0.6, 0.65, 0.7, 0.75)),
    ("analytics", 2, (600.0, 1000.0), 95.0, (0.7, 0.75, 0.8)),
]
RATES, RATE_WEIGHTS = (1.0, 2.0, 5.0, 10.0), (4, 3, 2, 1)
COST_CAPS, COST_CAP_SHARE = (0.25, 0.5, 1.0), 0.25


def infrastructure() -> dict[str, Any]:
    """Hardware classes, sites, devices and links (edge <-> cloud only)."""
    edge = [{"name": s[0], "tier": "edge"} for s in EDGE_SITES]
    cloud = {"name": CLOUD_SITE, "tier": "cloud", "lan_bandwidth_mbps": 10000.0,
             "lan_rtt_ms": 0.2}
    devices = [{"name": f"{s[0]}-box", "site": s[0], "hardware": "i7-12700h",
                "units": s[2], "price_per_unit_hour": EDGE_PRICE} for s in EDGE_SITES]
    devices.append({"name": "gpu-pool", "site": CLOUD_SITE, "hardware": "rtx4090",
                    "units": GPU_UNITS, "price_per_unit_hour": GPU_PRICE})
    links = []
    for name, _, _, mbps, rtt, price, cap in EDGE_SITES:
        link: dict[str, Any] = {"src": name, "dst": CLOUD_SITE, "bandwidth_mbps": mbps,
                                "rtt_ms": rtt, "price_per_gb": price}
        if cap is not None:
            link["capacity_mbps"] = cap
        links.append({**link, "both_ways": True})
    hardware = [
        {"name": "i7-12700h", "kind": "cpu",
         "description": "Intel Core i7-12700H laptop CPU, FP32, PyTorch 2.4 + torch.compile"},
        {"name": "rtx4090", "kind": "gpu", "description": "NVIDIA GeForce RTX 4090, AMP"},
    ]
    return {"hardware": hardware, "sites": [*edge, cloud], "devices": devices, "links": links}


def queries(rng: random.Random) -> list[dict[str, Any]]:
    """N_QUERIES queries, round-robin over the edge sites, SLOs drawn from SLO_CLASSES."""
    out: list[dict[str, Any]] = []
    for i in range(N_QUERIES):
        site, camera = EDGE_SITES[i % len(EDGE_SITES)][:2]
        cls, _, lats, pct, accs = rng.choices(SLO_CLASSES, weights=[c[1] for c in SLO_CLASSES])[0]
        slo: dict[str, Any] = {"latency_ms": rng.choice(lats), "percentile": pct,
                               "min_accuracy": rng.choice(accs)}
        if rng.random() < COST_CAP_SHARE:
            slo["max_cost_per_hour"] = rng.choice(COST_CAPS)
        query: dict[str, Any] = {
            "name": f"q{i:03d}-{site}-{cls}", "pipeline": f"vision-{camera}",
            "sources": {"camera": site},
            "rate_rps": rng.choices(RATES, weights=RATE_WEIGHTS)[0], "slo": slo,
        }
        if CAMERAS[camera][1] != 1.0:
            query["work_scale"] = {"decode": CAMERAS[camera][1]}
        out.append(query)
    return out


def provenance(n_variants: int, commit: str) -> list[str]:
    """Lines for the header comment and the description: origin, real numbers, stand-ins."""
    slots = sorted(s[2] for s in EDGE_SITES)
    return [
        f"edge-cloud-vision: camera -> decode -> detect -> classify; {len(EDGE_SITES)} edge sites,"
        " 1 GPU pool.",
        f"GENERATED by {SCRIPT} (seed {SEED}); do not hand-edit.",
        "",
        "REAL (timm, https://github.com/huggingface/pytorch-image-models, Apache-2.0,",
        f"commit {commit}; see data/real/timm-imagenet/README.md):",
        f"  classify: {n_variants} (model, resolution) variants, one pretrained tag per arch",
        f"  (best top-1), whole Pareto layers of top-1 vs i7 latency up to {MAX_VARIANTS};",
        "  accuracy = ImageNet-1k top-1 / 100; i7-12700h mean_ms = measured batch-1 latency",
        "  (FP32, PyTorch 2.4 + torch.compile); RTX 4090 large-batch AMP throughput.",
        "STAND-INS (assumptions, not measurements):",
        f"  rtx4090 service time t(b) = {GPU_OVERHEAD_MS:g} ms + b * 1000 / throughput;",
        f"  mean_ms = t(1), batch_ms for b in {list(GPU_BATCHES)};",
        f"  one cloud replica takes {GPU_REPLICA_UNITS:g} GPU;",
        "  decode (720p JPEG -> 640x640, raw RGB or re-encoded q90): all numbers invented;",
        "  detect (det-nano, det-small, det-medium): latency, throughput, recall (its accuracy)",
        "  and crop sizes invented; frames sd 150 KB, hd 280 KB (hd decode work x2.25);",
        "  labels 1 KB; sites, links, rates and SLOs invented;",
        f"  edge boxes of {slots[0]:g}-{slots[-1]:g} replica slots at ${EDGE_PRICE}/slot-hour",
        "  (amortised hardware);",
        f"  {GPU_UNITS:g} GPUs at ${GPU_PRICE:.2f}/GPU-hour (an assumed market price);",
        "  sized for shared deployments (one deployment per configuration and place serves",
        "  every query routed to it) so that not every query fits.",
        "End-to-end accuracy = recall x top-1 (rule product; decode accuracy 1.0).",
        "Units: ms, KB, Mbit/s, $/h, $/GB (see src/circinus/spec/models.py).",
    ]


def build_world() -> tuple[dict[str, Any], str]:
    """The world as plain data, and its header comment."""
    variants = pareto_layers(read_timm_variants(FAMILIES), MAX_VARIANTS)
    commit = upstream_commit(TIMM)
    lines = provenance(len(variants), commit)
    world: dict[str, Any] = {
        "version": 1,
        "name": "edge-cloud-vision",
        "description": " ".join(line.strip() for line in lines if line),
        **infrastructure(),
        "operators": [standin_operator("decode", DECODE, GPU_BATCHES),
                      standin_operator("detect", DETECT, GPU_BATCHES),
                      classify_operator(variants, GPU_BATCHES)],
        "pipelines": [vision_pipeline(camera) for camera in CAMERAS],
        "queries": queries(random.Random(SEED)),
        "planner": {"max_utilization": 0.8, "max_devices_per_operator": 1, "extra_replicas": 1,
                    "candidates_per_query": 8, "time_limit_s": 30.0},
    }
    return world, "".join(f"# {line}".rstrip() + "\n" for line in lines)


def render() -> str:
    """The YAML text: header comment, then the world (leaf collections in flow style)."""
    world, head = build_world()
    body = yaml.safe_dump(world, sort_keys=False, default_flow_style=None, width=100,
                          allow_unicode=False)
    return head + body


def main(argv: Sequence[str] | None = None) -> int:
    """Write the world to ``--out`` (default ``examples/edge-cloud-vision.yaml``)."""
    parser = argparse.ArgumentParser(description=f"Write the {DEFAULT_OUT.name} example world.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the YAML")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
