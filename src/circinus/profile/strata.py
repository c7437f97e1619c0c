"""Stratified input order: few samples that still cover the kinds of input there are.

NOTE: inputs are grouped by k-means on their features (e.g. image size and brightness, text
length), and the profiling order deals one input from each stratum in turn, strata taken in
proportion to their size. Any prefix of the order is then close to a proportional stratified
sample, so the first rounds already see every kind of input and intervals tighten faster than
with uniform sampling when latency or correctness depends on the kind of input. Deterministic
for a seed.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans


def kmeans_strata(features: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """A stratum label in ``0..k-1`` per row of ``features`` (fewer strata if fewer rows)."""
    rows = features.shape[0]
    if rows == 0:
        return np.zeros(0, dtype=int)
    k = max(1, min(k, rows))
    scaled = (features - features.mean(axis=0)) / np.where(features.std(axis=0) > 0,
                                                           features.std(axis=0), 1.0)
    model = KMeans(n_clusters=k, n_init=10, random_state=seed)
    return np.asarray(model.fit_predict(scaled), dtype=int)


def stratified_order(labels: np.ndarray, *, seed: int = 0) -> list[int]:
    """Input indices, interleaved across strata in proportion to their sizes (see note).

    Example: labels [0, 0, 0, 1] give an order whose first two entries hold one input of each
    stratum.
    """
    rng = np.random.default_rng(seed)
    members = {int(s): list(rng.permutation(np.flatnonzero(labels == s)))
               for s in np.unique(labels)}
    sizes = {s: len(m) for s, m in members.items()}
    taken = dict.fromkeys(members, 0)
    order: list[int] = []
    while len(order) < len(labels):
        # The stratum that has had the smallest share of its inputs so far (ties: lowest id).
        s = min(members, key=lambda s: (taken[s] / sizes[s] if taken[s] < sizes[s]
                                        else np.inf, s))
        order.append(int(members[s][taken[s]]))
        taken[s] += 1
    return order
