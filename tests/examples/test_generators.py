"""Example generators are deterministic and their committed outputs are valid worlds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import circinus.spec as spec

REPO = Path(__file__).resolve().parents[2]
VISION_SCRIPT = REPO / "scripts/examples/make_edge_cloud_vision.py"
VISION = REPO / "examples/edge-cloud-vision.yaml"


def _load_script(path: Path) -> ModuleType:
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module  # dataclasses resolve annotations through it
    module_spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("script", "committed"), [(VISION_SCRIPT, VISION)], ids=["vision"])
def test_regenerates_committed_file_byte_for_byte(
    tmp_path: Path, script: Path, committed: Path
) -> None:
    out = tmp_path / committed.name
    assert _load_script(script).main(["--out", str(out)]) == 0
    assert out.read_bytes() == committed.read_bytes(), (
        f"{committed.relative_to(REPO)} is stale or hand-edited; re-run "
        f"{script.relative_to(REPO)}"
    )
    spec.load_world(out)


def test_vision_world_has_real_classifier_ladder_and_many_queries() -> None:
    world = spec.load_world(VISION)
    ops = {op.name: op for op in world.operators}
    assert [s.name for s in world.pipelines[0].stages] == ["decode", "detect", "classify"]
    variants = {tuple(p.config.items()) for p in ops["classify"].profiles}
    assert 30 <= len(variants) <= 40
    assert {p.hardware for p in ops["classify"].profiles} == {"i7-12700h", "rtx4090"}
    assert len(world.queries) >= 200
    # End-to-end accuracy is recall x top-1: the loosest and tightest bounds are reachable.
    assert isinstance(ops["detect"].accuracy, list) and isinstance(ops["classify"].accuracy, list)
    recall = [e.value for e in ops["detect"].accuracy]
    top1 = [e.value for e in ops["classify"].accuracy]
    assert all(0.5 < a < 0.9 for a in top1)
    bounds = [q.slo.min_accuracy for q in world.queries if q.slo.min_accuracy is not None]
    assert min(recall) * min(top1) <= min(bounds) and max(bounds) <= max(recall) * max(top1)
