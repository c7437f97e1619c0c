"""Replica shares: the other allocations a profile lets one replica take, as profiles of their own.

NOTE: a profile may list ``shares`` (:class:`~circinus.spec.models.ReplicaShare`), e.g. 0.25
and 0.5 of a GPU besides its own 1. The planner chooses among them as it chooses among
configurations, so the index gives every share a configuration of its own: an operator with
shares on any profile has configuration keys one element longer than its knobs, that element
being the share's units over the profile's (1.0: the profile as written). Every part of the
planner that looks a profile up by ``(configuration, hardware)`` (search, estimator, capacity
accounting, deployments, simulator, baselines, the oracle) then sees each share as one more
option, with its own units and service times, and nothing else changes. The element is a ratio
rather than the units themselves so that a configuration at its profiles' own allocation has one
key on every hardware class (a placement over a CPU box at 2 cores and a GPU at 1 is one
configuration). An operator without shares keeps its keys as before.

Service times a share does not give scale the profile's by one factor (worked example: a
profile of 1 unit at 8 ms, batch 4 at 20 ms, lists ``{units: 0.5}``: the half replica takes
16 ms and 40 ms; with ``{units: 0.5, mean_ms: 11}`` it takes 11 ms and 20 x 11 / 8 = 27.5 ms).
"""

from __future__ import annotations

import math

from circinus.errors import SpecError
from circinus.spec.models import MAX_SERVICE_MS, MIN_SERVICE_MS, LatencyProfile

OWN = 1.0
"""The share element of a configuration at its profiles' own ``units``."""


def share_ratio(units: float, own_units: float) -> float:
    """The key element of a share of ``units`` on a profile of ``own_units``: their ratio to 12
    significant digits, so that the same ratio written on two hardware classes (0.3 of 0.9,
    0.1 of 0.3) is one key."""
    return float(f"{units / own_units:.12g}")


def share_profiles(path: str, prof: LatencyProfile) -> list[tuple[float, LatencyProfile]]:
    """``(ratio, profile)`` for every share ``prof`` lists, in order, checked.

    Raises:
        SpecError: naming the share's field, e.g. ``operators[0].profiles[1].shares[0].units:
            1.0 is the profile's own units; list only the other shares``.
    """
    out: list[tuple[float, LatencyProfile]] = []
    seen = [prof.units]
    for j, share in enumerate(prof.shares):
        spath = f"{path}.shares[{j}]"
        if any(math.isclose(share.units, u, rel_tol=1e-9) for u in seen):
            what = ("the profile's own units" if math.isclose(share.units, prof.units,
                                                              rel_tol=1e-9)
                    else "listed twice")
            raise SpecError(f"{spath}.units: {share.units:g} is {what}; list each other share "
                            "once")
        seen.append(share.units)
        if share.batch_ms and share.mean_ms is None:
            raise SpecError(f"{spath}.batch_ms: give the share's mean_ms (batch 1) too, or "
                            "leave its times out to scale the profile's")
        unknown = sorted(set(share.batch_ms) - set(prof.batch_ms))
        if unknown:
            raise SpecError(f"{spath}.batch_ms: batch {unknown[0]} is not in the profile's "
                            f"batch_ms ({sorted(prof.batch_ms) or 'none'}); a share offers the "
                            "profile's batch sizes")
        if share.mean_ms is None and share.units > prof.units:
            raise SpecError(f"{spath}.mean_ms: a share larger than the profile's {prof.units:g} "
                            "units needs its measured mean_ms (a bigger share is not faster "
                            "unless measured so)")
        factor = (prof.units / share.units if share.mean_ms is None
                  else share.mean_ms / prof.mean_ms)
        batch = {b: share.batch_ms.get(b, ms * factor) for b, ms in prof.batch_ms.items()}
        mean = prof.mean_ms * factor if share.mean_ms is None else share.mean_ms
        for size, ms in [(1, mean), *sorted(batch.items())]:
            if not MIN_SERVICE_MS <= ms <= MAX_SERVICE_MS:
                # Only a derived time can be out of range (pydantic bounds the given ones).
                field = "units" if share.mean_ms is None else "batch_ms"
                raise SpecError(
                    f"{spath}.{field}: at {share.units:g} units batch {size} would take "
                    f"{ms:g} ms, outside {MIN_SERVICE_MS:g}..{MAX_SERVICE_MS:g} ms; give the "
                    "share's own times or choose another share")
        derived = prof.model_copy(update={
            "units": share.units, "mean_ms": mean, "batch_ms": batch, "shares": [],
            "p90_ms": None if prof.p90_ms is None else prof.p90_ms * mean / prof.mean_ms})
        out.append((share_ratio(share.units, prof.units), derived))
    return out
