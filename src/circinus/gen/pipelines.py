"""Hardware classes, operators and pipelines of a generated world, built from the real data.

Two hardware classes carry every profile:

* ``i7-12700h`` (edge CPU; a unit is a replica slot of an edge box): timm's measured batch-1
  latency for the classifiers; JellyBean's worker ``cpu-5`` for the VQA operators;
* ``rtx4090`` (cloud GPU; a unit is one GPU, a replica takes :data:`GPU_REPLICA_UNITS`): timm's
  RTX 4090 large-batch throughput for the classifiers, through the stand-in service time
  ``t(b) = GPU_OVERHEAD_MS + b * 1000 / throughput``; JellyBean's worker ``gpu-1`` for VQA.

NOTE: JellyBean profiled its own machines, not these two. Mapping its fastest edge-tier worker
(``cpu-5``, the most expensive tier-0 machine) onto the edge CPU class and its ``gpu-1`` onto the
cloud GPU class keeps every VQA latency a real measurement while letting both pipelines compete
for the same boxes and pool; the absolute speeds of the two CPUs are not claimed to match.

Two pipelines: ``vision-sd`` / ``vision-hd`` (camera -> decode -> detect -> classify; sd and hd
cameras differ in frame size and decode work) and ``vqa`` (JellyBean's DAG: image features ||
speech recognition -> VQA, with its measured message sizes and end-to-end accuracy table).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from circinus.gen.data import (
    Variant,
    jellybean_latencies,
    jellybean_rows,
    pareto_layers,
    read_timm_variants,
)

EDGE_HW, CLOUD_HW = "i7-12700h", "rtx4090"
GPU_OVERHEAD_MS = 2.0  # stand-in fixed per-batch cost on the RTX 4090
GPU_BATCHES = (4,)  # b=16 waits 0.4-7.5 s to fill at 1-20 req/s: past the SLOs; fewer plans
GPU_REPLICA_UNITS = 0.25  # a quarter of a GPU (MPS share) per cloud replica
MAX_CLASSIFIERS = 16  # whole Pareto layers up to this many: the first layer, 14 variants
FAMILIES = re.compile(
    r"^(mobilenetv3_(large|small)_\d+|efficientnet_b\d|resnet(18|34|50|101|152)d?"
    r"|convnext_(atto|femto|pico|nano|tiny|small|base)|vit_(tiny|small|base)_patch16_(224|384)"
    r"|deit_(tiny|small|base)_patch16_224)$"
)
JELLYBEAN_WORKERS = {"workflow-compute-cpu-5": EDGE_HW, "workflow-compute-gpu-1": CLOUD_HW}
VQA_STAGES = ("ExtractImageFeature", "SpeechRecognition", "VQA")
VQA_HEAD_EDGE_UNITS = 0.25  # the 11-ms fusion head shares a slot, like decode (stand-in)

# Stand-ins: (config, i7 batch-1 ms, i7 units, GPU samples/s for t(b), output KB, accuracy).
DECODE = [  # 720p JPEG -> 640x640; "raw" keeps RGB8, "jpeg" re-encodes at q90 (accuracy 1.0)
    ({"output": "raw"}, 6.0, 0.25, 2000.0, 1200.0, 1.0),
    ({"output": "jpeg"}, 10.0, 0.25, 1200.0, 90.0, 1.0),
]
DETECT = [  # three detector sizes at 640 px; accuracy = recall of the object of interest
    ({"model": "det-nano"}, 25.0, 1.0, 2500.0, 20.0, 0.82),
    ({"model": "det-small"}, 60.0, 1.0, 1200.0, 24.0, 0.89),
    ({"model": "det-medium"}, 150.0, 1.0, 500.0, 28.0, 0.93),
]
CAMERAS = {"sd": (150.0, 1.0), "hd": (280.0, 2.25)}  # frame KB, decode work vs the 720p profile


def hardware() -> list[dict[str, Any]]:
    """The two hardware classes (see module docstring)."""
    return [
        {"name": EDGE_HW, "kind": "cpu",
         "description": "Intel Core i7-12700H, FP32, PyTorch 2.4 + torch.compile (timm); VQA "
         "operators use JellyBean's cpu-5 worker measurements; a unit is a replica slot"},
        {"name": CLOUD_HW, "kind": "gpu",
         "description": "NVIDIA GeForce RTX 4090, AMP (timm); VQA operators use JellyBean's "
         "gpu-1 worker measurements; a unit is one GPU"},
    ]


def gpu_profile(config: dict[str, Any], samples_per_s: float,
                batches: Sequence[int] = GPU_BATCHES) -> dict[str, Any]:
    """RTX 4090 profile from the stand-in t(b) = GPU_OVERHEAD_MS + b * 1000 / samples_per_s,
    with ``batches`` as the profiled batch sizes beyond 1.

    Example: 1,000 samples/s gives t(1) = 3 ms, t(4) = 6 ms, t(16) = 18 ms.
    """

    def t(b: int) -> float:
        return round(GPU_OVERHEAD_MS + b * 1000.0 / samples_per_s, 3)

    return {"config": dict(config), "hardware": CLOUD_HW, "mean_ms": t(1),
            "batch_ms": {b: t(b) for b in batches}, "units": GPU_REPLICA_UNITS}


def standin_operator(name: str, rows: Sequence[tuple[Any, ...]],
                     batches: Sequence[int] = GPU_BATCHES) -> dict[str, Any]:
    """An operator from a stand-in table of (config, i7 ms, i7 units, GPU sps, KB, accuracy)."""
    knob = next(iter(rows[0][0]))
    profiles: list[dict[str, Any]] = []
    for config, cpu_ms, units, sps, _, _ in rows:
        profiles.append({"config": dict(config), "hardware": EDGE_HW, "mean_ms": cpu_ms,
                         "units": units})
        profiles.append(gpu_profile(config, sps, batches))
    return {
        "name": name,
        "knobs": {knob: [r[0][knob] for r in rows]},
        "profiles": profiles,
        "output_kb": [{"when": dict(r[0]), "value": r[4]} for r in rows],
        "accuracy": [{"when": dict(r[0]), "value": r[5]} for r in rows],
    }


def classifier_variants() -> list[Variant]:
    """The real classifier ladder: the first Pareto layer of top-1 vs i7 latency (14 rows)."""
    return pareto_layers(read_timm_variants(FAMILIES), MAX_CLASSIFIERS)


def classify_operator(variants: Sequence[Variant],
                      batches: Sequence[int] = GPU_BATCHES) -> dict[str, Any]:
    """The crop classifier: knobs model x resolution, real latency and top-1 per variant."""
    profiles: list[dict[str, Any]] = []
    accuracy: list[dict[str, Any]] = []
    for v in variants:
        config = {"model": v.model, "resolution": v.resolution}
        profiles.append({"config": dict(config), "hardware": EDGE_HW, "mean_ms": v.cpu_ms})
        profiles.append(gpu_profile(config, v.gpu_sps, batches))
        accuracy.append({"when": dict(config), "value": round(v.top1 / 100.0, 5)})
    return {
        "name": "classify",
        "knobs": {"model": list(dict.fromkeys(v.model for v in variants)),
                  "resolution": sorted({v.resolution for v in variants})},
        "profiles": profiles,
        "output_kb": 1.0,
        "accuracy": accuracy,
    }


def vision_pipeline(camera: str) -> dict[str, Any]:
    """camera -> decode -> detect -> classify for one camera type; accuracy = product."""
    return {
        "name": f"vision-{camera}",
        "sources": [{"name": "camera", "output_kb": CAMERAS[camera][0]}],
        "stages": [{"name": s, "operator": s} for s in ("decode", "detect", "classify")],
        "edges": [["camera", "decode"], ["decode", "detect"], ["detect", "classify"]],
        "accuracy": {"rule": "product"},
    }


def _vqa_operators() -> list[dict[str, Any]]:
    """JellyBean's three operators, profiled on the two classes via :data:`JELLYBEAN_WORKERS`."""
    sizes = [(r[0], r[2], float(r[4])) for r in jellybean_rows("message_sizes.csv")]
    ops: dict[str, dict[str, Any]] = {
        op: {"name": op, "knobs": {}, "profiles": []} for op in VQA_STAGES
    }
    for lat in jellybean_latencies():
        hw = JELLYBEAN_WORKERS.get(lat.worker)
        if hw is None:
            continue
        op = ops[lat.operator]
        config = {} if lat.variant == "default" else {"model": lat.variant}
        if config and lat.variant not in op["knobs"].setdefault("model", []):
            op["knobs"]["model"].append(lat.variant)
        prof: dict[str, Any] = {"config": config, "hardware": hw, "mean_ms": round(lat.mean_ms, 3)}
        if lat.p90_ms is not None and lat.p90_ms >= lat.mean_ms:
            prof["p90_ms"] = round(lat.p90_ms, 3)
        if hw == CLOUD_HW:
            prof["units"] = GPU_REPLICA_UNITS
        elif lat.operator == "VQA":
            prof["units"] = VQA_HEAD_EDGE_UNITS
        op["profiles"].append(prof)
    for op in ops.values():
        out = [({} if v == "default" else {"model": v}, kb)
               for src, v, kb in sizes if src == op["name"]]
        if len(out) == 1:
            op["output_kb"] = round(out[0][1], 3)
        elif out:
            op["output_kb"] = [{"when": w, "value": round(kb, 3)} for w, kb in out]
    return list(ops.values())


