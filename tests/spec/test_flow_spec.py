"""Fan-out and branches in the world format: each bad value is one line naming the field and the
way out; the bundled example validates, plans and simulates."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from circinus.errors import SpecError
from circinus.plan.file import to_plan_file
from circinus.planner import Planner
from circinus.runtime.build import build_config
from circinus.simulate import PoissonArrivals, SimulationSettings, compile_plan, simulate
from circinus.spec import build_index, load_world, parse_world
from tinyworld import make_tiny_world

World = dict[str, Any]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "camera-objects.yaml"


def _pipe(w: World) -> dict[str, Any]:
    return w["pipelines"][0]


def _detect(w: World) -> dict[str, Any]:
    return next(o for o in w["operators"] if o["name"] == "detect")


def _fan(w: World, **entry: Any) -> None:
    _detect(w)["fanout"] = [{"mean": 4.0, **entry}]


def _router(w: World) -> None:
    """det -> {cls, cls2} -> sink: a branch point at det."""
    _pipe(w)["stages"] += [{"name": "cls2", "operator": "classify"},
                           {"name": "sink", "operator": "classify"}]
    _pipe(w)["edges"] += [["det", "cls2"], ["cls", "sink"], ["cls2", "sink"]]


CASES: list[tuple[str, Callable[[World], object], str, str]] = [
    ("fanout-negative", lambda w: _fan(w, mean=-1),
     "operators[0].fanout[0].mean", "must be >= 0 and <= 1000, got -1"),
    ("fanout-cv", lambda w: _fan(w, cv=11),
     "operators[0].fanout[0].cv", "must be >= 0 and <= 10, got 11"),
    ("fanout-unmatched", lambda w: _detect(w).update(
        fanout=[{"when": {"model": "small"}, "mean": 3}]),
     "operators[0].fanout", "no entry matches configuration {'model': 'large'}"),
    ("fanout-at-sink", lambda w: (_detect(w).update(fanout=[{"mean": 3}]),
                                  _pipe(w).update(edges=[["camera", "cls"], ["cls", "det"]])),
     "pipelines[0].stages[0]", "stage 'det' is the sink"),
    ("fanout-two-successors", lambda w: (_fan(w), _router(w)),
     "pipelines[0].stages[0]", "fan-out stage 'det' feeds 2 stages (cls, cls2)"),
    ("fanout-join-outside", lambda w: (
        _fan(w), _pipe(w)["stages"].append({"name": "sink", "operator": "classify"}),
        _pipe(w)["edges"].extend([["cls", "sink"], ["camera", "sink"]])),
     "pipelines[0].edges", "stage 'sink' serves the objects of fan-out stage 'det' but also "
     "takes input from 'camera'"),
    ("branch-sum", lambda w: (_router(w), _pipe(w).update(
        branches=[{"at": "det", "to": {"cls": 0.7, "cls2": 0.5}}])),
     "pipelines[0].branches[0].to", "the probabilities sum to 1.2"),
    ("branch-probability", lambda w: (_router(w), _pipe(w).update(
        branches=[{"at": "det", "to": {"cls": 1.5}}])),
     "pipelines[0].branches[0].to", "stage 'cls': a probability must be >= 0 and <= 1"),
    ("branch-not-successor", lambda w: (_router(w), _pipe(w).update(
        branches=[{"at": "det", "to": {"sink": 0.5}}])),
     "pipelines[0].branches[0].to.sink", "'sink' is not a successor of 'det'"),
    ("branch-unknown-stage", lambda w: (_router(w), _pipe(w).update(
        branches=[{"at": "nope", "to": {"cls": 0.5}}])),
     "pipelines[0].branches[0].at", "unknown stage 'nope'"),
    ("branch-misses-sink", lambda w: _pipe(w).update(
        branches=[{"at": "det", "to": {"cls": 0.8}}]),
     "pipelines[0].branches", "with probability 0.2 a request never reaches the sink 'cls'"),
    ("branch-never-visited", lambda w: (_router(w), _pipe(w).update(
        branches=[{"at": "det", "to": {"cls": 1.0, "cls2": 0.0}}])),
     "pipelines[0].branches", "no request ever reaches stage 'cls2'"),
    ("branch-twice", lambda w: (_router(w), _pipe(w).update(
        branches=[{"at": "det", "to": {"cls": 0.5, "cls2": 0.5}},
                  {"at": "det", "to": {"cls": 1.0}}])),
     "pipelines[0].branches[1].at", "stage 'det' already chooses a branch"),
    ("branch-at-fanout", lambda w: (_fan(w), _pipe(w).update(
        branches=[{"at": "det", "to": {"cls": 1.0}}])),
     "pipelines[0].stages[0]", "fan-out stage 'det' also chooses a branch"),
    ("branch-with-join", lambda w: (_router(w), _pipe(w)["stages"][-1].pop("operator"),
                                    _pipe(w).update(
        branches=[{"at": "det", "to": {"cls": 0.5, "cls2": 0.5}}])),
     "pipelines[0]", "a pipeline with a stage without an operator (a join) cannot also fan out "
     "or branch"),
    ("fanout-source-rate", lambda w: (_fan(w), w["queries"][0].update(
        source_rate_rps={"camera": 5.0})),
     "queries[0].source_rate_rps", "fans out or branches, and sources with rates of their own "
     "are not modelled with those"),
]


@pytest.mark.parametrize(("mutate", "path", "text"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_flow_value_is_one_line(mutate: Callable[[World], object], path: str,
                                    text: str) -> None:
    world = copy.deepcopy(make_tiny_world())
    mutate(world)
    with pytest.raises(SpecError) as info:
        build_index(parse_world(world))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    assert text in message, message


def test_example_plans_simulates_and_is_refused_by_the_runtime() -> None:
    index = build_index(load_world(EXAMPLE))
    result = Planner().plan(index)
    assert all(o.admitted for o in result.outcomes)
    doc = to_plan_file(index, result)
    visits = {(q.name, r.stage): r.visits for q in doc.queries for r in q.route}
    assert visits["lobby", "day"] == pytest.approx(0.7)
    assert visits["gate-2", "cls"] in (pytest.approx(4.7), pytest.approx(6.3))
    sim = simulate(compile_plan(index, doc), arrivals=PoissonArrivals(),
                   settings=SimulationSettings(duration_s=600, seed=0))
    for q, out in zip(sim.queries, doc.queries, strict=True):
        assert out.predicted is not None and q.latency.at_slo_ms is not None
        assert q.latency.at_slo_ms == pytest.approx(out.predicted.latency_ms, rel=0.15), q.name
    with pytest.raises(SpecError, match=r"^plan: queries\[0\]: pipeline 'vehicles' fans out at "
                                        "stage 'det'; the Ray Serve runtime"):
        build_config(index, doc)
