"""Cross-reference checks of a world, and the :class:`WorldIndex` they produce.

Field-level checks (types, ranges, unknown keys) are pydantic's; this module checks what spans
objects: unique names, references to hardware, sites, devices, operators, knobs and pipelines,
DAG shape (no cycle, one sink that every stage reaches, every stage reachable from a source),
capacities no replica could ever fit in, and numbers that are not finite (YAML's ``.inf`` and
``.nan`` pass pydantic's range checks where no bound is set). Every error is a :class:`SpecError`
whose message starts with the path of the offending field and says the way out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from circinus.errors import SpecError
from circinus.spec.index import ConfigKey, OperatorIndex, Outcome, PipelineIndex, WorldIndex
from circinus.spec.models import (
    Config,
    ConfigValue,
    FanOut,
    KnobValue,
    LatencyProfile,
    Link,
    Operator,
    Pipeline,
    World,
)
from circinus.spec.shares import OWN, share_profiles

MAX_OUTCOMES = 256
"""Most ways through one pipeline's branch points (the estimator weighs each)."""


def build_index(world: World, *, validated: bool = False) -> WorldIndex:
    """Check every reference of ``world`` and return its index.

    ``validated``: every number of ``world`` was checked finite by its models' validation (a
    world :func:`~circinus.spec.parse_world` made from a document it read): the walk over
    every value for NaN and infinity, there for worlds made or changed without validation
    (``model_construct``, ``model_copy``), is skipped (at 100,000 generated queries 1.7
    million values, 0.5 s before the search can start).

    Raises:
        SpecError: naming the first offending field, e.g. ``devices[2].site: unknown site 'x'``.
    """
    if not validated:
        _finite(world, "")
    _unique("hardware", [h.name for h in world.hardware])
    _unique("sites", [s.name for s in world.sites])
    _unique("devices", [d.name for d in world.devices])
    _unique("operators", [o.name for o in world.operators])
    _unique("pipelines", [p.name for p in world.pipelines])
    _unique("queries", [q.name for q in world.queries])

    hardware = {h.name for h in world.hardware}
    sites = {s.name: s for s in world.sites}
    for i, dev in enumerate(world.devices):
        _known(f"devices[{i}].site", dev.site, sites, "site")
        _known(f"devices[{i}].hardware", dev.hardware, hardware, "hardware class")
    links = _links(world.links, sites)
    _profiling(world, hardware)
    operators = {
        op.name: _operator(f"operators[{i}]", op, hardware, world)
        for i, op in enumerate(world.operators)
    }
    pipelines = {
        p.name: _pipeline(f"pipelines[{i}]", p, operators) for i, p in enumerate(world.pipelines)
    }
    for i, query in enumerate(world.queries):
        path = f"queries[{i}]"
        _known(f"{path}.pipeline", query.pipeline, pipelines, "pipeline")
        pipe = pipelines[query.pipeline]
        expected = set(pipe.source_kb)
        if set(query.sources) != expected:
            raise SpecError(
                f"{path}.sources: must map exactly the sources of pipeline "
                f"{query.pipeline!r} {sorted(expected)} to sites, got {sorted(query.sources)}"
            )
        for src, site in query.sources.items():
            _known(f"{path}.sources.{src}", site, sites, "site")
        for stage in query.work_scale:
            _known(f"{path}.work_scale.{stage}", stage, pipe.operator_of, "stage")
        for src in query.source_output_kb:
            _known(f"{path}.source_output_kb.{src}", src, pipe.source_kb, "source")
        _source_rates(path, query.source_rate_rps, pipe)
        if query.slo.min_accuracy is not None and pipe.spec.accuracy.rule == "none":
            raise SpecError(
                f"{path}.slo.min_accuracy: pipeline {query.pipeline!r} has no accuracy model "
                "(accuracy.rule is 'none'); remove the bound or give the pipeline an accuracy model"
            )
    return WorldIndex(
        world=world,
        sites=sites,
        devices={d.name: d for d in world.devices},
        links=links,
        operators=operators,
        pipelines=pipelines,
    )


