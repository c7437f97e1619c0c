"""What a world leaves unknown: the pipelines that must be profiled before they can be planned.

Kept apart from :mod:`circinus.profile` (which re-exports these) so that planning a world with
nothing to measure never loads the profiler and its executors.
"""

from __future__ import annotations

import itertools

from circinus.spec.models import Operator, World


def _needs_latency(world: World, op: Operator) -> bool:
    if op.implementation is None:
        return False
    hw = world.profiling.hardware
    have = {tuple(sorted(p.config.items(), key=str)) for p in op.profiles if p.hardware == hw}
    knobs = list(op.knobs)
    return any(tuple(sorted(zip(knobs, combo, strict=True), key=str)) not in have
               for combo in itertools.product(*(op.knobs[k] for k in knobs)))


def pipelines_to_measure(world: World) -> list[str]:
    """Pipelines that have an unknown estimate: a ``measured`` accuracy, or an executable
    operator without a latency profile on the profiling hardware."""
    ops = {op.name: op for op in world.operators}
    out = []
    for pipe in world.pipelines:
        stage_ops = [ops[s.operator] for s in pipe.stages if s.operator is not None]
        executable = all(op.implementation is not None for op in stage_ops)
        if pipe.accuracy.rule == "measured" or (
                executable and any(_needs_latency(world, op) for op in stage_ops)):
            out.append(pipe.name)
    return out


def needs_profiling(world: World) -> bool:
    """Whether planning ``world`` needs measurements first."""
    return bool(pipelines_to_measure(world))
