"""Circinus's plan for JellyBean's VQA instance and variants of it is optimal for JellyBean's
objective.

The brute force below is written from JellyBean's published inputs (the CSVs, not our YAML) and
the cost model in ``data/real/jellybean-vqa/README.md``: every assignment of the 9 workers to
{unused, ExtractImageFeature, SpeechRecognition, VQA} (4^9 = 262,144) times every variant pair
meeting the accuracy target, an operator's workers together sustaining 40 req/s, load split in
proportion to worker throughput, compute cost = sum of the used workers' $/h, communication cost
= traffic crossing tiers x link cost x 0.1 in GB/h. It shares no code with the planner. The
variants change the accuracy target, the rate, the link prices or forbid cloud -> edge traffic
(JellyBean's rule), where plans of minimal device sets are not optimal.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import circinus
from circinus.spec import parse_world
from circinus.spec.models import World

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


def _brute_force(*, accuracy: float = 56.0, rate: float = RATE, price: float = 1.0,
                 backward: bool = True) -> tuple[float, float, float]:
    """(total, compute, communication) cost of the best plan at accuracy >= ``accuracy``,
    ``rate`` requests/s per source, link prices times ``price``; ``backward=False`` is
    JellyBean's rule of no cloud -> edge traffic (a plan sending any is infeasible)."""
    workers = [w for w, _ in _rows("workers_specs.csv")]
    dollars = np.array([float(c) for _, c in _rows("workers_specs.csv")])
    cloud = np.array([not w.endswith(("cpu-1", "cpu-2", "cpu-3", "cpu-4", "cpu-5"))
                      for w in workers])
    lat = {(o, w, v): float(ms) for o, w, v, ms in _rows("execution_profile.csv")}
    size = {(a, b, v): float(kb) for a, b, v, _, kb in _rows("message_sizes.csv")}
    acc = {(i, s): float(a) for i, s, a in _rows("e2e_accuracy_decoded.csv")[1:]}
    assign = np.array(list(itertools.product(range(4), repeat=len(workers))), dtype=np.int8)
    used_cost = (assign > 0) @ dollars
    fwd, back = FWD * price, BACK * price
    best = (np.inf, 0.0, 0.0)
    for (img, asr), a in acc.items():
        if a < accuracy:
            continue
        variant = {"ExtractImageFeature": img, "SpeechRecognition": asr, "VQA": "default"}
        feasible = np.ones(len(assign), dtype=bool)
        cloud_share = {}
        for k, op in enumerate(OPS, start=1):
            thr = np.array([1000.0 / lat[op, w, variant[op]] for w in workers])
            mine = (assign == k) * thr
            total = mine.sum(axis=1)
            feasible &= total >= rate - 1e-9
            with np.errstate(invalid="ignore", divide="ignore"):
                cloud_share[op] = (mine * cloud).sum(axis=1) / total
        c_img, c_asr, c_vqa = (cloud_share[o] for o in OPS)
        if not backward:  # an upstream stage in the cloud sends to VQA's edge share
            feasible &= ~(((c_img > 0) | (c_asr > 0)) & (c_vqa < 1 - 1e-12))
        comm = rate * GB_H * (
            size["ReadImage", "ExtractImageFeature", "default"] * c_img * fwd
            + size["ReadSpeech", "SpeechRecognition", "default"] * c_asr * fwd
            + size["ExtractImageFeature", "VQA", img] * ((1 - c_img) * c_vqa * fwd
                                                          + c_img * (1 - c_vqa) * back)
            + size["SpeechRecognition", "VQA", "default"] * ((1 - c_asr) * c_vqa * fwd
                                                            + c_asr * (1 - c_vqa) * back)
        )
        total_cost = np.where(feasible, used_cost + comm, np.inf)
        i = int(np.argmin(total_cost))
        if total_cost[i] < best[0]:
            best = (float(total_cost[i]), float(used_cost[i]), float(comm[i]))
    return best


def _variant(*, accuracy: float = 56.0, rate: float = RATE, price: float = 1.0,
             backward: bool = True) -> World:
    """JellyBean's instance (our YAML) with the variant's accuracy target, rate, link prices
    and, for ``backward=False``, no cloud -> edge link (so no plan may send that way)."""
    data = yaml.safe_load(EXAMPLE.read_text())
    query = data["queries"][0]
    query["slo"]["min_accuracy"] = accuracy
    query["rate_rps"] = rate
    data["links"] = [{**ln, "price_per_gb": ln["price_per_gb"] * price} for ln in data["links"]
                     if backward or ln["src"] != "cloud"]
    return parse_world(data)


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


# Variants of the instance; plans of minimal device sets alone (before larger sets were grown,
# circinus.search.grow) ended 0.4-4.9 % above the optimum on eight of them.
VARIANTS = [
    {"accuracy": 57.0}, {"accuracy": 58.0}, {"rate": 60.0}, {"rate": 80.0}, {"price": 3.0},
    {"price": 10.0}, {"accuracy": 57.0, "rate": 60.0}, {"backward": False},
    {"backward": False, "accuracy": 57.0}, {"backward": False, "rate": 60.0},
    {"backward": False, "price": 3.0}, {"backward": False, "accuracy": 58.0},
    {"backward": False, "rate": 80.0}, {"backward": False, "price": 10.0},
    {"accuracy": 58.0, "price": 3.0},
]


def _check_variant(variant: dict[str, Any], search: str) -> None:
    result = circinus.Planner(search=search).plan(_variant(**variant))
    (outcome,) = result.outcomes
    assert outcome.admitted and outcome.estimate is not None
    best, _, _ = _brute_force(**variant)
    assert outcome.estimate.cost_per_hour == pytest.approx(best, rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("search", ["circinus", "exhaustive"])
@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_variant_reaches_the_brute_force_optimum(variant: dict[str, Any], search: str) -> None:
    _check_variant(variant, search)


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
