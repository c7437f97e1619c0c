"""The binding obstacle of a rejected query: an SLO objective, or the resource it lacks most."""

from __future__ import annotations

from collections.abc import Sequence

from circinus.search.base import Candidate
from circinus.whynot.records import Binding
from circinus.whynot.residual import Residual

Resource = tuple[str, str]
"""``("device", name)``, ``("memory", device)`` or ``("link", "src->dst")``."""

_PREFIXES: dict[str, Binding] = {
    "accuracy": "accuracy", "search": "accuracy", "latency": "latency", "cost": "cost",
    "placement": "placement", "capacity": "capacity", "selection": "selection",
}


def binding_of(reason: str) -> Binding:
    """The obstacle a reason string names by its prefix (``"latency: best p95 ..."`` ->
    ``latency``). ``search:`` (a sampling search found no plan reaching the accuracy bound)
    counts as ``accuracy``; an unknown prefix as ``selection``."""
    return _PREFIXES.get(reason.partition(":")[0].strip(), "selection")


def scarcest(candidates: Sequence[Candidate], residual: Residual,
             pipeline: str | None = None) -> tuple[Resource, int] | None:
    """The resource the most of ``candidates`` do not fit into, given what the admitted
    queries leave (``residual``; with shared deployments, in the whole replicas a candidate
    would add), with that number of candidates; ``None`` when every candidate fits.
    ``pipeline`` is their query's (see :meth:`Residual.lacking`).

    Ties go to the greatest ``(kind, name)``, so the answer is deterministic. E.g. three
    candidates of which two need more of ``("device", "box")`` than is left, one more of
    ``("link", "a->b")``: ``(("device", "box"), 2)``.
    """
    blocked: dict[Resource, int] = {}
    for rows in residual.lacking(candidates, pipeline):
        for res in rows:
            blocked[res] = blocked.get(res, 0) + 1
    if not blocked:
        return None
    return max(blocked.items(), key=lambda kv: (kv[1], kv[0]))
