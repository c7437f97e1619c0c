"""Fixtures of the runtime's tests (see :mod:`digitsworld`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from digitsworld import digits_world, planned, write_world

from circinus.plan.file import PlanFile
from circinus.spec.index import WorldIndex


@pytest.fixture
def digits_plan(tmp_path: Path) -> tuple[Path, WorldIndex, PlanFile]:
    path = write_world(tmp_path, digits_world())
    index, plan = planned(path)
    return path, index, plan
