"""What to generate: :class:`GenSpec`, the validated parameters of :func:`circinus.gen.generate`.

Every field has a range; :func:`make_spec` turns plain options (from the CLI or a config file)
into a spec and reports the first bad one as a one-line :class:`~circinus.errors.SpecError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from circinus.errors import SpecError
from circinus.spec.load import format_validation_error

MAX_QUERIES = 1_000_000
MIX_TOLERANCE = 1e-6
"""How far the mix fractions may sum from 1 (rounding in hand-written fractions)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class QueryMix(_Model):
    """Fractions of the queries in each class; they must sum to 1.

    ``alert``, ``monitor`` and ``analytics`` run the vision pipeline (camera -> decode -> detect
    -> classify) with tight, medium and loose latency bounds; ``vqa`` runs JellyBean's visual
    question answering pipeline (image features || speech recognition -> VQA).
    """

    alert: float = Field(default=0.2, ge=0, le=1,
                         description="Vision queries with a tight p99 bound (safety alerts).")
    monitor: float = Field(default=0.35, ge=0, le=1,
                           description="Vision queries with a medium p95 bound (dashboards).")
    analytics: float = Field(default=0.15, ge=0, le=1,
                             description="Vision queries with a loose p95 bound and a high "
                             "accuracy floor (offline-ish counting).")
    vqa: float = Field(default=0.3, ge=0, le=1,
                       description="Visual question answering queries (JellyBean's DAG).")

    @model_validator(mode="after")
    def _sums_to_one(self) -> QueryMix:
        total = self.alert + self.monitor + self.analytics + self.vqa
        if not math.isclose(total, 1.0, abs_tol=MIX_TOLERANCE):
            raise ValueError(f"fractions must sum to 1, got {total:.6g}")
        return self

    def fractions(self) -> tuple[tuple[str, float], ...]:
        """``(class, fraction)`` in the fixed order alert, monitor, analytics, vqa."""
        return (("alert", self.alert), ("monitor", self.monitor),
                ("analytics", self.analytics), ("vqa", self.vqa))


class GenSpec(_Model):
    """Parameters of a generated world; the same spec always gives the same world.

    Capacity left unset grows with ``queries`` (see :mod:`circinus.gen.world`) so that the
    default world has contention but not starvation.
    """

    queries: int = Field(ge=1, le=MAX_QUERIES, description="Number of queries to generate.")
    edge_sites: int | None = Field(
        default=None, ge=1, le=10_000,
        description="Number of edge sites; unset: about sqrt(queries) / 2.5, at least 2. Each "
        "site's boxes are sized to the queries that originate there.",
    )
    edge_boxes: int = Field(
        default=1, ge=1, le=4,
        description="Edge boxes (i7-12700H-class replica-slot pools) per site; the site's "
        "slots are split evenly among them. Each extra box adds placement options to every "
        "stage, so it multiplies the planner's search work (two boxes: about twice the time).",
    )
    cloud_gpus: int | None = Field(
        default=None, ge=1, le=1_000_000,
        description="Units (RTX 4090 GPUs) of the cloud GPU pool; unset: grows with queries.",
    )
    slo_tightness: float = Field(
        default=1.0, ge=0.05, le=10,
        description="Multiplier of every latency bound: < 1 tighter, > 1 looser (0.05-10; the "
        "tightest class bound, 150 ms, becomes 7.5 ms at 0.05).",
    )
    mix: QueryMix = Field(default_factory=QueryMix, description="Fractions of query classes.")
    seed: int = Field(default=0, ge=0, description="Seed of every random draw.")


def make_spec(options: Mapping[str, Any], *,
              names: Mapping[str, str] | None = None) -> GenSpec:
    """Validate ``options`` (GenSpec field -> value) as a :class:`GenSpec`.

    ``names`` maps a field to what the user typed for it (``{"queries": "--queries"}``), so the
    message names the option rather than the field.

    Raises:
        SpecError: naming the first offending field, e.g. ``queries: must be >= 1, got 0``
            (``--queries: must be >= 1, got 0`` with ``names``).
    """
    try:
        return GenSpec.model_validate(dict(options))
    except ValidationError as exc:
        message = format_validation_error(exc, dict(options))
        field, sep, rest = message.partition(":")
        top, dot, inner = field.partition(".")
        if names and sep and top in names:
            message = f"{names[top]}{' ' if dot else ''}{inner}{sep}{rest}"
        raise SpecError(message) from exc
