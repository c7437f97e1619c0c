"""Calibration: the probe's latencies become a per-call overhead, written into the world."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from circinus.errors import SpecError
from circinus.runtime.probe import Predicted, identity, overhead_of, residual_of, write_runtime
from circinus.runtime.results import Record
from circinus.spec.load import load_world
from circinus.spec.models import RuntimeSettings

ROOT = Path(__file__).resolve().parents[2]


def test_identity_answers_its_inputs() -> None:
    assert identity({"model": "x"})([1, "a", None]) == [1, "a", None]


def test_overhead_spreads_a_request_over_its_stage_calls() -> None:
    # query q: 3 stages, latencies 30 and 36 ms -> per call mean 11 ms, variance 18 / 3 ms^2;
    # query r: 1 stage, 10 and 14 ms -> 12 ms, variance 8 ms^2; pooled by requests (2 and 2).
    recs = [Record("q", 0.0, 0.030, True), Record("q", 0.1, 0.036, True),
            Record("r", 0.0, 0.010, True), Record("r", 0.1, 0.014, True),
            Record("r", 0.2, math.inf, False)]
    rt = overhead_of(recs, {"q": 3, "r": 1}, note="test")
    assert rt.hop_mean_ms == pytest.approx(11.5)
    assert rt.hop_sd_ms == pytest.approx(math.sqrt((6.0 + 8.0) / 2), rel=1e-4)
    assert rt.samples == 4
    assert rt.note == "test"


def test_no_answer_is_an_error() -> None:
    with pytest.raises(SpecError, match="no request of the probe was answered"):
        overhead_of([Record("q", 0.0, math.inf, False)], {"q": 3})


def test_write_runtime_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    world = tmp_path / "w.yaml"
    world.write_text((ROOT / "examples" / "tiny.yaml").read_text())
    before = world.read_text()
    write_runtime(world, RuntimeSettings(hop_mean_ms=2.5, hop_sd_ms=1.0, samples=10))
    write_runtime(world, RuntimeSettings(hop_mean_ms=3.0, hop_sd_ms=1.5, samples=20))
    after = world.read_text()
    assert after.startswith(before.rstrip("\n"))
    assert after.count("runtime:") == 1
    loaded = load_world(world)
    assert loaded.runtime == RuntimeSettings(hop_mean_ms=3.0, hop_sd_ms=1.5, samples=20)
    assert yaml.safe_load(after)["queries"] == yaml.safe_load(before)["queries"]


def test_write_runtime_json(tmp_path: Path) -> None:
    world = tmp_path / "w.json"
    import json

    world.write_text(json.dumps(yaml.safe_load((ROOT / "examples" / "tiny.yaml").read_text())))
    write_runtime(world, RuntimeSettings(hop_mean_ms=1.0))
    assert load_world(world).runtime == RuntimeSettings(hop_mean_ms=1.0)


def test_residual_adds_what_the_prediction_missed_per_call() -> None:
    # q: 3 stages predicted at 40 ms mean, variance 10 ms^2; measured 60 and 80 ms (mean 70,
    # variance 200): 30 / 3 = 10 ms more per call, (200 - 10) / 3 more variance per call.
    recs = [Record("q", 0.0, 0.060, True), Record("q", 0.1, 0.080, True)]
    base = RuntimeSettings(hop_mean_ms=10.0, hop_sd_ms=5.0)
    rt = residual_of(recs, {"q": Predicted(3, 40.0, 10.0)}, base, note="served")
    assert rt.hop_mean_ms == pytest.approx(20.0)
    assert rt.hop_sd_ms == pytest.approx(math.sqrt(25.0 + 190.0 / 3), rel=1e-4)
    assert rt.samples == 2
    faster = residual_of(recs, {"q": Predicted(3, 200.0, 1e6)}, None)
    assert faster.hop_mean_ms == 0.0 and faster.hop_sd_ms == 0.0  # never below nothing
    # predicted variance 500 > measured 200: 100 ms^2 less per call
    wide = RuntimeSettings(hop_mean_ms=10.0, hop_sd_ms=15.0)
    tighter = residual_of(recs, {"q": Predicted(3, 70.0, 500.0)}, wide)
    assert tighter.hop_mean_ms == pytest.approx(10.0)
    assert tighter.hop_sd_ms == pytest.approx(math.sqrt(225.0 - 100.0), rel=1e-4)
    assert residual_of(recs, {"q": Predicted(3, 70.0, 500.0)}, base).hop_sd_ms == 0.0
    with pytest.raises(SpecError, match="no request of the plan was answered"):
        residual_of([], {"q": Predicted(3, 40.0, 10.0)}, base)
