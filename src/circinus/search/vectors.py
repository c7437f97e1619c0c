"""Accuracy-feasible configuration vectors, computed once per (pipeline, accuracy floor).

Accuracy depends on configurations only, never on placement, so every search filters the
configuration vectors of a pipeline by the accuracy SLO before placing anything, and every query
of the pipeline with the same floor shares the result. Circinus's search also drops
configurations dominated on every hardware class (``prune_dominated``, valid under monotone
accuracy rules); the baselines, which reproduce planners without that trick, do not.
"""

from __future__ import annotations

import itertools

from circinus.estimate.base import EPS, BaseEstimator
from circinus.search.dominance import undominated_configs
from circinus.spec.index import ConfigKey

Vector = tuple[ConfigKey, ...]
"""One configuration per stage, in the pipeline's topological order."""

_MONOTONE = ("product", "min", "mean", "none")


class VectorCache:
    """Accuracy-feasible vectors and the best accuracy, per (pipeline, accuracy floor)."""

    def __init__(self, estimator: BaseEstimator, *, prune_dominated: bool = False) -> None:
        self.estimator = estimator
        self.prune_dominated = prune_dominated
        self._cache: dict[tuple[str, float | None], tuple[list[Vector], float | None]] = {}

    def get(self, pipeline: str, floor: float | None) -> tuple[list[Vector], float | None]:
        """The vectors of ``pipeline`` reaching accuracy ``floor`` (all when ``None``), in
        lexicographic stage order, and the best accuracy of any vector (``None``: unknown)."""
        key = (pipeline, floor)
        if key not in self._cache:
            self._cache[key] = self._compute(pipeline, floor)
        return self._cache[key]

    def _compute(self, pipeline: str, floor: float | None) -> tuple[list[Vector], float | None]:
        index = self.estimator.index
        pipe = index.pipelines[pipeline]
        ops = [index.operators[pipe.operator_of[s]] for s in pipe.order]
        if self.prune_dominated and pipe.spec.accuracy.rule in _MONOTONE:
            choices = [undominated_configs(op) for op in ops]
        else:
            choices = [op.configs for op in ops]
        vectors: list[Vector] = []
        best: float | None = None
        for combo in itertools.product(*choices):
            acc = self.estimator.accuracy(pipeline, dict(zip(pipe.order, combo, strict=True)))
            if acc is not None:
                best = acc if best is None else max(best, acc)
            if floor is None or (acc is not None and acc >= floor - EPS):
                vectors.append(combo)
        return vectors, best