def _vqa_pipeline() -> dict[str, Any]:
    """JellyBean's VQA DAG with its source message sizes and end-to-end accuracy table."""
    sizes = {r[0]: float(r[4]) for r in jellybean_rows("message_sizes.csv")}
    edges = jellybean_rows("logical_graph.csv")
    table = [
        {"config": {"ExtractImageFeature": {"model": img}, "SpeechRecognition": {"model": asr}},
         "accuracy": float(acc)}
        for img, asr, acc in jellybean_rows("e2e_accuracy_decoded.csv")[1:]
    ]
    sources = [a for a, _ in edges if a not in VQA_STAGES]
    return {
        "name": "vqa",
        "sources": [{"name": s, "output_kb": round(sizes[s], 3)} for s in sources],
        "stages": [{"name": op, "operator": op} for op in VQA_STAGES],
        "edges": [[a, b] for a, b in edges],
        "accuracy": {"rule": "table", "table": table},
    }


def catalogue() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(operators, pipelines)`` as plain world data, in a fixed order."""
    operators = [standin_operator("decode", DECODE), standin_operator("detect", DETECT),
                 classify_operator(classifier_variants()), *_vqa_operators()]
    pipelines = [*(vision_pipeline(c) for c in CAMERAS), _vqa_pipeline()]
    return operators, pipelines
