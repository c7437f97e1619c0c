"""JellyBean's optimizer, as the ``jellybean`` baseline runs it, reproduces JellyBean's published
plan and cost on JellyBean's own VQA instance.

Published (JellyBean, Wu et al., MLSys'23; upstream README of github.com/libertyeagle/JellyBean,
commit 65a1d67, reproduced by running its optimizer with ``data/real/jellybean-vqa/config.yaml``;
see ``data/real/jellybean-vqa/README.md``): ExtractImageFeature = resnet18 on cpu-1, cpu-2 and
cpu-5; SpeechRecognition = wav2vec2-large-960h-lv60-self on gpu-1 and cpu-3; VQA on cpu-6;
compute 6.242 $/h + communication 1.2667783071018048 $/h, end-to-end accuracy 56.59; cpu-1 and
cpu-2 at their full throughput and cpu-5 the rest, gpu-1 at 37.18 req/s and cpu-3 the remaining
2.82.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import circinus
from circinus.baselines import MultiTierSearch
from circinus.baselines.jellybean_assign import topological_orders
from circinus.estimate import AnalyticEstimator
from circinus.spec.load import load_indexed_world

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jellybean-vqa.yaml"


def _search() -> tuple[MultiTierSearch, circinus.Query]:
    _, index = load_indexed_world(EXAMPLE)
    search = MultiTierSearch(estimator=AnalyticEstimator(index=index),
                             settings=index.world.planner)
    return search, index.world.queries[0]


def test_jellybean_reproduces_its_published_plan_and_cost() -> None:
    search, query = _search()
    best = search.plans(query)[0]
    assert best.assignment.compute == pytest.approx(6.242, abs=1e-9)
    assert best.assignment.communication == pytest.approx(1.2667783071018048, rel=1e-9)
    assert best.accuracy == pytest.approx(56.59)
    assert best.vector == (("resnet18",), ("wav2vec2-large-960h-lv60-self",), ())
    shares = {stage: {s.device: s.rps for s in workers}
              for stage, workers in best.assignment.shares}
    assert set(shares["ExtractImageFeature"]) == {"cpu-1", "cpu-2", "cpu-5"}
    assert set(shares["SpeechRecognition"]) == {"gpu-1", "cpu-3"}
    assert set(shares["VQA"]) == {"cpu-6"}
    assert shares["SpeechRecognition"]["gpu-1"] == pytest.approx(37.18, abs=0.005)
    assert shares["SpeechRecognition"]["cpu-3"] == pytest.approx(2.82, abs=0.005)
    # cpu-1 and cpu-2 at their full throughput (1000 / mean ms), cpu-5 the rest.
    assert shares["ExtractImageFeature"]["cpu-1"] == pytest.approx(1000 / 135.08435991666667)
    assert sum(shares["ExtractImageFeature"].values()) == pytest.approx(40.0)


def test_the_bench_plan_is_jellybeans_choice_estimated_by_circinus() -> None:
    result = circinus.Planner(search="jellybean", selector="fcfs").plan(
        circinus.load_world(EXAMPLE))
    (outcome,) = result.outcomes
    assert outcome.admitted and outcome.plan is not None and outcome.estimate is not None
    placed = {s.stage: set(s.devices) for s in outcome.plan.stages}
    assert placed == {"ExtractImageFeature": {"cpu-1", "cpu-2", "cpu-5"},
                      "SpeechRecognition": {"gpu-1", "cpu-3"}, "VQA": {"cpu-6"}}
    assert outcome.estimate.compute_cost_per_hour == pytest.approx(6.242)
    # Circinus splits load in proportion to throughput, not first-worker-full: cpu-3 takes
    # more of the audio, so less of it crosses to the cloud than in JellyBean's own figure.
    assert outcome.estimate.network_cost_per_hour < 1.2667783071018048


def test_topological_orders_are_distinct_and_capped() -> None:
    preds = {"a": ("src",), "b": ("src",), "c": ("a", "b"), "d": ("c",)}
    orders = list(topological_orders(["a", "b", "c", "d"], preds, 10))
    assert orders == [("a", "b", "c", "d"), ("b", "a", "c", "d")]
    assert list(topological_orders(["a", "b", "c", "d"], preds, 1)) == [("a", "b", "c", "d")]
