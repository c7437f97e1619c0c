"""The probe ``circinus calibrate`` serves: the plan's deployments and routes with every
operator replaced by one that does nothing, so that what a request takes is the engine's own
overhead (handle calls, serialisation, batching and the ingress), and how that overhead becomes
the world's ``runtime`` section.

NOTE: a request of a pipeline of ``k`` stages makes ``k`` stage calls and one call to the
ingress; the probe's latency ``L`` is spread over the ``k`` stage calls: one call's overhead has
mean ``E[L] / k`` and variance ``Var(L) / k`` (as if the calls were independent), so that ``k``
of them add up to the measured mean and variance. Per query these are pooled, weighted by the
query's requests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from circinus.errors import SpecError
from circinus.runtime.results import Record
from circinus.spec.models import RuntimeSettings

IDENTITY = "circinus.runtime.probe:identity"
"""Implementation every operator of the probe runs."""


def identity(config: dict[str, Any]) -> Any:
    """An operator that answers its inputs unchanged, whatever its knobs."""
    return lambda batch: list(batch)


def overhead_of(records: Sequence[Record], stages: Mapping[str, int], *,
                note: str = "") -> RuntimeSettings:
    """The per-call overhead the probe's answered ``records`` show (see module).

    Raises:
        SpecError: no request of the probe was answered.
    """
    means, variances, weights = [], [], []
    for query, k in stages.items():
        lat = np.array([r.latency_s for r in records
                        if r.query == query and math.isfinite(r.latency_s)])
        if len(lat) < 2:
            continue
        means.append(float(lat.mean()) / k)
        variances.append(float(lat.var(ddof=1)) / k)
        weights.append(len(lat))
    if not weights:
        raise SpecError("calibrate: no request of the probe was answered; check the cluster "
                        "(`ray status`) and try a lower rate or a longer --duration")
    w = np.array(weights, dtype=float)
    mean_ms = float(np.dot(means, w) / w.sum()) * 1e3
    sd_ms = math.sqrt(float(np.dot(variances, w) / w.sum())) * 1e3
    return RuntimeSettings(hop_mean_ms=round(mean_ms, 4), hop_sd_ms=round(sd_ms, 4),
                           samples=int(w.sum()), note=note)


_BLOCK = re.compile(r"^runtime:.*\n(?:[ \t]+.*\n|\n)*", re.MULTILINE)
"""The top-level ``runtime`` block of a YAML world: its line and the indented or blank ones
after it."""


def write_runtime(path: Path, runtime: RuntimeSettings) -> None:
    """Put ``runtime`` in the world file at ``path`` as its ``runtime`` section, replacing the
    one there (YAML: the other lines and comments stay as they are; JSON: rewritten)."""
    doc = runtime.model_dump(mode="json")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        import json

        data = json.loads(text)
        data["runtime"] = doc
        new = json.dumps(data, indent=2) + "\n"
    else:
        block = yaml.safe_dump({"runtime": doc}, sort_keys=False, width=100)
        kept = _BLOCK.sub("", text).rstrip("\n")
        new = f"{kept}\n\n{block}"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(path)
