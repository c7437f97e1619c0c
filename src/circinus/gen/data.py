"""Readers of the bundled real data in ``data/real/`` (one place, shared with the example scripts).

Each reader returns typed records in file order, so anything built from them is deterministic.
The folders and their licences (keep the attribution in whatever you build):

* ``timm-imagenet/`` -- huggingface/pytorch-image-models results, Apache-2.0;
* ``jellybean-vqa/`` -- JellyBean (Wu et al., MLSys 2023), MIT;
* ``azure-llm-inference-2023/`` -- Azure LLM inference trace 2023, CC-BY 4.0; attribution:
  Patel et al., "Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.

Every reader raises :class:`~circinus.errors.SpecError` with a one-line message when a file is
missing or malformed, never a bare ``OSError`` or ``KeyError``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from circinus.errors import SpecError

TIMM = "timm-imagenet"
JELLYBEAN = "jellybean-vqa"
AZURE = "azure-llm-inference-2023"

Request = tuple[float, int, int]
"""One trace request: (seconds since midnight, context tokens, generated tokens)."""


def data_root() -> Path:
    """``<repo>/data/real``, found from this file's location (``src/circinus/gen/data.py``).

    Raises:
        SpecError: if the folder is missing (e.g. the package was installed without the repo).
    """
    root = Path(__file__).resolve().parents[3] / "data" / "real"
    if not root.is_dir():
        raise SpecError(f"{root}: real data folder not found; run from a checkout of the "
                        "circinus repository (the data is not part of the installed package)")
    return root


def data_file(folder: str, name: str) -> Path:
    """The path of ``data/real/<folder>/<name>``, checked to exist."""
    path = data_root() / folder / name
    if not path.is_file():
        raise SpecError(f"{path}: missing from the data bundle; restore it from git")
    return path


def upstream_commit(folder: str) -> str:
    """The upstream commit a data folder was copied from (its README's ``Commit: <sha>`` line)."""
    readme = data_file(folder, "README.md")
    found = re.search(r"^Commit: ([0-9a-f]{40})$", readme.read_text("utf-8"), re.M)
    if found is None:
        raise SpecError(f"{readme}: no 'Commit: <sha>' line; fix the data bundle")
    return found.group(1)


# -- timm ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One real (timm model, input resolution) row of the joined table."""

    model: str
    arch: str
    resolution: int
    top1: float  # percent
    cpu_ms: float  # i7-12700H, batch 1
    gpu_sps: float  # RTX 4090, AMP, large batch


def read_timm_variants(families: re.Pattern[str]) -> list[Variant]:
    """Rows of ``joined_accuracy_latency.csv`` whose arch matches ``families`` and that have
    both an i7-12700H batch-1 latency and an RTX 4090 throughput, in file order."""
    path = data_file(TIMM, "joined_accuracy_latency.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    try:
        return [
            Variant(r["model"], r["arch"], int(r["img_size"]), float(r["top1"]),
                    float(r["cpu_i7_12700h_fp32_step_ms"]),
                    float(r["gpu_rtx4090_amp_samples_per_s"]))
            for r in rows
            if families.match(r["arch"])
            and r["cpu_i7_12700h_fp32_step_ms"] and r["gpu_rtx4090_amp_samples_per_s"]
        ]
    except (KeyError, ValueError) as exc:
        raise SpecError(f"{path}: unexpected column or value ({exc}); fix the data bundle") from exc


def pareto_layers(rows: Sequence[Variant], max_variants: int) -> list[Variant]:
    """One pretrained tag per arch (best top-1), then whole Pareto layers up to ``max_variants``.

    Layer 1 is the front of top-1 vs i7 latency; layer k the front of what is left. Taking
    whole layers keeps a ladder from cheap to expensive plus near-optimal alternatives. The
    result is sorted by i7 latency (then model, resolution).
    """
    best: dict[str, tuple[float, str]] = {}
    for v in rows:
        best[v.arch] = max(best.get(v.arch, (-1.0, "")), (v.top1, v.model))
    pool = sorted((v for v in rows if v.model == best[v.arch][1]),
                  key=lambda v: (v.cpu_ms, -v.top1, v.model, v.resolution))
    chosen: list[Variant] = []
    while pool:
        front: list[Variant] = []
        top = -1.0
        for v in pool:
            if v.top1 > top:
                front.append(v)
                top = v.top1
        if len(chosen) + len(front) > max_variants:
            break
        chosen += front
        pool = [v for v in pool if v not in front]
    return sorted(chosen, key=lambda v: (v.cpu_ms, v.model, v.resolution))


# -- Azure LLM inference trace ---------------------------------------------------------------


def read_azure_trace(service: str = "conv") -> list[Request]:
    """Requests of ``AzureLLMInferenceTrace_<service>.csv`` (``conv`` or ``code``), in order."""
    path = data_file(AZURE, f"AzureLLMInferenceTrace_{service}.csv")
    rows = []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                hh, mm, ss = row["TIMESTAMP"].split()[1].split(":")
                seconds = int(hh) * 3600 + int(mm) * 60 + float(ss)
                rows.append((seconds, int(row["ContextTokens"]), int(row["GeneratedTokens"])))
            except (KeyError, ValueError, IndexError) as exc:
                raise SpecError(f"{path}: malformed row {row!r}; fix the data bundle") from exc
    return rows


# -- JellyBean -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerLatency:
    """A measured per-request latency of one operator variant on one JellyBean worker (ms)."""

    operator: str
    worker: str  # e.g. "workflow-compute-cpu-5"
    variant: str  # "default" for an operator without variants
    mean_ms: float
    p90_ms: float | None  # from execution_profile_p90.csv, when it has the row


def jellybean_rows(name: str) -> list[list[str]]:
    """The rows of a header-less JellyBean CSV, empty cells (trailing commas) dropped."""
    with data_file(JELLYBEAN, name).open(newline="") as fh:
        return [[c for c in row if c != ""] for row in csv.reader(fh) if row]


def jellybean_latencies() -> list[WorkerLatency]:
    """Every (operator, worker, variant) latency of ``execution_profile.csv`` with its p90."""
    try:
        p90 = {(r[0], r[1], r[2]): float(r[3])
               for r in jellybean_rows("execution_profile_p90.csv")}
        return [
            WorkerLatency(op, worker, variant, float(mean), p90.get((op, worker, variant)))
            for op, worker, variant, mean in jellybean_rows("execution_profile.csv")
        ]
    except (ValueError, IndexError) as exc:
        raise SpecError(f"{data_root() / JELLYBEAN}: malformed execution profile ({exc}); "
                        "fix the data bundle") from exc
