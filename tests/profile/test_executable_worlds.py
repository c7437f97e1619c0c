"""Executable worlds end to end: measured for real, planned, and surviving a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from circinus.planner import Planner
from circinus.profile import SqlProfileStore, measure_world, needs_profiling
from circinus.spec.load import parse_world

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def small_digits(**profiling: Any) -> dict[str, Any]:
    """The digits example with two resolutions and two models (fast to train and run)."""
    data = yaml.safe_load((EXAMPLES / "digits-edge-cloud.yaml").read_text())
    ops = {op["name"]: op for op in data["operators"]}
    ops["preprocess"]["knobs"]["resolution"] = [4, 8]
    ops["preprocess"]["output_kb"] = [e for e in ops["preprocess"]["output_kb"]
                                      if e["when"].get("resolution") != 6]
    ops["classify"]["knobs"]["model"] = ["logreg", "mlp-small"]
    data["profiling"].update(profiling)
    return data


@pytest.fixture(autouse=True)
def _model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                 ) -> None:
    monkeypatch.setenv("CIRCINUS_CACHE", str(tmp_path_factory.getbasetemp() / "models"))


def test_an_executable_world_is_measured_then_planned(tmp_path: Path) -> None:
    # A loose latency precision: a latency decided early can be undecided again once later
    # runs of vectors sharing its prefix add samples, and a slow outlier on a loaded machine
    # widens its interval; a re-run then rightly measures more. Reuse is what is tested here.
    world = parse_world(small_digits(max_inputs=600, latency_precision=0.9), origin="digits")
    assert needs_profiling(world)
    store = SqlProfileStore(str(tmp_path / "p.db"))
    measured = measure_world(world, store)
    assert not needs_profiling(measured.world)
    table = measured.world.pipelines[0].accuracy
    assert table.rule == "table" and len(table.table) == 4
    assert all(0.5 < row.accuracy <= 1 for row in table.table)
    profiles = [p for op in measured.world.operators for p in op.profiles]
    assert len(profiles) == 2 + 2 + 1 and all(p.hardware == "local-cpu" for p in profiles)
    assert measured.samples < 4 * 600  # stopped early somewhere
    # The planner measures by itself (from the same store: nothing is measured again).
    result = Planner(store=str(tmp_path / "p.db")).plan(world)
    assert result.admitted > 0
    again = measure_world(world, store)
    assert again.samples == 0 and again.reused >= measured.samples


@pytest.mark.integration
def test_sigkill_mid_run_keeps_every_committed_sample_and_a_rerun_resumes(
        tmp_path: Path) -> None:
    world_file = tmp_path / "digits.yaml"
    world_file.write_text(yaml.safe_dump(small_digits(round_size=8, arms_per_round=1,
                                                      latency_precision=0.01)))
    db = tmp_path / "p.db"
    env = {**os.environ, "CIRCINUS_CACHE": os.environ["CIRCINUS_CACHE"]}
    proc = subprocess.Popen([sys.executable, "-m", "circinus", "profile", str(world_file),
                             "--store", str(db), "-q"], env=env)
    store = SqlProfileStore(str(db))
    deadline = time.monotonic() + 120
    try:
        while sum(store.counts("accuracy/").values()) < 200:
            assert proc.poll() is None, "the profiler finished before it could be killed"
            assert time.monotonic() < deadline, "no samples committed in time"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    committed = {key: {s.sample_id: s.value for s in store.samples(key)}
                 for key in store.counts()}
    assert sum(map(len, committed.values())) >= 200
    world = parse_world(yaml.safe_load(world_file.read_text()), origin="digits")
    resumed = measure_world(world, store)
    assert resumed.reused >= sum(len(v) for k, v in committed.items()
                                 if k.startswith("accuracy/"))
    for key, values in committed.items():  # nothing lost, nothing overwritten
        now = {s.sample_id: s.value for s in store.samples(key)}
        assert all(now[i] == v for i, v in values.items())
    # It resumed instead of starting over: starting over would run every (vector, input)
    # again, at least as many runs as there are accuracy samples in the end.
    final = sum(store.counts("accuracy/").values())
    assert resumed.samples <= final - 200
    fresh = measure_world(world, SqlProfileStore(str(tmp_path / "fresh.db")))
    floors = {q.slo.min_accuracy for q in world.queries}

    def verdicts(measured: Any) -> set[tuple[str, float, bool]]:
        return {(str(r.config), f, r.accuracy >= f)
                for r in measured.world.pipelines[0].accuracy.table for f in floors}

    assert verdicts(resumed) == verdicts(fresh)  # same decisions as an uninterrupted run
