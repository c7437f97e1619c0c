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

from pydantic import BaseModel

from circinus.errors import SpecError
from circinus.spec.index import ConfigKey, OperatorIndex, PipelineIndex, WorldIndex
from circinus.spec.models import (
    Config,
    ConfigValue,
    KnobValue,
    LatencyProfile,
    Link,
    Operator,
    Pipeline,
    World,
)
from circinus.spec.shares import OWN, share_profiles


def build_index(world: World) -> WorldIndex:
    """Check every reference of ``world`` and return its index.

    Raises:
        SpecError: naming the first offending field, e.g. ``devices[2].site: unknown site 'x'``.
    """
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


def _finite(node: object, path: str) -> None:
    """Reject NaN and infinite numbers anywhere in ``node`` (a spec model or its contents)."""
    if isinstance(node, float):
        if not math.isfinite(node):
            raise SpecError(
                f"{path}: must be a finite number, got {node!r}; write a finite value (an "
                "optional bound may be left out instead)"
            )
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            _finite(getattr(node, name), f"{path}.{name}" if path else name)
    elif isinstance(node, list | tuple):
        for i, item in enumerate(node):
            _finite(item, f"{path}[{i}]")
    elif isinstance(node, dict):
        for key, item in node.items():
            _finite(item, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}")


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
    if any(prof.shares for prof in op.profiles):
        return _with_shares(path, op, world, OperatorIndex(
            spec=op, knob_names=knobs, configs=configs,
            profiles=profiles,  # type: ignore[arg-type]
            output_kb=output_kb, accuracy=accuracy))
    return OperatorIndex(
        spec=op,
        knob_names=knobs,
        configs=configs,
        profiles=profiles,  # type: ignore[arg-type]
        output_kb=output_kb,
        accuracy=accuracy,
    )


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
    for j, stage in enumerate(pipe.stages):
        if stage.name in sources:
            raise SpecError(f"{path}.stages[{j}].name: {stage.name!r} is also a source name")
        _known(f"{path}.stages[{j}].operator", stage.operator, operators, "operator")
        operator_of[stage.name] = stage.operator
    preds: dict[str, list[str]] = {s: [] for s in operator_of}
    succs: dict[str, list[str]] = {n: [] for n in [*sources, *operator_of]}
    for j, (a, b) in enumerate(pipe.edges):
        _known(f"{path}.edges[{j}][0]", a, succs, "source or stage")
        if b in sources:
            raise SpecError(f"{path}.edges[{j}][1]: {b!r} is a source; edges cannot enter a source")
        _known(f"{path}.edges[{j}][1]", b, operator_of, "stage")
        if a in preds[b]:
            raise SpecError(f"{path}.edges[{j}]: duplicate edge {a!r} -> {b!r}")
        preds[b].append(a)
        succs[a].append(b)
    order = _topological(path, operator_of, preds)
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
    for name in order:
        if not any(p in fed for p in preds[name]):
            raise SpecError(
                f"{path}.edges: stage {name!r} is not reachable from any source; add an edge "
                "into it from a source or from a reachable stage"
            )
        fed.add(name)
    sinks = [s for s in operator_of if not succs[s]]
    if len(sinks) != 1:
        raise SpecError(
            f"{path}.edges: a pipeline needs exactly one sink (a stage with no outgoing edge), "
            f"found {sinks}; join the branches into one final stage"
        )
    paths = tuple(_paths(sources, succs, sinks[0]))
    _check_accuracy(path, pipe, operator_of, operators)
    return PipelineIndex(
        spec=pipe,
        order=tuple(order),
        operator_of=operator_of,
        preds={k: tuple(v) for k, v in preds.items()},
        sink=sinks[0],
        paths=paths,
        forks=_forks(order, {k: tuple(v) for k, v in preds.items()}),
        source_kb=sources,
    )


def _forks(order: list[str], preds: dict[str, tuple[str, ...]]) -> dict[str, str | None]:
    """Per stage with several inputs, its immediate dominator (see ``PipelineIndex.forks``):
    a node's dominators are itself and those common to all its inputs (a source's, itself)."""
    rank = {name: i for i, name in enumerate(order)}
    dominators: dict[str, frozenset[str]] = {}
    out: dict[str, str | None] = {}
    for stage in order:
        common = frozenset.intersection(
            *(dominators.get(p, frozenset({p})) for p in preds[stage]))
        dominators[stage] = common | {stage}
        if len(preds[stage]) > 1:
            out[stage] = max(common, key=lambda n: rank.get(n, -1), default=None)
    return out


def _topological(path: str, stages: dict[str, str], preds: dict[str, list[str]]) -> list[str]:
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
           sink: str) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []

    def walk(node: str, trail: tuple[str, ...]) -> None:
        if node == sink:
            out.append(trail)
            return
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
