"""Executors: what runs one configuration vector of a pipeline on one input.

The profiler asks an executor for *outcomes*: for a vector (one configuration per stage) and a
list of input ids, whether the pipeline got each input right and how long each stage call took.
Two executors implement :class:`BaseExecutor`:

* :class:`LiveExecutor` runs a world's executable stages (``implementation``) on the pipeline's
  ``dataset`` on this machine, timing every stage call (batch 1) by the
  :class:`~circinus.profile.clock.StallFreeClock` (what waiting for a core added is left
  out). Stage outputs are kept per *prefix* (the configurations of a stage and of every stage
  upstream of it), so vectors that share their first stages' configurations reuse those
  outputs instead of recomputing them.
* :class:`TableExecutor` stands in for a table-driven world (accuracy from a table or a
  composition rule, no code to run): per-input correctness is drawn from the tables (below).

NOTE (table worlds): input ``i`` of a pipeline gets a latent difficulty ``u_i ~ U(0, 1)``
(seeded), and a vector of accuracy ``p`` gets it right iff ``u_i < p``. The sample accuracy of
every vector then converges to its table value, and outcomes are correlated across vectors the
way real ones are (an input a weak model gets right, a stronger one gets right too).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from circinus.executable.base import Batch, Dataset, ImplementationError, load
from circinus.profile.clock import StallFreeClock
from circinus.spec.index import ConfigKey, WorldIndex

Vector = tuple[ConfigKey, ...]
"""One configuration per stage, in the pipeline's topological order."""
Prefix = tuple[tuple[str, ConfigKey], ...]
"""(stage, configuration) of a stage and of every stage upstream of it, in topological order.
A stage's input, hence its output and its latency, depends on exactly these."""


@dataclass(frozen=True)
class Outcome:
    """One vector on one input: correct or not, and the stage calls this run made."""

    input_id: int
    correct: bool
    stage_ms: dict[str, float]
    """Stage -> milliseconds of its call on this input; stages whose output was reused from a
    shared prefix are absent (they were not run again)."""