def _source_rates(path: str, rates: Mapping[str, float], pipe: PipelineIndex) -> None:
    """Sources with their own rate: known, not all of them, and never two joined without a
    source of the requests (nothing would say which of them a stage fires on)."""
    for src in rates:
        _known(f"{path}.source_rate_rps.{src}", src, pipe.source_kb, "source")
    if rates and not pipe.plain:
        raise SpecError(
            f"{path}.source_rate_rps: pipeline {pipe.spec.name!r} fans out or branches, and "
            "sources with rates of their own are not modelled with those; leave "
            "source_rate_rps out (every source then comes at rate_rps)")
    if rates and len(rates) == len(pipe.source_kb):
        raise SpecError(
            f"{path}.source_rate_rps: every source of pipeline {pipe.spec.name!r} has its own "
            "rate; leave out the source(s) whose messages make the query's requests (they "
            "come at rate_rps)")
    for stage in pipe.order:
        ancestry = pipe.ancestors[stage]
        if len(ancestry) > 1 and ancestry <= rates.keys():
            a, b = sorted(ancestry)[:2]
            raise SpecError(
                f"{path}.source_rate_rps: stage {stage!r} joins sources {a!r} and {b!r}, which "
                "both have their own rate; a stage fires on the requests or on one source's "
                "messages, so leave one of them out (it then comes at rate_rps)")


def _finite(node: object, path: str) -> None:
    """Reject NaN and infinite numbers anywhere in ``node`` (a spec model or its contents)."""
    where = _not_finite(node)
    if where is None:
        return
    value: Any = node
    for part in where:
        value = getattr(value, part) if isinstance(value, BaseModel) else value[part]
        path = (f"{path}[{part}]" if isinstance(part, int) else
                f"{path}.{part}" if path else str(part))
    raise SpecError(f"{path}: must be a finite number, got {value!r}; write a finite value (an "
                    "optional bound may be left out instead)")


def _not_finite(node: object) -> list[Any] | None:
    """The way down to the first NaN or infinite number in ``node`` (field names, list
    positions and dictionary keys), or ``None``.

    NOTE: the way is built on the way back up, only when there is one: building every node's
    path as the walk went down was a fifth of checking a world (100,000 generated queries, 1.7
    million nodes: 1.17 s of CPU against 0.96 s)."""
    if type(node) is str or node is None:
        return None
    if isinstance(node, float):
        return None if math.isfinite(node) else []
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            where = _not_finite(getattr(node, name))
            if where is not None:
                return [name, *where]
    elif isinstance(node, list | tuple):
        for i, item in enumerate(node):
            where = _not_finite(item)
            if where is not None:
                return [i, *where]
    elif isinstance(node, dict):
        for key, item in node.items():
            where = _not_finite(item)
            if where is not None:
                return [key, *where]
    return None


