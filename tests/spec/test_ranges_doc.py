"""docs/world-format.md lists the range of every bounded field of the world and of the hardware
catalog (``circinus capacity --catalog``), as the models check them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from circinus.spec.catalog import Catalog
from circinus.spec.load import field_range
from circinus.spec.models import World

DOC = Path(__file__).resolve().parents[2] / "docs" / "world-format.md"


def _bounded(root: type[BaseModel], model: Any, path: tuple[str, ...] = ()
             ) -> list[tuple[str, ...]]:
    from circinus.spec.load import _inner_model

    out = []
    for name, info in model.model_fields.items():
        if field_range((*path, name), root):
            out.append((*path, name))
        inner = _inner_model(info.annotation)
        if inner is not None and inner is not model:
            out += _bounded(root, inner, (*path, name))
    return out


@pytest.mark.parametrize(("root", "least"), [(World, 30), (Catalog, 3)])
def test_every_bounded_field_is_in_the_ranges_table(root: type[BaseModel], least: int) -> None:
    table = DOC.read_text(encoding="utf-8").split("## Ranges and limits", 1)[1].split("\n\n")[2]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    fields = _bounded(root, root)
    assert len(fields) >= least
    for path in fields:
        bounds = [f"{sign} {value:.12f}".rstrip("0").rstrip(".") for sign, value in
                  field_range(path, root)]
        matching = [r for r in rows if f"`{path[-1]}`" in r
                    and all(re.search(re.escape(b) + r"(?![\d.])", r) for b in bounds)]
        assert matching, f"{'.'.join(path)}: no row with {bounds}"
