"""The precision-aware profiler: measure candidates in rounds until each decision is certain.

A *candidate* is a configuration vector of a pipeline. Two kinds of estimate are measured:

* its **accuracy** (correct or not, per input; Wilson interval), which decides whether the
  vector meets the accuracy floor of each query of the pipeline;
* the **latency** of each stage call (ms per input; Student-t interval on the mean), per stage
  and *prefix* (the configurations upstream, which shape the stage's input).

NOTE: profiling only has to be as precise as the decisions it feeds (DESIGN §2B). An accuracy
is decided once its interval holds none of the pipeline's accuracy floors (every query's
feasibility is then known) or the vector is surely dominated (a vector that is no costlier on
any stage is surely more accurate, so no plan would pick this one); a latency once its interval
is within ``latency_precision`` of its mean. Inputs are taken in a stratified order (k-means
strata on the dataset's features), so each prefix of the order covers every kind of input.
Each round, the undecided candidates with the highest XRPO priority (expected shrinkage of the
interval plus an exploration bonus, :mod:`~circinus.profile.allocate`) get ``round_size`` more
inputs. Every sample is committed to the store as soon as its round ends, and samples already
in the store are read instead of measured, so a rerun after a crash resumes where the crashed
run stopped, and nothing is ever measured twice.

*Full* profiling (``full=True``, the reference the bench compares with) runs every candidate on
every input, without stop rules and without prefix reuse.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field

import numpy as np

from circinus.profile.allocate import Arm, allocate
from circinus.profile.executor import BaseExecutor, Outcome, Prefix, Vector
from circinus.profile.stats import Interval, RunningStats, t_interval, wilson_interval
from circinus.profile.stop import DominatedStopRule, Target
from circinus.profile.store import BaseProfileStore, Sample
from circinus.profile.strata import kmeans_strata, stratified_order
from circinus.spec.index import ConfigKey
from circinus.spec.models import ProfilingSettings


@dataclass
class AccuracyArm:
    """The correctness samples of one vector."""

    vector: Vector
    key: str
    outcomes: dict[int, bool] = field(default_factory=dict)
    verdict: str = "undecided"
    """undecided; decided (no floor in its interval); dominated (a vector no costlier on any
    stage is surely more accurate); covered (for each floor in its interval, a vector no
    costlier surely meets it); or exhausted (measured on every input)."""

    @property
    def n(self) -> int:
        return len(self.outcomes)

    @property
    def mean(self) -> float:
        return sum(self.outcomes.values()) / self.n if self.n else math.nan

    population: int | None = None

    def interval(self, alpha: float) -> Interval:
        return wilson_interval(sum(self.outcomes.values()), self.n, alpha, self.population)


@dataclass
class LatencyArm:
    """The latency samples of one stage after one prefix."""

    stage: str
    prefix: Prefix
    key: str
    values: dict[int, float] = field(default_factory=dict)
    decided: bool = False
    _stats: RunningStats | None = None

    def add(self, input_id: int, ms: float) -> None:
        self.values[input_id] = ms
        self._stats = None

    @property
    def n(self) -> int:
        return len(self.values)

    def stats(self) -> RunningStats:
        """Statistics of the samples without interference outliers.

        NOTE: a call that the machine preempted (another process, a page fault, a collection)
        can take a thousand times the operator's own time, and one such sample among
        thousands moves a sub-millisecond mean by half. Such a pause belongs to the profiling
        machine's load, not to the operator; samples beyond Tukey's far fence
        ``Q3 + 5 IQR`` are left out (an exponential service time passes it with probability
        0.1 %, so genuine tails stay).
        """
        if self._stats is None:
            arr = np.fromiter(self.values.values(), dtype=float, count=len(self.values))
            if arr.size >= 8:
                q1, q3 = np.percentile(arr, [25, 75])
                arr = arr[arr <= q3 + 5.0 * (q3 - q1)]
            mean = float(arr.mean()) if arr.size else 0.0
            self._stats = RunningStats(int(arr.size), mean, float(((arr - mean) ** 2).sum()))
        return self._stats


@dataclass(frozen=True)
class Progress:
    """Where a profiling run stands (given to the progress callback after every round)."""

    pipeline: str
    decided: int
    total: int
    samples: int


@dataclass
class PipelineProfile:
    """What profiling one pipeline measured."""

    pipeline: str
    accuracy: dict[Vector, AccuracyArm]
    latency: dict[tuple[str, Prefix], LatencyArm]
    samples: int = 0
    """Runs of a vector on one input made by this call (the profiling work paid now)."""
    reused: int = 0
    """Samples found in the store instead of being measured."""
    stage_calls: int = 0
    wall_seconds: float = 0.0
    scale: float = 1.0
    """Accuracies are written back times this (100 for a world that states percentages)."""

    def latency_ms(self, stage: str, config: object, *, shift: float = 0.0,
                   alpha: float = 0.01) -> list[tuple[float, float]]:
        """(mean, cv) of every measured prefix of ``stage`` whose own configuration is
        ``config``; with ``shift`` = -1 or +1, the mean is moved to the low or high end of its
        interval."""
        out = []
        for (s, prefix), arm in self.latency.items():
            if s == stage and prefix[-1][1] == config and arm.n:
                st = arm.stats()
                mean = st.mean
                if shift and st.n > 1:
                    mean = max(mean + shift * t_interval(st, alpha).width / 2, 1e-6)
                out.append((mean, st.std / st.mean if st.mean > 0 and st.n > 1 else 0.0))
        return out


class Profiler:
    """Profiles the vectors of a pipeline through an executor, writing to ``store``.

    Args:
        store: where samples are read from and committed to.
        settings: rounds, confidence, precision (the world's ``profiling`` section).
        full: measure every vector on every input (no stop rule), the reference.
        seed: seed of the strata and of the input order.
        progress: called after every round.
        no_costlier: ``no_costlier(u, v, latency)`` says whether vector ``u`` costs no more than
            ``v`` on every stage (given the current latency means); enables the dominance stop.
    """

    def __init__(self, store: BaseProfileStore, settings: ProfilingSettings, *,
                 full: bool = False, seed: int = 0,
                 progress: Callable[[Progress], None] | None = None,
                 no_costlier: Callable[[Vector, Vector, Callable[[str, Vector], float | None]],
                                       bool] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.full = full
        self.seed = seed
        self.progress = progress
        self.no_costlier = no_costlier
        self.alpha = 1.0 - settings.confidence
        self._tolerance = 0.0

    # ----------------------------------------------------------------------------- set-up
    def _order(self, executor: BaseExecutor) -> list[int]:
        if executor.inputs <= 1:
            return list(range(executor.inputs))
        labels = kmeans_strata(executor.features, self.settings.strata, seed=self.seed)
        return stratified_order(labels, seed=self.seed)

    def _arms(self, executor: BaseExecutor, vectors: Sequence[Vector]
              ) -> tuple[dict[Vector, AccuracyArm], dict[tuple[str, Prefix], LatencyArm], int]:
        acc = {v: AccuracyArm(v, executor.accuracy_key(v), population=executor.inputs)
               for v in vectors}
        lat: dict[tuple[str, Prefix], LatencyArm] = {}
        for v in vectors:
            for stage in executor.stages:
                prefix = executor.prefix(stage, v)
                key = executor.latency_key(stage, prefix)
                if key is not None and (stage, prefix) not in lat:
                    lat[stage, prefix] = LatencyArm(stage, prefix, key)
        reused = 0
        for a in acc.values():
            for s in self.store.samples(a.key):
                if s.sample_id < executor.inputs:
                    a.outcomes[s.sample_id] = s.value >= 0.5
                    reused += 1
        for arm in lat.values():
            for s in self.store.samples(arm.key):
                if s.sample_id < executor.inputs:
                    arm.add(s.sample_id, s.value)
        return acc, lat, reused

    # ------------------------------------------------------------------------------ run
    def profile(self, executor: BaseExecutor, vectors: Sequence[Vector],
                floors: Sequence[float], *, latency_tolerance_ms: float = 0.0
                ) -> PipelineProfile:
        """Measure ``vectors`` until every decision about them is certain (or every input is
        used); ``floors`` are the accuracy floors of the pipeline's queries. A latency is also
        decided once its half-width is at most ``latency_tolerance_ms`` (an error the
        pipeline's decisions cannot see, see :func:`latency_tolerance_ms`)."""
        self._tolerance = latency_tolerance_ms
        start = time.perf_counter()
        calls_before = executor.stage_calls
        acc, lat, reused = self._arms(executor, vectors)
        result = PipelineProfile(executor.pipeline, acc, lat, reused=reused)
        order = self._order(executor)
        floors = sorted(set(floors))
        if self.full:
            for v in vectors:
                missing = [i for i in order if i not in acc[v].outcomes]
                for chunk in _chunks(missing, self.settings.round_size):
                    self._record(executor, v, chunk, result)
                self._report(result)
        else:
            self._precise(executor, vectors, floors, order, result)
        for arm in acc.values():
            if arm.verdict == "undecided":
                arm.verdict = "exhausted"
        result.stage_calls = executor.stage_calls - calls_before
        result.wall_seconds = time.perf_counter() - start
        return result

    def _precise(self, executor: BaseExecutor, vectors: Sequence[Vector],
                 floors: list[float], order: list[int], result: PipelineProfile) -> None:
        s = self.settings
        acc, lat = result.accuracy, result.latency
        while True:
            self._decide(executor, floors, result)
            self._report(result)
            open_acc = [a for a in acc.values() if a.verdict == "undecided"]
            if open_acc:
                arms = [Arm(a.key, a.n, a.interval(self.alpha).width / 2 if a.n else math.inf)
                        for a in open_acc]
                # Many open candidates: a quarter of them per round, so that the rounds (and
                # the decisions recomputed after each) stay few.
                slots = max(s.arms_per_round, len(open_acc) // 4)
                chosen = set(allocate(arms, slots=slots, round_size=s.round_size,
                                      exploration=s.exploration))
                for a in open_acc:
                    if a.key in chosen:
                        # Rounds grow with what an arm has (by an eighth): an arm that needs
                        # thousands of inputs takes tens of rounds, not hundreds, and overshoots
                        # what it needs by at most an eighth.
                        todo = _next_inputs(order, a.outcomes, max(s.round_size, a.n // 8))
                        self._record(executor, a.vector, todo, result)
                continue
            open_lat = [arm for arm in lat.values() if not arm.decided]
            if not open_lat:
                return
            arms = [Arm(arm.key, arm.n, self._relative_half_width(arm)) for arm in open_lat]
            chosen = set(allocate(arms, slots=s.arms_per_round, round_size=s.round_size,
                                  exploration=s.exploration))
            for arm in open_lat:
                if arm.key in chosen:
                    vector = next(v for v in vectors
                                  if executor.prefix(arm.stage, v) == arm.prefix)
                    todo = _next_inputs(order, arm.values, max(s.round_size, arm.n // 8))
                    self._record(executor, vector, todo, result)

    def _record(self, executor: BaseExecutor, vector: Vector, inputs: list[int],
                result: PipelineProfile) -> None:
        """Run ``vector`` on ``inputs`` and commit the samples in one transaction."""
        if not inputs:
            return
        outcomes: list[Outcome] = executor.run(vector, inputs)
        acc = result.accuracy[vector]
        samples: list[Sample] = []
        for o in outcomes:
            if o.input_id not in acc.outcomes:
                acc.outcomes[o.input_id] = o.correct
                samples.append(Sample(acc.key, o.input_id, 1.0 if o.correct else 0.0))
            for stage, ms in o.stage_ms.items():
                arm = result.latency.get((stage, executor.prefix(stage, vector)))
                if arm is not None and o.input_id not in arm.values:
                    arm.add(o.input_id, ms)
                    samples.append(Sample(arm.key, o.input_id, ms))
        self.store.add(samples)
        result.samples += len(outcomes)

    # ------------------------------------------------------------------------- decisions
    def _relative_half_width(self, arm: LatencyArm) -> float:
        """Half-width over what it must reach: <= 1 means precise enough."""
        if arm.n < 2:
            return math.inf
        st = arm.stats()
        allowed = max(self.settings.latency_precision * st.mean, self._tolerance)
        if allowed <= 0:
            return 0.0
        return t_interval(st, self.alpha).width / 2 / allowed

    def _decide(self, executor: BaseExecutor, floors: list[float],
                result: PipelineProfile) -> None:
        s = self.settings
        enough = min(s.min_samples, executor.inputs)
        for arm in result.latency.values():
            if arm.decided:
                continue
            arm.decided = arm.n >= executor.inputs or (
                arm.n >= enough and self._relative_half_width(arm) <= 1.0)
        for a in result.accuracy.values():
            if a.verdict != "undecided" or a.n < enough:
                continue
            if a.n >= executor.inputs:
                a.verdict = "exhausted"
                continue
            iv = a.interval(self.alpha)
            if not any(iv.low <= f <= iv.high for f in floors):
                a.verdict = "decided"
        if self.no_costlier is None:
            return
        latency = _latency_lookup(executor, result)
        rule, target = DominatedStopRule(), Target(bound=0.0, lower_is_better=False)
        measured = [(b, b.interval(self.alpha)) for b in result.accuracy.values()
                    if b.n >= enough]
        for a, iv in measured:
            if a.verdict != "undecided":
                continue
            unsure = [f for f in floors if iv.low <= f <= iv.high]
            covered: set[float] = set()
            for b, other in measured:
                if b is a:
                    continue
                beats = rule.decide(iv, target, other).stop
                meets = [f for f in unsure if other.low >= f and f not in covered]
                if not (beats or meets) or not self.no_costlier(b.vector, a.vector, latency):
                    continue
                if beats:
                    a.verdict = "dominated"
                    break
                covered.update(meets)
                if len(covered) == len(unsure):
                    # NOTE: for every floor this vector is unsure of, a vector no costlier on
                    # any stage surely meets it: no plan needs to know which side of the
                    # floor this one is on (the other is at least as cheap and feasible).
                    a.verdict = "covered"
                    break

    def _report(self, result: PipelineProfile) -> None:
        if self.progress is None:
            return
        decided = sum(a.verdict != "undecided" for a in result.accuracy.values()) + sum(
            arm.decided for arm in result.latency.values())
        self.progress(Progress(result.pipeline, decided,
                               len(result.accuracy) + len(result.latency), result.samples))


def latency_tolerance_ms(precision: float, stages: int,
                         slos: Sequence[tuple[float | None, float]]) -> float:
    """The latency error, in ms, that a pipeline's decisions cannot see.

    NOTE: a stage's service time enters a query's decisions through its share of the latency
    budget (``latency_ms / stages``) and through its load (``rate * time``, which sets the
    replica count: what matters is the time relative to the inter-arrival gap ``1/rate``). An
    error of ``precision`` times the smaller of the two, over the pipeline's queries, moves
    every such quantity by at most ``precision`` of its scale. Below it, a relative precision on
    a sub-millisecond stage would only chase the machine's timing jitter.

    ``slos``: (latency_ms or ``None``, rate_rps) of each query of the pipeline.
    """
    scales = [min(latency / max(stages, 1) if latency is not None else math.inf,
                  1000.0 / rate) for latency, rate in slos]
    scale = min(scales, default=math.inf)
    return precision * scale if math.isfinite(scale) else 0.0


def _latency_lookup(executor: BaseExecutor, result: PipelineProfile
                    ) -> Callable[[str, Vector], float | None]:
    def latency(stage: str, vector: Vector) -> float | None:
        arm = result.latency.get((stage, executor.prefix(stage, vector)))
        return arm.stats().mean if arm is not None and arm.n else None

    return latency


def _next_inputs(order: list[int], have: Container[int], k: int) -> list[int]:
    """The first ``k`` inputs of ``order`` not in ``have``."""
    out: list[int] = []
    for i in order:
        if i not in have:
            out.append(i)
            if len(out) == k:
                break
    return out


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def all_vectors(config_lists: Sequence[Sequence[ConfigKey]]) -> list[Vector]:
    """Every vector of a pipeline given each stage's configurations, in product order."""
    return [tuple(v) for v in itertools.product(*config_lists)]
