"""Configurations that can never be part of a best plan, found from the profiles alone.

NOTE: configuration ``a`` of an operator is *dominated* by ``b`` when, on every hardware class
``a`` is profiled on, ``b`` is profiled too and is no slower at any batch size ``a`` offers, no
more variable, needs no more units or memory, emits no bigger messages (nor more objects,
with a no more variable count, where the operator fans out), and ``b``'s own accuracy
is at least ``a``'s. Under a monotone accuracy rule (product, min, mean of per-operator
accuracies) swapping ``a`` for ``b`` in any plan then loses nothing on latency, accuracy, cost
or resources, so searching ``a`` is wasted work. Ties keep the first configuration listed.
Under a table rule nothing is pruned (the table need not be monotone).
"""

from __future__ import annotations

from circinus.estimate.analytic import service_cv
from circinus.estimate.base import EPS
from circinus.spec.index import ConfigKey, OperatorIndex
from circinus.spec.models import LatencyProfile


def _no_worse(b: LatencyProfile, a: LatencyProfile) -> bool:
    if b.mean_ms > a.mean_ms + EPS or b.units > a.units + EPS or b.memory_gb > a.memory_gb + EPS:
        return False
    if service_cv(b) > service_cv(a) + EPS:
        return False
    return all(size in b.batch_ms and b.batch_ms[size] <= ms + EPS
               for size, ms in a.batch_ms.items())


def dominates(op: OperatorIndex, b: ConfigKey, a: ConfigKey) -> bool:
    """Whether configuration ``b`` dominates ``a`` (see module note)."""
    if op.accuracy.get(b, 0.0) < op.accuracy.get(a, 0.0) - EPS:
        return False
    if op.output_kb[b] > op.output_kb[a] + EPS:
        return False
    if op.fanout:  # more objects, or more variable counts, load the stages after it more
        (mb, cvb), (ma, cva) = op.fanout[b], op.fanout[a]
        if mb > ma + EPS or mb * cvb > ma * cva + EPS:
            return False
    for (config, hw), prof in op.profiles.items():
        if config != a:
            continue
        other = op.profiles.get((b, hw))
        if other is None or not _no_worse(other, prof):
            return False
    return True


def undominated_configs(op: OperatorIndex) -> tuple[ConfigKey, ...]:
    """The configurations of ``op`` that no other configuration dominates, in order.

    Only meaningful when the pipeline composes per-operator accuracies monotonically; the
    caller decides that.
    """
    keep: list[ConfigKey] = []
    for i, a in enumerate(op.configs):
        beaten = False
        for j, b in enumerate(op.configs):
            if i == j or not dominates(op, b, a):
                continue
            # Mutual domination means equal on everything: keep the first listed only.
            if not dominates(op, a, b) or j < i:
                beaten = True
                break
        if not beaten:
            keep.append(a)
    return tuple(keep)
