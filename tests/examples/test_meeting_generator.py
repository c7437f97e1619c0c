"""The meeting-companion generator is deterministic and its committed output is a valid world."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import circinus.spec as spec

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts/examples/make_meeting_companion.py"
COMMITTED = REPO / "examples/meeting-companion.yaml"


def _load_script() -> ModuleType:
    module_spec = importlib.util.spec_from_file_location("make_meeting_companion", SCRIPT)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module  # dataclasses resolve annotations through it
    module_spec.loader.exec_module(module)
    return module


def test_regenerates_committed_file_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "meeting-companion.yaml"
    assert _load_script().main(["--out", str(out)]) == 0
    assert out.read_bytes() == COMMITTED.read_bytes(), (
        "examples/meeting-companion.yaml is stale or hand-edited; re-run "
        "scripts/examples/make_meeting_companion.py"
    )


def test_committed_world_loads_with_real_rates_and_token_scales() -> None:
    world = spec.load_world(COMMITTED)
    assert 60 <= len(world.queries) <= 150
    total_rps = sum(q.rate_rps for q in world.queries)
    # The sessions share the conversation trace, whose mean rate is ~5.5 req/s.
    assert 5.0 < total_rps < 6.5
    assert all(set(q.work_scale) == {"llm", "tts"} for q in world.queries)
    assert {s.name for s in world.pipelines[0].stages} == {"asr", "llm", "tts"}