def digest(payload: object) -> str:
    """A short stable hash of a JSON-able ``payload`` (store keys stay readable and short)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


class BaseExecutor(ABC):
    """Runs vectors of one pipeline on its profiling inputs."""

    pipeline: str
    stages: tuple[str, ...]
    inputs: int
    """Number of profiling inputs (ids ``0 .. inputs-1``)."""
    features: np.ndarray
    """One row of features per input (for the strata)."""
    stage_calls: int = 0
    """Stage executions so far (the real work: shared prefixes are executed once)."""

    @abstractmethod
    def run(self, vector: Vector, inputs: Sequence[int]) -> list[Outcome]:
        """Run ``vector`` on each input id of ``inputs``."""

    @abstractmethod
    def accuracy_key(self, vector: Vector) -> str:
        """Store key of the correctness samples of ``vector``."""

    def latency_key(self, stage: str, prefix: Prefix) -> str | None:
        """Store key of the latency samples of ``stage`` run after ``prefix`` (``None``:
        latency is not measured by this executor)."""
        return None

    def prefix(self, stage: str, vector: Vector) -> Prefix:
        """What ``stage``'s input and work depend on in ``vector`` (its own configuration and
        those of the stages upstream of it)."""
        return ((stage, vector[self.stages.index(stage)]),)


class LiveExecutor(BaseExecutor):
    """Runs the executable stages of ``pipeline`` for real (see module docstring).

    Args:
        index: the world.
        pipeline: name of a pipeline whose stages all have an ``implementation`` and which has
            a ``dataset``.
        hardware: hardware class of this machine (latency keys carry it).
        max_inputs: use only the first inputs of the dataset.
        reuse_prefixes: keep stage outputs per shared prefix (``False`` re-runs every stage of
            every vector, as naive profiling does).
    """

    def __init__(self, index: WorldIndex, pipeline: str, *, hardware: str,
                 max_inputs: int | None = None, reuse_prefixes: bool = True) -> None:
        pipe = index.pipelines[pipeline]
        where = f"pipelines[{_position(index, pipeline)}]"
        if pipe.spec.dataset is None:
            raise ImplementationError(f"{where}.dataset: pipeline {pipeline!r} has no dataset "
                                      "to profile on")
        self.pipeline = pipeline
        self.stages = pipe.order
        self.index = index
        self.hardware = hardware
        self.reuse_prefixes = reuse_prefixes
        self._preds = pipe.preds
        self._ends = pipe.ends if pipe.sink_inputs else (pipe.order[-1],)
        self._sources = set(pipe.source_kb)
        self._ops = {s: index.operators[pipe.operator_of[s]] for s in self.stages}
        self._factories: dict[str, Any] = {}
        for stage, op in self._ops.items():
            impl = op.spec.implementation
            opath = f"operators[{_op_position(index, op.spec.name)}].implementation"
            if impl is None:
                raise ImplementationError(f"{opath}: operator {op.spec.name!r} has no "
                                          "implementation to run")
            self._factories[stage] = load(impl, field_name=opath)
        dataset = load(pipe.spec.dataset, field_name=f"{where}.dataset")()
        if not isinstance(dataset, Dataset):
            raise ImplementationError(f"{where}.dataset: {pipe.spec.dataset!r} returned "
                                      f"{type(dataset).__name__}, not a circinus Dataset")
        n = len(dataset.inputs) if max_inputs is None else min(max_inputs, len(dataset.inputs))
        self.dataset = dataset
        self.inputs = n
        self.features = np.asarray(dataset.features[:n], dtype=float)
        self._runs: dict[tuple[str, ConfigKey], Batch] = {}
        self._warm: set[tuple[str, ConfigKey]] = set()
        self._outputs: dict[tuple[tuple[tuple[str, ConfigKey], ...], int], Any] = {}
        self._ancestors = {s: self._upstream(s) for s in self.stages}
        self._dataset_tag = pipe.spec.dataset
        self._clock = StallFreeClock()

    def _upstream(self, stage: str) -> tuple[str, ...]:
        seen: set[str] = set()
        todo = [stage]
        while todo:
            s = todo.pop()
            if s in seen or s in self._sources:
                continue
            seen.add(s)
            todo.extend(self._preds[s])
        return tuple(s for s in self.stages if s in seen)

    def _stage_run(self, stage: str, config: ConfigKey) -> Batch:
        key = (stage, config)
        if key not in self._runs:
            op = self._ops[stage]
            try:
                self._runs[key] = self._factories[stage](op.config_dict(config))
            except (ValueError, TypeError, KeyError) as exc:
                raise ImplementationError(
                    f"operators[{_op_position(self.index, op.spec.name)}].implementation: "
                    f"{op.spec.implementation!r} rejected configuration "
                    f"{op.config_dict(config)} ({exc})") from exc
        return self._runs[key]

    def accuracy_key(self, vector: Vector) -> str:
        parts = [(s, self._ops[s].spec.implementation, self._ops[s].config_dict(c))
                 for s, c in zip(self.stages, vector, strict=True)]
        return f"accuracy/{self.pipeline}/{digest([self._dataset_tag, parts, self._preds])}"

    def latency_key(self, stage: str, prefix: Prefix) -> str:
        op = self._ops[stage]
        payload = [self._dataset_tag, op.spec.implementation,
                   [(s, self._ops[s].config_dict(c)) for s, c in prefix]]
        return f"latency/{self.hardware}/{self.pipeline}/{stage}/{digest(payload)}"

    def prefix(self, stage: str, vector: Vector) -> Prefix:
        """The configurations of ``stage`` and of every stage upstream of it in ``vector``."""
        configs = dict(zip(self.stages, vector, strict=True))
        return tuple((a, configs[a]) for a in self._ancestors[stage])

    def run(self, vector: Vector, inputs: Sequence[int]) -> list[Outcome]:
        configs = dict(zip(self.stages, vector, strict=True))
        prefixes = {s: self.prefix(s, vector) for s in self.stages}
        outcomes = []
        for i in inputs:
            outputs: dict[str, Any] = {}
            times: dict[str, float] = {}
            for stage in self.stages:
                cache_key = (prefixes[stage], i)
                if self.reuse_prefixes and cache_key in self._outputs:
                    outputs[stage] = self._outputs[cache_key]
                    continue
                preds = self._preds[stage]
                args = [self.dataset.inputs[i] if p in self._sources else outputs[p]
                        for p in preds]
                arg = args[0] if len(args) == 1 else tuple(args)
                run = self._stage_run(stage, configs[stage])
                if (stage, configs[stage]) not in self._warm:
                    run([arg])  # untimed: the first call loads models and fills caches
                    self._warm.add((stage, configs[stage]))
                mark = self._clock.start()
                out = run([arg])[0]
                times[stage] = self._clock.stop(mark)
                self.stage_calls += 1
                outputs[stage] = out
                if self.reuse_prefixes:
                    self._outputs[cache_key] = out
            ends = [self.dataset.inputs[i] if e in self._sources else outputs[e]
                    for e in self._ends]
            result = ends[0] if len(ends) == 1 else tuple(ends)  # a join sink: its inputs'
            correct = bool(self.dataset.correct(result, self.dataset.labels[i]))
            outcomes.append(Outcome(i, correct, times))
        return outcomes


class TableExecutor(BaseExecutor):
    """Per-input outcomes drawn from a table-driven world's accuracies (see module NOTE).

    Args:
        index: the world.
        pipeline: a pipeline with an accuracy model.
        inputs: how many profiling inputs to stand in for (e.g. ImageNet's 50,000).
        seed: seed of the latent difficulties.
    """

    def __init__(self, index: WorldIndex, pipeline: str, *, inputs: int, seed: int = 0) -> None:
        from circinus.estimate.analytic import AnalyticEstimator

        pipe = index.pipelines[pipeline]
        self.pipeline = pipeline
        self.stages = pipe.order
        self.inputs = inputs
        rng = np.random.default_rng([seed, len(pipeline), *pipeline.encode()])
        self._difficulty = rng.random(inputs)
        # One feature: the difficulty itself is hidden, so strata see a noisy view of it (as
        # input features only partly predict how hard an input is).
        self.features = (self._difficulty + rng.normal(0.0, 0.3, inputs)).reshape(-1, 1)
        self._estimator = AnalyticEstimator(index=index)
        self._ops = [index.operators[pipe.operator_of[s]] for s in self.stages]
        values = [a for v in itertools.product(*(op.configs for op in self._ops))
                  if (a := self.accuracy_of(v)) is not None]
        self.scale = 100.0 if values and max(values) > 1.0 else 1.0
        """Accuracies above 1 are percentages (JellyBean's table is): outcomes are drawn from
        ``accuracy / scale``, and measured proportions are written back times ``scale``."""

    def accuracy_of(self, vector: Vector) -> float | None:
        """The table's accuracy of ``vector``."""
        return self._estimator.accuracy(self.pipeline, dict(zip(self.stages, vector,
                                                                strict=True)))

    def accuracy_key(self, vector: Vector) -> str:
        parts = [op.config_dict(c) for op, c in zip(self._ops, vector, strict=True)]
        return f"accuracy/{self.pipeline}/{digest(parts)}"

    def run(self, vector: Vector, inputs: Sequence[int]) -> list[Outcome]:
        acc = self.accuracy_of(vector)
        p = None if acc is None else acc / self.scale
        self.stage_calls += len(inputs) * len(self.stages)
        return [Outcome(i, p is not None and bool(self._difficulty[i] < p), {})
                for i in inputs]


def _position(index: WorldIndex, pipeline: str) -> int:
    return [p.name for p in index.world.pipelines].index(pipeline)


def _op_position(index: WorldIndex, operator: str) -> int:
    return [o.name for o in index.world.operators].index(operator)


class ReplayExecutor(BaseExecutor):
    """Replays the outcomes another run committed to a store, instead of running anything.

    Wraps a :class:`LiveExecutor` for its keys and prefixes. Comparing two profilers on one
    recording (*common random numbers*) isolates what their policies decide from the timing
    noise of two separate runs on a shared machine. Stages are reported as executed only the
    first time their prefix meets an input, as a live run with prefix reuse would.

    Raises:
        KeyError: when a sample the replay needs was never recorded.
    """

    def __init__(self, live: LiveExecutor, recording: Any) -> None:
        self.live = live
        self.pipeline = live.pipeline
        self.stages = live.stages
        self.inputs = live.inputs
        self.features = live.features
        self._recording = recording
        self._cache: dict[str, dict[int, float]] = {}
        self._seen: set[tuple[Prefix, int]] = set()

    def _value(self, key: str, input_id: int) -> float:
        if key not in self._cache:
            self._cache[key] = {s.sample_id: s.value for s in self._recording.samples(key)}
        return self._cache[key][input_id]

    def accuracy_key(self, vector: Vector) -> str:
        return self.live.accuracy_key(vector)

    def latency_key(self, stage: str, prefix: Prefix) -> str:
        return self.live.latency_key(stage, prefix)

    def prefix(self, stage: str, vector: Vector) -> Prefix:
        return self.live.prefix(stage, vector)

    def run(self, vector: Vector, inputs: Sequence[int]) -> list[Outcome]:
        outcomes = []
        for i in inputs:
            times = {}
            for stage in self.stages:
                prefix = self.prefix(stage, vector)
                if (prefix, i) in self._seen:
                    continue
                self._seen.add((prefix, i))
                times[stage] = self._value(self.latency_key(stage, prefix), i)
                self.stage_calls += 1
            correct = self._value(self.accuracy_key(vector), i) >= 0.5
            outcomes.append(Outcome(i, correct, times))
        return outcomes
