"""Circinus's plan for JellyBean's VQA instance is optimal for JellyBean's objective.

The brute force below is written from JellyBean's published inputs (the CSVs, not our YAML) and
the cost model in ``data/real/jellybean-vqa/README.md``: every assignment of the 9 workers to
{unused, ExtractImageFeature, SpeechRecognition, VQA} (4^9 = 262,144) times every variant pair
meeting the accuracy target, an operator's workers together sustaining 40 req/s, load split in
proportion to worker throughput, compute cost = sum of the used workers' $/h, communication cost
= traffic crossing tiers x link cost x 0.1 in GB/h. It shares no code with the planner.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest

import circinus

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "real" / "jellybean-vqa"
EXAMPLE = ROOT / "examples" / "jellybean-vqa.yaml"
RATE = 40.0
GB_H = 3600 / 1024**2  # KB/s -> GB/h
FWD, BACK = 1.0 * 0.1, 10.0 * 0.1  # link cost x COMM_COST_SCALING_FACTOR
OPS = ("ExtractImageFeature", "SpeechRecognition", "VQA")


def _rows(name: str) -> list[list[str]]:
    with (DATA / name).open(newline="") as fh:
        return [[c for c in r if c] for r in csv.reader(fh) if r]


def _brute_force() -> tuple[float, float, float]:
    """(total, compute, communication) cost of the best plan."""
    workers = [w for w, _ in _rows("workers_specs.csv")]
    price = np.array([float(c) for _, c in _rows("workers_specs.csv")])
    cloud = np.array([not w.endswith(("cpu-1", "cpu-2", "cpu-3", "cpu-4", "cpu-5"))
                      for w in workers])
    lat = {(o, w, v): float(ms) for o, w, v, ms in _rows("execution_profile.csv")}
    size = {(a, b, v): float(kb) for a, b, v, _, kb in _rows("message_sizes.csv")}
    acc = {(i, s): float(a) for i, s, a in _rows("e2e_accuracy_decoded.csv")[1:]}
    assign = np.array(list(itertools.product(range(4), repeat=len(workers))), dtype=np.int8)
    used_cost = (assign > 0) @ price
    best = (np.inf, 0.0, 0.0)
    for (img, asr), a in acc.items():
        if a < 56.0:
            continue
        variant = {"ExtractImageFeature": img, "SpeechRecognition": asr, "VQA": "default"}
        feasible = np.ones(len(assign), dtype=bool)
        cloud_share = {}
        for k, op in enumerate(OPS, start=1):
            thr = np.array([1000.0 / lat[op, w, variant[op]] for w in workers])
            mine = (assign == k) * thr
            total = mine.sum(axis=1)
            feasible &= total >= RATE - 1e-9
            with np.errstate(invalid="ignore", divide="ignore"):
                cloud_share[op] = (mine * cloud).sum(axis=1) / total
        c_img, c_asr, c_vqa = (cloud_share[o] for o in OPS)
        comm = RATE * GB_H * (
            size["ReadImage", "ExtractImageFeature", "default"] * c_img * FWD
            + size["ReadSpeech", "SpeechRecognition", "default"] * c_asr * FWD
            + size["ExtractImageFeature", "VQA", img] * ((1 - c_img) * c_vqa * FWD
                                                          + c_img * (1 - c_vqa) * BACK)
            + size["SpeechRecognition", "VQA", "default"] * ((1 - c_asr) * c_vqa * FWD
                                                            + c_asr * (1 - c_vqa) * BACK)
        )
        total_cost = np.where(feasible, used_cost + comm, np.inf)
        i = int(np.argmin(total_cost))
        if total_cost[i] < best[0]:
            best = (float(total_cost[i]), float(used_cost[i]), float(comm[i]))
    return best


@pytest.mark.slow
def test_plan_is_optimal_for_jellybean_objective() -> None:
    result = circinus.Planner().plan(circinus.load_world(EXAMPLE))
    (outcome,) = result.outcomes
    assert outcome.admitted and outcome.estimate is not None
    assert outcome.estimate.accuracy is not None and outcome.estimate.accuracy >= 56.0
    assert result.selection.status == "optimal"
    best, compute, comm = _brute_force()
    assert outcome.estimate.cost_per_hour == pytest.approx(best, rel=1e-9)
    assert outcome.estimate.compute_cost_per_hour == pytest.approx(compute, rel=1e-9)
    assert outcome.estimate.network_cost_per_hour == pytest.approx(comm, rel=1e-9)


def test_example_is_generated_from_the_data(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_jellybean_vqa", ROOT / "scripts" / "examples" / "make_jellybean_vqa.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "jellybean.yaml"
    assert module.main(["--out", str(out)]) == 0
    assert out.read_text() == EXAMPLE.read_text()
