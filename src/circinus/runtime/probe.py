"""Calibration: what serving adds to every stage call, as the world's ``runtime`` section.

``circinus calibrate`` measures it one of two ways. The *probe* (the default) serves the plan's
deployments and routes with every operator replaced by one that does nothing, so that what a
request takes is the engine's own overhead (handle calls, serialisation, batching and the
ingress): :func:`overhead_of`. ``--served`` serves the plan itself and takes what its requests
took beyond the plan's prediction: :func:`residual_of`.

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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Predicted:
    """What the plan predicted for one query: its stage count and latency moments (ms)."""

    stages: int
    mean_ms: float
    var_ms2: float


def residual_of(records: Sequence[Record], predicted: Mapping[str, Predicted],
                base: RuntimeSettings | None, *, note: str = "") -> RuntimeSettings:
    """The per-call overhead that makes the plan's predictions match what serving it measured.

    NOTE: the plan was predicted with ``base`` (the world's runtime section, or none); what the
    served requests of query ``q`` took beyond its predicted mean, spread over its ``k`` stage
    calls, is added to ``base``'s mean, and what their variance differs from the predicted
    variance by, spread the same way, to its variance. Queries are pooled by their answered
    requests. It folds into the per-call figure whatever the model misses on this cluster at
    its load (the engine's overhead, and operators slower than their profiles when the machine
    is busy); a prediction above what was measured lowers it, never below zero.

    Example: base 10 ms (sd 5), a 3-stage query predicted at 40 ms mean measured at 70 ms: the
    per-call mean becomes 10 + 30 / 3 = 20 ms.

    Raises:
        SpecError: no request was answered.
    """
    extra_mean, extra_var, weights = [], [], []
    for query, pred in predicted.items():
        lat = np.array([r.latency_s for r in records
                        if r.query == query and math.isfinite(r.latency_s)]) * 1e3
        if len(lat) < 2:
            continue
        extra_mean.append((float(lat.mean()) - pred.mean_ms) / pred.stages)
        extra_var.append((float(lat.var(ddof=1)) - pred.var_ms2) / pred.stages)
        weights.append(len(lat))
    if not weights:
        raise SpecError("calibrate: no request of the plan was answered; check the cluster "
                        "(`ray status`) and try a longer --duration")
    w = np.array(weights, dtype=float)
    mean0 = 0.0 if base is None else base.hop_mean_ms
    var0 = 0.0 if base is None else base.hop_sd_ms ** 2
    mean_ms = max(0.0, mean0 + float(np.dot(extra_mean, w) / w.sum()))
    sd_ms = math.sqrt(max(0.0, var0 + float(np.dot(extra_var, w) / w.sum())))
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
