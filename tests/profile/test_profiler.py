"""The profiling loop: stop rules, resume from the store, agreement with full profiling."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from circinus.profile import SqlProfileStore, wilson_interval
from circinus.profile.executor import BaseExecutor, Outcome, Prefix, Vector
from circinus.profile.profiler import Profiler, latency_tolerance_ms
from circinus.spec.models import ProfilingSettings


class FakeExecutor(BaseExecutor):
    """Vector ``(k,)`` gets input ``i`` right iff ``u_i < p_k``; stage ``s`` takes
    ``base_ms[k]`` plus a deterministic wobble."""

    def __init__(self, accuracy: Sequence[float], *, inputs: int = 2000) -> None:
        self.pipeline = "fake"
        self.stages = ("only",)
        self.inputs = inputs
        rng = np.random.default_rng(7)
        self.u = rng.random(inputs)
        self.features = self.u.reshape(-1, 1) + rng.normal(0, 0.2, (inputs, 1))
        self.accuracy = list(accuracy)
        self.runs: list[tuple[Vector, int]] = []

    def run(self, vector: Vector, inputs: Sequence[int]) -> list[Outcome]:
        k = int(vector[0][0])
        out = []
        for i in inputs:
            self.runs.append((vector, i))
            self.stage_calls += 1
            out.append(Outcome(i, bool(self.u[i] < self.accuracy[k]),
                               {"only": 10.0 + k + 0.5 * math.sin(i)}))
        return out

    def accuracy_key(self, vector: Vector) -> str:
        return f"accuracy/fake/{vector[0][0]}"

    def latency_key(self, stage: str, prefix: Prefix) -> str:
        return f"latency/fake/{stage}/{prefix[-1][1][0]}"

    def exact(self, k: int) -> float:
        return float(np.mean(self.u < self.accuracy[k]))


ACCURACY = [0.60, 0.80, 0.905, 0.97]
VECTORS: list[Vector] = [((k,),) for k in range(len(ACCURACY))]
SETTINGS = ProfilingSettings(hardware="cpu", min_samples=32, round_size=16)


def _store(tmp_path: Path, name: str = "p.db") -> SqlProfileStore:
    return SqlProfileStore(str(tmp_path / name))


def test_far_from_every_floor_stops_early_near_a_floor_measures_more(tmp_path: Path) -> None:
    ex = FakeExecutor(ACCURACY)
    prof = Profiler(_store(tmp_path), SETTINGS).profile(ex, VECTORS, floors=[0.9])
    n = {v[0][0]: arm.n for v, arm in prof.accuracy.items()}
    assert n[0] < 100 and n[3] < 300  # 0.60 and 0.97 are far from 0.9
    assert n[2] > 4 * n[0]  # 0.905 is close to 0.9: it needs many more inputs
    assert all(arm.verdict != "undecided" for arm in prof.accuracy.values())
    assert prof.samples < 0.5 * ex.inputs * len(VECTORS)


def test_decisions_agree_with_full_profiling(tmp_path: Path) -> None:
    floors = [0.75, 0.9, 0.95]
    precise = Profiler(_store(tmp_path, "a.db"), SETTINGS).profile(
        FakeExecutor(ACCURACY), VECTORS, floors)
    full_ex = FakeExecutor(ACCURACY)
    full = Profiler(_store(tmp_path, "b.db"), SETTINGS, full=True).profile(
        full_ex, VECTORS, floors)
    assert full.samples == full_ex.inputs * len(VECTORS)
    for v in VECTORS:
        exact = full_ex.exact(v[0][0])
        assert full.accuracy[v].mean == pytest.approx(exact)
        for f in floors:
            assert (precise.accuracy[v].mean >= f) == (exact >= f), (v, f)


def test_latency_is_measured_to_the_precision_asked(tmp_path: Path) -> None:
    settings = SETTINGS.model_copy(update={"latency_precision": 0.01})
    prof = Profiler(_store(tmp_path), settings).profile(FakeExecutor(ACCURACY), VECTORS, [])
    for arm in prof.latency.values():
        st = arm.stats()
        assert arm.decided
        assert st.mean == pytest.approx(10.0 + arm.prefix[-1][1][0], abs=0.1)


def test_a_rerun_reads_the_store_and_measures_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = Profiler(store, SETTINGS).profile(FakeExecutor(ACCURACY), VECTORS, [0.9])
    ex = FakeExecutor(ACCURACY)
    again = Profiler(store, SETTINGS).profile(ex, VECTORS, [0.9])
    assert ex.runs == [] and again.samples == 0
    assert again.reused == sum(a.n for a in first.accuracy.values())
    assert {v: a.mean for v, a in again.accuracy.items()} == {
        v: a.mean for v, a in first.accuracy.items()}


def test_an_interrupted_run_resumes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ex = FakeExecutor(ACCURACY)
    partial = Profiler(store, SETTINGS, full=True).profile(ex, VECTORS[:1], [0.9])
    resumed_ex = FakeExecutor(ACCURACY)
    Profiler(store, SETTINGS, full=True).profile(resumed_ex, VECTORS, [0.9])
    assert partial.samples == ex.inputs
    assert not any(v == VECTORS[0] for v, _ in resumed_ex.runs)  # not paid twice
    assert len(resumed_ex.runs) == 3 * ex.inputs


def test_dominated_vector_stops_without_a_floor_decision(tmp_path: Path) -> None:
    # Vector 1 is slower than vector 0 (11 vs 10 ms) and much less accurate: dominated.
    acc = [0.95, 0.30]
    vectors: list[Vector] = [((0,),), ((1,),)]

    def no_costlier(u: Vector, v: Vector, latency: object) -> bool:
        return u[0][0] <= v[0][0]

    prof = Profiler(_store(tmp_path), SETTINGS, no_costlier=no_costlier).profile(
        FakeExecutor(acc), vectors, floors=[0.3])
    assert prof.accuracy[vectors[1]].verdict == "dominated"
    assert prof.accuracy[vectors[1]].n < 100


def test_wilson_finite_population_shrinks_to_the_point() -> None:
    iv = wilson_interval(90, 100, 0.01, population=100)
    assert iv.low == pytest.approx(0.9) and iv.high == pytest.approx(0.9)
    wide, narrow = wilson_interval(90, 100, 0.01), wilson_interval(90, 100, 0.01, population=200)
    assert narrow.width < wide.width


def test_latency_tolerance_by_hand() -> None:
    # Budget 30 ms over 3 stages = 10 ms; 1/rate = 1000/200 = 5 ms; the smaller (5) wins.
    assert latency_tolerance_ms(0.05, 3, [(30.0, 200.0), (None, 50.0)]) == pytest.approx(0.25)
    assert latency_tolerance_ms(0.05, 3, []) == 0.0