def _unique(section: str, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise SpecError(f"{section}[{i}].name: duplicate name {name!r}; names must be unique")
        seen.add(name)


def _known(path: str, name: str, known: Iterable[str], what: str) -> None:
    pool = set(known)
    if name not in pool:
        hint = ", ".join(sorted(pool)[:8]) + (", ..." if len(pool) > 8 else "") or "none"
        raise SpecError(f"{path}: unknown {what} {name!r}; known: {hint}")


def _links(links: Sequence[Link], sites: Mapping[str, object]) -> dict[tuple[str, str], Link]:
    out: dict[tuple[str, str], Link] = {}
    for i, link in enumerate(links):
        _known(f"links[{i}].src", link.src, sites, "site")
        _known(f"links[{i}].dst", link.dst, sites, "site")
        pairs = [(link.src, link.dst)] + ([(link.dst, link.src)] if link.both_ways else [])
        for pair in pairs:
            if pair in out:
                raise SpecError(
                    f"links[{i}]: a second link from {pair[0]!r} to {pair[1]!r} (both_ways makes "
                    "the reverse link too); keep one link per direction"
                )
            out[pair] = link
    return out


def _check_partial(path: str, config: Config, op: Operator) -> None:
    for knob, value in config.items():
        if knob not in op.knobs:
            raise SpecError(
                f"{path}.{knob}: operator {op.name!r} has no knob {knob!r}; "
                f"knobs: {sorted(op.knobs) or 'none'}"
            )
        if not any(_same(value, allowed) for allowed in op.knobs[knob]):
            raise SpecError(
                f"{path}.{knob}: {value!r} is not a value of knob {knob!r} of operator "
                f"{op.name!r}; allowed: {op.knobs[knob]}"
            )


def _same(a: KnobValue, b: KnobValue) -> bool:
    """Knob values are equal, a boolean never equal to a number (Python has ``True == 1``)."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _resolve(entries: float | list[ConfigValue] | None, path: str, op: Operator,
             configs: Sequence[ConfigKey], knobs: tuple[str, ...]) -> dict[ConfigKey, float]:
    """Value per configuration of a number-or-{when, value} list field."""
    if entries is None:
        return {}
    if isinstance(entries, float | int):
        return dict.fromkeys(configs, float(entries))
    for j, entry in enumerate(entries):
        _check_partial(f"{path}[{j}].when", entry.when, op)
    out: dict[ConfigKey, float] = {}
    for key in configs:
        config = dict(zip(knobs, key, strict=True))
        best: tuple[int, float] | None = None
        for entry in entries:
            if all(config[k] == v for k, v in entry.when.items()) and (
                best is None or len(entry.when) > best[0]
            ):
                best = (len(entry.when), entry.value)
        if best is None:
            raise SpecError(
                f"{path}: no entry matches configuration {config} of operator {op.name!r}; "
                "add an entry with an empty `when` as the default"
            )
        out[key] = best[1]
    return out


def _operator(path: str, op: Operator, hardware: set[str], world: World) -> OperatorIndex:
    knobs = tuple(op.knobs)
    profiles: dict[tuple[ConfigKey, str], object] = {}
    for j, prof in enumerate(op.profiles):
        ppath = f"{path}.profiles[{j}]"
        missing = [k for k in knobs if k not in prof.config]
        if missing:
            raise SpecError(
                f"{ppath}.config: missing knob(s) {missing} of operator {op.name!r}; a profile "
                "gives every knob a value"
            )
        _check_partial(f"{ppath}.config", prof.config, op)
        _known(f"{ppath}.hardware", prof.hardware, hardware, "hardware class")
        key = tuple(prof.config[k] for k in knobs)
        if (key, prof.hardware) in profiles:
            raise SpecError(
                f"{ppath}: a second profile of {prof.config} on {prof.hardware!r}; keep one "
                "profile per configuration and hardware class"
            )
        if prof.p90_ms is not None and prof.p90_ms < prof.mean_ms * 0.5:
            raise SpecError(
                f"{ppath}.p90_ms: {prof.p90_ms!r} is below half the mean {prof.mean_ms!r}; "
                "check the units (ms)"
            )
        _check_fits(ppath, prof.hardware, prof.units, prof.memory_gb, world)
        profiles[key, prof.hardware] = prof
    # Configurations: knob combinations with at least one profile, in knob-product order;
    # every combination when the operator is executable (the profiler measures them all).
    profiled = {key for key, _ in profiles}
    configs = tuple(
        key for key in itertools.product(*(op.knobs[k] for k in knobs))
        if key in profiled or op.implementation is not None
    )
    output_kb = _resolve(op.output_kb, f"{path}.output_kb", op, configs, knobs)
    accuracy = _resolve(op.accuracy, f"{path}.accuracy", op, configs, knobs)
    fanout = _resolve_fanout(op.fanout, f"{path}.fanout", op, configs, knobs)
    if any(prof.shares for prof in op.profiles):
        return _with_shares(path, op, world, OperatorIndex(
            spec=op, knob_names=knobs, configs=configs,
            profiles=profiles,  # type: ignore[arg-type]
            output_kb=output_kb, accuracy=accuracy, fanout=fanout))
    return OperatorIndex(
        spec=op,
        knob_names=knobs,
        configs=configs,
        profiles=profiles,  # type: ignore[arg-type]
        output_kb=output_kb,
        accuracy=accuracy,
        fanout=fanout,
    )


def _resolve_fanout(entries: list[FanOut] | None, path: str, op: Operator,
                    configs: Sequence[ConfigKey], knobs: tuple[str, ...]
                    ) -> dict[ConfigKey, tuple[float, float]]:
    """``(mean, cv)`` of the fan-out per configuration (the most specific entry wins)."""
    if entries is None:
        return {}
    for j, entry in enumerate(entries):
        _check_partial(f"{path}[{j}].when", entry.when, op)
    out: dict[ConfigKey, tuple[float, float]] = {}
    for key in configs:
        config = dict(zip(knobs, key, strict=True))
        best: tuple[int, FanOut] | None = None
        for entry in entries:
            if all(config[k] == v for k, v in entry.when.items()) and (
                best is None or len(entry.when) > best[0]
            ):
                best = (len(entry.when), entry)
        if best is None:
            raise SpecError(
                f"{path}: no entry matches configuration {config} of operator {op.name!r}; "
                "add an entry with an empty `when` as the default"
            )
        out[key] = (best[1].mean, best[1].cv)
    return out


def _with_shares(path: str, op: Operator, world: World, plain: OperatorIndex) -> OperatorIndex:
    """``plain`` with every replica share of its profiles as a configuration of its own: each
    key extended by its share (:mod:`circinus.spec.shares`), the profiles' own allocation first
    and then the shares in increasing order, per configuration in ``plain``'s order."""
    profiles: dict[tuple[ConfigKey, str], LatencyProfile] = {}
    ratios: dict[ConfigKey, set[float]] = {key: {OWN} for key in plain.configs}
    for j, prof in enumerate(op.profiles):
        key, hw = plain.key_of(prof.config), prof.hardware
        profiles[(*key, OWN), hw] = prof
        for k, (ratio, derived) in enumerate(share_profiles(f"{path}.profiles[{j}]", prof)):
            _check_fits(f"{path}.profiles[{j}].shares[{k}]", hw, derived.units,
                        derived.memory_gb, world)
            profiles[(*key, ratio), hw] = derived
            ratios[key].add(ratio)
    configs = tuple((*key, r) for key in plain.configs for r in sorted(
        ratios[key], key=lambda r: (r != OWN, r)))
    return OperatorIndex(
        spec=op, knob_names=plain.knob_names, configs=configs, profiles=profiles,
        output_kb={c: plain.output_kb[c[:-1]] for c in configs if c[:-1] in plain.output_kb},
        accuracy={c: plain.accuracy[c[:-1]] for c in configs if c[:-1] in plain.accuracy},
        fanout={c: plain.fanout[c[:-1]] for c in configs if c[:-1] in plain.fanout},
        has_shares=True)


def _profiling(world: World, hardware: set[str]) -> None:
    executable = [i for i, op in enumerate(world.operators) if op.implementation is not None]
    if not executable:
        return
    if world.profiling.hardware is None:
        raise SpecError(
            f"profiling.hardware: operators[{executable[0]}] has an implementation to measure; "
            "name the hardware class of the profiling machine"
        )
    _known("profiling.hardware", world.profiling.hardware, hardware, "hardware class")


def _check_fits(path: str, hw: str, units: float, memory_gb: float, world: World) -> None:
    devices = [d for d in world.devices if d.hardware == hw]
    if not devices:
        return  # a profile for hardware the world has no device of is simply unused
    largest = max(d.units for d in devices)
    if units > largest:
        raise SpecError(
            f"{path}.units: a replica needs {units!r} units but the largest {hw!r} device has "
            f"{largest!r}; lower the units or add a bigger device"
        )
    mems = [d.memory_gb for d in devices if d.memory_gb is not None]
    if memory_gb and mems and len(mems) == len(devices) and memory_gb > max(mems):
        raise SpecError(
            f"{path}.memory_gb: a replica needs {memory_gb!r} GB but the largest {hw!r} device "
            f"has {max(mems)!r} GB"
        )


def _pipeline(path: str, pipe: Pipeline, operators: dict[str, OperatorIndex]) -> PipelineIndex:
    _unique(f"{path}.sources", [s.name for s in pipe.sources])
    sources = {s.name: s.output_kb for s in pipe.sources}
    _unique(f"{path}.stages", [s.name for s in pipe.stages])
    operator_of: dict[str, str] = {}
    nodes: dict[str, str | None] = {}  # every stage -> its operator (None: a join)
    for j, stage in enumerate(pipe.stages):
        if stage.name in sources:
            raise SpecError(f"{path}.stages[{j}].name: {stage.name!r} is also a source name")
        if stage.operator is not None:
            _known(f"{path}.stages[{j}].operator", stage.operator, operators, "operator")
            operator_of[stage.name] = stage.operator
        nodes[stage.name] = stage.operator
    if not operator_of:
        raise SpecError(f"{path}.stages: no stage has an operator (a stage without one only "
                        "joins its inputs); give at least one stage an `operator`")
    preds: dict[str, list[str]] = {s: [] for s in nodes}
    succs: dict[str, list[str]] = {n: [] for n in [*sources, *nodes]}
    for j, (a, b) in enumerate(pipe.edges):
        _known(f"{path}.edges[{j}][0]", a, succs, "source or stage")
        if b in sources:
            raise SpecError(f"{path}.edges[{j}][1]: {b!r} is a source; edges cannot enter a source")
        _known(f"{path}.edges[{j}][1]", b, nodes, "stage")
        if a in preds[b]:
            raise SpecError(f"{path}.edges[{j}]: duplicate edge {a!r} -> {b!r}")
        preds[b].append(a)
        succs[a].append(b)
    every = _topological(path, nodes, preds)
    for src in sources:
        if not succs[src]:
            raise SpecError(f"{path}.sources: source {src!r} feeds no stage; add an edge from it")
    for j, node in enumerate(pipe.stages):
        if not preds[node.name] and not succs[node.name]:
            raise SpecError(
                f"{path}.stages[{j}]: stage {node.name!r} is on no edge; connect it with edges "
                "or remove it"
            )
    fed = set(sources)
    for name in every:
        if not any(p in fed for p in preds[name]):
            raise SpecError(
                f"{path}.edges: stage {name!r} is not reachable from any source; add an edge "
                "into it from a source or from a reachable stage"
            )
        fed.add(name)
    sinks = [s for s in nodes if not succs[s]]
    if len(sinks) != 1:
        raise SpecError(
            f"{path}.edges: a pipeline needs exactly one sink (a stage with no outgoing edge), "
            f"found {sinks}; join the branches into one final stage (a stage without an "
            "operator joins them at no cost)"
        )
    sink = sinks[0]
    # Joins resolved: a stage after a join takes the join's inputs as its own.
    resolved: dict[str, tuple[str, ...]] = {}
    for name in every:
        ins: list[str] = []
        for p in preds[name]:
            ins.extend(resolved[p] if p in resolved and nodes[p] is None else (p,))
        resolved[name] = tuple(dict.fromkeys(ins))
    order = [n for n in every if nodes[n] is not None]
    flat = {n: resolved[n] for n in order}
    sink_inputs = resolved[sink] if nodes[sink] is None else ()
    ends = sink_inputs or (sink,)
    flat_succs: dict[str, list[str]] = {n: [] for n in [*sources, *order]}
    for n in order:
        for p in flat[n]:
            flat_succs[p].append(n)
    paths = tuple(_paths(sources, flat_succs, ends))
    _check_accuracy(path, pipe, operator_of, operators)
    dominators = _dominators(sources, order, flat)
    forks = _forks(order, flat, dominators)
    if len(sink_inputs) > 1:
        forks[sink] = _nearest(frozenset.intersection(*(dominators[n] for n in sink_inputs)),
                               order)
    ancestors: dict[str, frozenset[str]] = {s: frozenset({s}) for s in sources}
    for n in order:
        ancestors[n] = frozenset().union(*(ancestors[p] for p in flat[n]))
    has_joins = any(nodes[n] is None for n in every)
    if has_joins and (pipe.branches or any(
            operators[s.operator].fanout for s in pipe.stages if s.operator is not None)):
        raise SpecError(f"{path}: a pipeline with a stage without an operator (a join) cannot "
                        "also fan out or branch; give the join an operator or drop the "
                        "`branches` / `fanout`")
    branch_at = _branches(path, pipe, succs)
    fanout, scope = _fanout(path, pipe, order, preds, succs, operators, branch_at)
    outer = [s for s in order if s not in scope]
    outcomes = _outcomes(f"{path}.branches", outer, flat, set(sources), branch_at)
    goal = sink if fanout is None else fanout
    for oc in outcomes if not has_joins else ():
        if goal not in oc.stages:
            raise SpecError(
                f"{path}.branches: with probability {oc.prob:.4g} a request never reaches "
                f"{'the sink' if fanout is None else 'the fan-out stage'} {goal!r} (it visits "
                f"only {', '.join(s for s in order if s in oc.stages)}); make the "
                "probabilities of a branch sum to 1 or add an edge that always leads there")
    inner: tuple[Outcome, ...] = ()
    if fanout is not None:
        inner = _outcomes(f"{path}.branches", [s for s in order if s in scope], preds,
                          {fanout}, branch_at)
        for oc in inner:
            if sinks[0] not in oc.stages:
                raise SpecError(
                    f"{path}.branches: with probability {oc.prob:.4g} an object of fan-out "
                    f"stage {fanout!r} never reaches the sink {sinks[0]!r}; make the "
                    "probabilities of a branch sum to 1 or add an edge that always leads there")
    reached = set().union(*(oc.stages for oc in (*outcomes, *inner)))
    for name in order:
        if name not in reached:
            raise SpecError(f"{path}.branches: no request ever reaches stage {name!r} (every "
                            "branch into it has probability 0); give it a probability or "
                            "remove the stage")
    return PipelineIndex(
        spec=pipe,
        order=tuple(order),
        operator_of=operator_of,
        preds=flat,
        sink=sink,
        paths=paths,
        forks=forks,
        source_kb=sources,
        joins={n: tuple(preds[n]) for n in every if nodes[n] is None},
        sink_inputs=sink_inputs,
        ancestors=ancestors,
        dominators=dominators,
        fanout_stage=fanout,
        scope=frozenset(scope),
        branch_at=branch_at,
        outcomes=outcomes,
        object_outcomes=inner,
    )


def _dominators(sources: Mapping[str, float], order: list[str],
                preds: dict[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    """Per source and stage, the nodes every path into it passes: itself and those common to
    all its inputs (a source's: itself)."""
    out: dict[str, frozenset[str]] = {s: frozenset({s}) for s in sources}
    for stage in order:
        out[stage] = frozenset.intersection(*(out[p] for p in preds[stage])) | {stage}
    return out


def _branches(path: str, pipe: Pipeline, succs: dict[str, list[str]]
              ) -> dict[str, tuple[tuple[str, float], ...]]:
    """The branch points of ``pipe``, checked against its edges."""
    out: dict[str, tuple[tuple[str, float], ...]] = {}
    for j, branch in enumerate(pipe.branches):
        bpath = f"{path}.branches[{j}]"
        if branch.at in {s.name for s in pipe.sources}:
            raise SpecError(f"{bpath}.at: {branch.at!r} is a source; every request leaves its "
                            "sources on every edge, so branch at the first stage instead")
        _known(f"{bpath}.at", branch.at, [s.name for s in pipe.stages], "stage")
        if branch.at in out:
            raise SpecError(f"{bpath}.at: stage {branch.at!r} already chooses a branch; give "
                            "one stage one branch, with all its choices in `to`")
        for stage in branch.to:
            if stage not in succs[branch.at]:
                raise SpecError(
                    f"{bpath}.to.{stage}: {stage!r} is not a successor of {branch.at!r}; add "
                    f"the edge [{branch.at}, {stage}] or name one of "
                    f"{', '.join(succs[branch.at]) or 'none (it is the sink)'}")
        out[branch.at] = tuple(branch.to.items())
    return out


def _fanout(path: str, pipe: Pipeline, order: Sequence[str], preds: dict[str, list[str]],
            succs: dict[str, list[str]], operators: dict[str, OperatorIndex],
            branch_at: Mapping[str, object]) -> tuple[str | None, set[str]]:
    """The pipeline's fan-out stage and the stages after it (its scope), checked: one such
    stage, not the sink, one successor, no branch, and nothing from outside joins its
    objects."""
    fanning = [(j, s.name) for j, s in enumerate(pipe.stages)
               if s.operator is not None and operators[s.operator].fanout]
    if not fanning:
        return None, set()
    (j, stage), *more = fanning
    spath = f"{path}.stages[{j}]"
    operator = pipe.stages[j].operator
    assert operator is not None  # only stages with an operator fan out
    op = operators[operator].spec.name
    if more:
        raise SpecError(f"{path}.stages[{more[0][0]}]: stages {stage!r} and {more[0][1]!r} both "
                        "fan out (their operators have a `fanout`); a pipeline may fan out at "
                        "one stage only")
    if not succs[stage]:
        raise SpecError(f"{spath}: stage {stage!r} is the sink, so the objects of operator "
                        f"{op!r}'s fanout would go nowhere; add the stage that serves them")
    if len(succs[stage]) != 1:
        raise SpecError(f"{spath}: fan-out stage {stage!r} feeds {len(succs[stage])} stages "
                        f"({', '.join(succs[stage])}); its objects go to one stage, so feed "
                        "the others from that one")
    if stage in branch_at:
        raise SpecError(f"{spath}: fan-out stage {stage!r} also chooses a branch; lower its "
                        "fanout mean instead (an object skipped with probability p is a mean "
                        "p times smaller)")
    scope: set[str] = set()
    for name in order:
        if any(p == stage or p in scope for p in preds[name]):
            scope.add(name)
            outside = [p for p in preds[name] if p != stage and p not in scope]
            if outside:
                raise SpecError(
                    f"{path}.edges: stage {name!r} serves the objects of fan-out stage "
                    f"{stage!r} but also takes input from {outside[0]!r}, which does not; "
                    f"route {outside[0]!r} into a stage before {stage!r}")
    return stage, scope


def _outcomes(path: str, stages: Sequence[str], preds: Mapping[str, Sequence[str]],
              start: set[str], branch_at: Mapping[str, tuple[tuple[str, float], ...]]
              ) -> tuple[Outcome, ...]:
    """Every way through ``stages`` (in topological order) from the nodes ``start``, one per
    combination of the branch points' choices with a positive probability.

    A stage is visited when some edge into it is taken from a visited node; an edge out of a
    branch point is taken when the point chose it (or it is not among its choices).
    """
    points = [s for s in stages if s in branch_at]
    options: list[list[tuple[str | None, float]]] = []
    for s in points:
        opts: list[tuple[str | None, float]] = [(t, p) for t, p in branch_at[s] if p > 0]
        rest = 1.0 - sum(p for _, p in branch_at[s])
        if rest > 1e-12:
            opts.append((None, rest))
        options.append(opts)
    count = math.prod(len(o) for o in options)
    if count > MAX_OUTCOMES:
        raise SpecError(f"{path}: {count} ways through the branch points "
                        f"({', '.join(points)}); at most {MAX_OUTCOMES} are weighed, so merge "
                        "some branches")
    out: list[Outcome] = []
    for combo in itertools.product(*options):
        choice = dict(zip(points, (c for c, _ in combo), strict=True))
        prob = math.prod(p for _, p in combo)
        visited = set(start)
        taken: set[tuple[str, str]] = set()
        for s in stages:
            for p in preds[s]:
                if p not in visited:
                    continue
                if p in choice and any(t == s for t, _ in branch_at[p]) and choice[p] != s:
                    continue
                taken.add((p, s))
                visited.add(s)
        out.append(Outcome(prob, frozenset(taken), frozenset(visited - start)))
    return tuple(out)


def _nearest(common: frozenset[str], order: list[str]) -> str | None:
    """The latest of ``common`` in ``order`` (a source before every stage), ``None`` if empty."""
    rank = {name: i for i, name in enumerate(order)}
    return max(common, key=lambda n: rank.get(n, -1), default=None)


def _forks(order: list[str], preds: dict[str, tuple[str, ...]],
           dominators: dict[str, frozenset[str]]) -> dict[str, str | None]:
    """Per stage with several inputs, its immediate dominator (see ``PipelineIndex.forks``)."""
    return {stage: _nearest(frozenset.intersection(*(dominators[p] for p in preds[stage])),
                            order)
            for stage in order if len(preds[stage]) > 1}


def _topological(path: str, stages: Mapping[str, object], preds: dict[str, list[str]]
                 ) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 2 or node not in stages:
            return
        if state.get(node) == 1:
            cycle = " -> ".join([*trail[trail.index(node):], node])
            raise SpecError(f"{path}.edges: cycle {cycle}; a pipeline must be a DAG")
        state[node] = 1
        for p in preds[node]:
            visit(p, [*trail, node])
        state[node] = 2
        order.append(node)

    for stage in stages:
        visit(stage, [])
    return order


def _paths(sources: dict[str, float], succs: dict[str, list[str]],
           ends: tuple[str, ...]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []

    def walk(node: str, trail: tuple[str, ...]) -> None:
        if node in ends:
            out.append(trail)
        for nxt in succs[node]:
            walk(nxt, (*trail, nxt))

    for src in sources:
        walk(src, (src,))
    return out


def _check_accuracy(path: str, pipe: Pipeline, operator_of: dict[str, str],
                    operators: dict[str, OperatorIndex]) -> None:
    rule = pipe.accuracy.rule
    if rule == "table":
        if not pipe.accuracy.table:
            raise SpecError(f"{path}.accuracy.table: rule 'table' needs at least one row")
        for j, row in enumerate(pipe.accuracy.table):
            for stage, config in row.config.items():
                rpath = f"{path}.accuracy.table[{j}].config.{stage}"
                _known(rpath, stage, operator_of, "stage")
                _check_partial(rpath, config, operators[operator_of[stage]].spec)
    elif rule == "measured":
        if pipe.dataset is None:
            raise SpecError(
                f"{path}.dataset: accuracy rule 'measured' needs a dataset "
                "('package.module:function' returning labelled inputs)"
            )
        for stage, op in operator_of.items():
            if operators[op].spec.implementation is None:
                raise SpecError(
                    f"{path}.accuracy.rule: 'measured' runs every stage but operator {op!r} "
                    f"(stage {stage!r}) has no `implementation`; give it one or use rule 'table'"
                )
    elif rule in ("product", "min", "mean"):
        for stage, op in operator_of.items():
            if operators[op].spec.accuracy is None:
                raise SpecError(
                    f"{path}.accuracy.rule: {rule!r} composes per-operator accuracies but operator "
                    f"{op!r} (stage {stage!r}) has no `accuracy`; give it one or use rule 'table'"
                )
