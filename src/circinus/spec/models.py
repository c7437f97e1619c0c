"""The world: every input of a planning run, as validated pydantic models.

A *world* describes hardware classes, sites (edge or cloud locations) with their devices and
pools, the network links between sites, operators with their configurations and profiles,
pipelines (DAGs of operators) and the queries to plan. ``docs/world-format.md`` explains the
format with a complete example; ``circinus schema`` prints the JSON Schema generated from these
models.

Units, everywhere: milliseconds (``_ms``), requests per second (``_rps``), kilobytes of 1,024
bytes (``_kb``), megabits per second of 10^6 bits (``_mbps``), US dollars per hour
(``_per_hour``) and per gigabyte of 1,024^3 bytes (``_per_gb``). Accuracy is in whatever unit the
profiles use (a fraction or a percentage); the SLO's ``min_accuracy`` is in the same unit.

Models here check each field on its own; references between objects (a query naming an unknown
pipeline, a cyclic DAG, ...) are checked in :mod:`circinus.spec.validate`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    field_validator,
    model_validator,
)

Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@/+-]*$",
        description="An identifier: letters, digits and _ . : @ / + -, starting alphanumeric.",
    ),
]
ImportPath = Annotated[
    str,
    Field(
        max_length=512,
        pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$",
        description="A Python import path 'package.module:name'.",
    ),
]

# Ranges of the numeric fields (docs/world-format.md, "Ranges", lists them all). Each admits
# every physically meaningful value with room to spare, and bounds what the planner's
# arithmetic meets, so an accepted world always plans: no cost, rate or time overflows.
MIN_BANDWIDTH_MBPS = 0.001
"""1 kbit/s."""
MAX_BANDWIDTH_MBPS = 10_000_000.0
"""10 Tbit/s."""
MAX_CONCURRENT_TRANSFERS = 1_000_000
"""Most full-speed transfers a link's capacity may hold at once (capacity / bandwidth)."""
MAX_RTT_MS = 100_000.0
MIN_UNITS = 0.001
MAX_UNITS = 1_000_000.0
MAX_PRICE_PER_UNIT_HOUR = 10_000.0
MAX_PRICE_PER_GB = 1_000.0
MIN_MEMORY_GB = 0.001
MAX_MEMORY_GB = 1_000_000.0
MIN_SERVICE_MS = 0.0001
"""0.1 µs."""
MAX_SERVICE_MS = 10_000_000.0
"""About 2.8 hours."""
MAX_CV = 100.0
MAX_BATCH = 65_536
MAX_MESSAGE_KB = 10_000_000.0
"""About 10 GB."""
MAX_ACCURACY = 100.0
"""Accuracies are fractions or percentages."""
MIN_LATENCY_SLO_MS = 0.001
MAX_COST_PER_HOUR = 1_000_000_000.0
MIN_RATE_RPS = 0.000001
"""One request in 11.6 days."""
MAX_RATE_RPS = 1_000_000.0
MIN_WEIGHT = 0.000001
MAX_WEIGHT = 1_000_000.0
MIN_WORK_SCALE = 0.001
MAX_WORK_SCALE = 1_000.0
MAX_FANOUT = 1_000.0
"""Most objects (sub-requests) a stage may emit per request on average."""
MAX_FANOUT_CV = 10.0
MAX_BRANCH_POINTS = 8
"""Most stages of one pipeline that choose a branch (the estimator weighs every outcome)."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Control characters (terminal escapes among them); text may hold tabs and line breaks."""
MAX_KNOB_INT = 2**53
"""Largest magnitude of an integer knob value: beyond it a number has no exact float, and
readers of the plan file (JSON) may change it."""


def _plain_text(value: Any) -> Any:
    if isinstance(value, str) and _CONTROL.search(value):
        raise ValueError("contains a control character (such as a terminal escape); remove it")
    return value


def _knob_value(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_KNOB_INT:
        raise ValueError(f"an integer knob value must be within ±2^53, got {len(str(value))} "
                         "digits; write it as a string")
    if isinstance(value, str):
        if len(value) > 256:
            raise ValueError(f"a knob value takes at most 256 characters, got {len(value)}")
        if "\n" in value or "\r" in value or "\t" in value:
            raise ValueError("a knob value is one line; remove the tab or line break")
    return _plain_text(value)


Text = Annotated[str, BeforeValidator(_plain_text), Field(max_length=100_000)]
"""Free text: any characters but control characters, at most 100,000 of them."""
KnobName = Annotated[
    str, BeforeValidator(_plain_text),
    Field(min_length=1, max_length=128, description="A knob's name (printable, one line)."),
]
KnobValue = Annotated[str | int | float | bool, BeforeValidator(_knob_value)]
Number = Annotated[float, Strict()]
"""A number: an integer or a decimal, never a boolean (YAML's ``false`` is not 0) nor a string."""
Integer = Annotated[int, Strict()]
"""An integer, never a boolean, a decimal or a string."""
Config = dict[KnobName, KnobValue]
Sharing = Literal["shared", "dedicated"]
"""Whether a stage runs on a deployment shared with other queries or on replicas of its own."""


class _Model(BaseModel):
    """Base of every spec model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class HardwareClass(_Model):
    """A kind of processor that operators are profiled on (``i7-12700h``, ``rtx4090``)."""

    name: Name = Field(description="Identifier used by devices and profiles.")
    kind: Literal["cpu", "gpu", "accelerator"] = Field(
        default="cpu", description="Broad family, for display only."
    )
    description: Text = Field(default="", description="Free text, e.g. the exact model.")


class Site(_Model):
    """A location: an edge site (a shop, a camera pole, a phone) or a cloud region.

    Devices at the same site talk over the site's local network; traffic between sites needs a
    :class:`Link`. A site without a link from the query's source site is unreachable for it.
    """

    name: Name = Field(description="Identifier used by devices, links and queries.")
    tier: Literal["edge", "cloud"] = Field(description="Which tier the site belongs to.")
    lan_bandwidth_mbps: Number | None = Field(
        default=None,
        ge=MIN_BANDWIDTH_MBPS,
        le=MAX_BANDWIDTH_MBPS,
        description="Bandwidth between two devices of this site in Mbit/s; omitted means "
        "transfers inside the site take no time.",
    )
    lan_rtt_ms: Number = Field(
        default=0.0, ge=0, le=MAX_RTT_MS,
        description="Round-trip time between two devices of this site, ms.",
    )


class Device(_Model):
    """A concrete place to run replicas: one edge box, one worker, or a cloud pool of many units.

    Capacity is counted in *units* (cores, GPUs, whole machines: whatever the profiles' ``units``
    per replica mean on this hardware). A cloud pool is simply a device with many units.
    """

    name: Name = Field(description="Identifier used in plans.")
    site: Name = Field(description="Site the device is at.")
    hardware: Name = Field(description="Hardware class of the device.")
    units: Number = Field(
        ge=MIN_UNITS, le=MAX_UNITS,
        description="Capacity in units (e.g. 8 cores, 64 GPUs, 1 machine).",
    )
    price_per_unit_hour: Number = Field(
        ge=0, le=MAX_PRICE_PER_UNIT_HOUR,
        description="Price of one unit for one hour in $; a plan pays for what it allocates.",
    )
    memory_gb: Number | None = Field(
        default=None,
        ge=MIN_MEMORY_GB,
        le=MAX_MEMORY_GB,
        description="Memory of the whole device in GB; omitted means memory is not a constraint.",
    )


class Link(_Model):
    """A directed network link from one site to another."""

    src: Name = Field(description="Site the traffic leaves.")
    dst: Name = Field(description="Site the traffic enters.")
    bandwidth_mbps: Number = Field(
        ge=MIN_BANDWIDTH_MBPS, le=MAX_BANDWIDTH_MBPS,
        description="Bandwidth seen by one transfer, Mbit/s.",
    )
    rtt_ms: Number = Field(default=0.0, ge=0, le=MAX_RTT_MS, description="Round-trip time, ms.")
    price_per_gb: Number = Field(
        default=0.0, ge=0, le=MAX_PRICE_PER_GB, description="Price of traffic, $ per GB."
    )
    source_price_per_gb: Number | None = Field(
        default=None, ge=0, le=MAX_PRICE_PER_GB,
        description="Price of a source's own messages over the link (a camera's uplink), $ per "
        "GB; omitted: price_per_gb. Traffic between stages pays price_per_gb.",
    )
    capacity_mbps: Number | None = Field(
        default=None,
        ge=MIN_BANDWIDTH_MBPS,
        le=MAX_BANDWIDTH_MBPS,
        description="Total traffic all queries together may send over the link, Mbit/s; omitted "
        "means unlimited.",
    )
    both_ways: bool = Field(
        default=False, description="Also create the reverse link with the same figures."
    )

    @model_validator(mode="after")
    def _distinct_ends(self) -> Link:
        if self.src == self.dst:
            raise ValueError(f"src and dst are both {self.src!r}; use the site's lan_* fields")
        if (self.capacity_mbps is not None
                and self.capacity_mbps > MAX_CONCURRENT_TRANSFERS * self.bandwidth_mbps):
            raise ValueError(
                f"capacity_mbps {self.capacity_mbps!r} is more than {MAX_CONCURRENT_TRANSFERS:,} "
                f"times bandwidth_mbps {self.bandwidth_mbps!r} (that many full-speed transfers "
                "at once); leave capacity_mbps out for a link that is never full")
        return self


MAX_SHARES = 16
"""Most replica shares one profile may list."""


class ReplicaShare(_Model):
    """Another allocation a replica of a profiled configuration may take (e.g. half a GPU), with
    its service times where they were measured.

    Times the share does not give follow from the profile's, all scaled by one factor: the
    share's ``mean_ms`` over the profile's when it gives ``mean_ms``, else the profile's
    ``units`` over the share's (a replica on half the units takes twice as long: the time of a
    compute-bound model, and an upper bound for one that does not fill the device). Memory
    per replica and the variability (cv) are the profile's.
    """

    units: Number = Field(
        ge=MIN_UNITS, le=MAX_UNITS,
        description="Capacity units one replica occupies at this share (e.g. 0.5 of a GPU).",
    )
    mean_ms: Number | None = Field(
        default=None, ge=MIN_SERVICE_MS, le=MAX_SERVICE_MS,
        description="Mean batch-1 service time at this share, ms; omitted: the profile's "
        "mean_ms x profile units / share units (only for a share smaller than the profile's).",
    )
    batch_ms: dict[int, Number] = Field(
        default_factory=dict,
        description="Mean service time of a whole batch at this share, ms, by batch size (one "
        "the profile's batch_ms lists); sizes left out scale with mean_ms.",
    )

    @field_validator("batch_ms")
    @classmethod
    def _batches_valid(cls, value: dict[int, float]) -> dict[int, float]:
        return _check_batches(value)


def _check_batches(value: dict[int, float]) -> dict[int, float]:
    for size, ms in value.items():
        if size < 2:
            raise ValueError(f"batch size must be >= 2 (batch 1 is mean_ms), got {size}")
        if size > MAX_BATCH:
            raise ValueError(f"batch size must be <= {MAX_BATCH}, got "
                             f"{size if size < 10**12 else f'{len(str(size))} digits'}")
        if not MIN_SERVICE_MS <= ms <= MAX_SERVICE_MS:
            raise ValueError(f"batch {size}: service time must be >= {MIN_SERVICE_MS:g} and "
                             f"<= {MAX_SERVICE_MS:g} ms, got {ms!r}")
    return value


class LatencyProfile(_Model):
    """Measured service time of one configuration of an operator on one hardware class."""

    config: Config = Field(
        default_factory=dict,
        description="The configuration: one value for every knob of the operator.",
    )
    hardware: Name = Field(description="Hardware class the measurement was taken on.")
    mean_ms: Number = Field(
        ge=MIN_SERVICE_MS, le=MAX_SERVICE_MS,
        description="Mean service time of one request (batch 1), ms.",
    )
    p90_ms: Number | None = Field(
        default=None,
        ge=MIN_SERVICE_MS,
        le=MAX_SERVICE_MS,
        description="90th percentile of the batch-1 service time, ms; sets the variability "
        "(overrides cv).",
    )
    cv: Number = Field(
        default=0.1,
        ge=0,
        le=MAX_CV,
        description="Coefficient of variation of the service time (std / mean); 0 = deterministic.",
    )
    batch_ms: dict[int, Number] = Field(
        default_factory=dict,
        description="Mean service time of a whole batch, ms, by batch size (>= 2). Batch sizes "
        "listed here may be chosen by the planner.",
    )
    units: Number = Field(
        default=1.0, ge=MIN_UNITS, le=MAX_UNITS,
        description="Capacity units one replica occupies on the device.",
    )
    memory_gb: Number = Field(
        default=0.0, ge=0, le=MAX_MEMORY_GB,
        description=f"Memory one replica needs, GB: 0 (none counted) or at least {MIN_MEMORY_GB}.",
    )
    shares: list[ReplicaShare] = Field(
        default_factory=list, max_length=MAX_SHARES,
        description="Other units a replica may take instead of `units` (e.g. 0.25 and 0.5 of a "
        "GPU), each with its service times; the planner chooses the share per deployment.",
    )

    @field_validator("memory_gb")
    @classmethod
    def _memory_counted(cls, value: float) -> float:
        if 0 < value < MIN_MEMORY_GB:
            raise ValueError(f"must be 0 (not counted) or >= {MIN_MEMORY_GB} GB, got {value!r}")
        return value

    @field_validator("batch_ms")
    @classmethod
    def _batches_valid(cls, value: dict[int, float]) -> dict[int, float]:
        return _check_batches(value)


class ConfigValue(_Model):
    """A value that applies to the configurations matching ``when`` (a partial configuration).

    When several entries match, the one naming the most knobs wins; ties go to the first listed.
    """

    when: Config = Field(
        default_factory=dict, description="Knob values that must match; empty matches all."
    )
    value: Number = Field(description="The value for matching configurations.")


class FanOut(_Model):
    """How many objects (sub-requests) one request becomes after an operator, for the
    configurations matching ``when`` (the most specific entry wins, as for ``output_kb``).

    The count ``k`` of one request has mean ``mean`` and coefficient of variation ``cv``: a
    negative binomial when its variance ``(cv x mean)^2`` is at least the mean (Poisson when
    equal), below it a mix of the Poisson and of the two integers nearest the mean, which
    have the least variance any count of that mean can have (docs/world-format.md, "Fan-out").
    """

    when: Config = Field(
        default_factory=dict, description="Knob values that must match; empty matches all."
    )
    mean: Number = Field(
        ge=0, le=MAX_FANOUT,
        description="Mean number of objects one request becomes (0: none go on).",
    )
    cv: Number = Field(
        default=0.0, ge=0, le=MAX_FANOUT_CV,
        description="Coefficient of variation of the count (std / mean); 0: the two integers "
        "nearest the mean.",
    )


class Operator(_Model):
    """A pipeline stage with knobs; a configuration is one value per knob."""

    name: Name = Field(description="Identifier used by pipelines.")
    knobs: dict[KnobName, list[KnobValue]] = Field(
        default_factory=dict,
        description="Knob name -> allowed values. The configurations are the combinations that "
        "have at least one latency profile. No knobs means a single configuration {}.",
    )
    profiles: list[LatencyProfile] = Field(
        default_factory=list,
        description="Latency per (configuration, hardware class). May be empty for an operator "
        "with an `implementation`: the profiler measures it on `profiling.hardware`.",
    )
    implementation: ImportPath | None = Field(
        default=None,
        description="Import path 'package.module:factory' of an executable implementation: "
        "factory(config) returns a function from a batch of inputs to a batch of outputs. Every "
        "knob combination is then a configuration, measured by `circinus profile`.",
    )
    output_kb: Number | list[ConfigValue] = Field(
        default=0.0,
        description="Size of the message this operator emits per request, KB; a number, or a "
        "list of {when, value} by configuration.",
    )
    accuracy: Number | list[ConfigValue] | None = Field(
        default=None,
        description="Accuracy this operator contributes (used by the pipeline's composition "
        "rule); a number or a list of {when, value}.",
    )
    sharing: Sharing | None = Field(
        default=None,
        description="dedicated: every query gets replicas of this operator of its own (e.g. a "
        "stateful operator); shared: queries with the same configuration on the same device "
        "share one deployment; omitted: the planner's `sharing`.",
    )
    fanout: list[FanOut] | None = Field(
        default=None,
        description="Objects one request becomes after this operator (e.g. a detector's "
        "detections), by configuration: the next stage serves each object as a sub-request "
        "and the request completes when all are done. Omitted: one message per request.",
    )

    @model_validator(mode="after")
    def _profiled_somehow(self) -> Operator:
        if not self.profiles and self.implementation is None:
            raise ValueError("profiles: give at least one latency profile, or an "
                             "`implementation` for the profiler to measure")
        return self

    @field_validator("output_kb")
    @classmethod
    def _sizes_in_range(cls, value: float | list[ConfigValue]) -> float | list[ConfigValue]:
        entries = [value] if isinstance(value, float | int) else [e.value for e in value]
        for size in entries:
            if not 0 <= size <= MAX_MESSAGE_KB:
                raise ValueError(f"a message size must be >= 0 and <= {MAX_MESSAGE_KB:g} KB, "
                                 f"got {size!r}")
        return value

    @field_validator("accuracy")
    @classmethod
    def _accuracies_in_range(cls, value: float | list[ConfigValue] | None
                             ) -> float | list[ConfigValue] | None:
        entries = [] if value is None else [value] if isinstance(value, float | int) else [
            e.value for e in value]
        for accuracy in entries:
            if not 0 <= accuracy <= MAX_ACCURACY:
                raise ValueError(f"an accuracy must be >= 0 and <= {MAX_ACCURACY:g} (a fraction "
                                 f"or a percentage), got {accuracy!r}")
        return value

    @field_validator("knobs")
    @classmethod
    def _knobs_nonempty(cls, value: dict[str, list[KnobValue]]) -> dict[str, list[KnobValue]]:
        for knob, values in value.items():
            if not values:
                raise ValueError(f"knob {knob!r} has no values")
            if len(set(map(repr, values))) != len(values):
                raise ValueError(f"knob {knob!r} lists a value twice")
        return value


class Source(_Model):
    """Where requests enter a pipeline (a camera, a microphone)."""

    name: Name = Field(description="Identifier used by the pipeline's edges and by queries.")
    output_kb: Number = Field(
        ge=0, le=MAX_MESSAGE_KB, description="Size of one request's input message, KB."
    )


class Stage(_Model):
    """One node of a pipeline: an instance of an operator, or a join that only waits.

    A stage without an operator takes no replica, no service time and no cost: it is done when
    its last input is, and passes its inputs on to the stages after it.
    """

    name: Name = Field(description="Identifier of the node inside the pipeline.")
    operator: Name | None = Field(
        default=None,
        description="The operator this node runs; omitted: the node only joins its inputs "
        "(no replica, no service time, no cost), e.g. the sink of parallel branches.",
    )


class AccuracyEntry(_Model):
    """One row of an end-to-end accuracy table."""

    config: dict[Name, Config] = Field(
        description="Stage name -> its (partial) configuration; stages left out match anything."
    )
    accuracy: Number = Field(
        ge=0, le=MAX_ACCURACY, description="End-to-end accuracy of matching plans."
    )


class AccuracyModel(_Model):
    """How the end-to-end accuracy of a pipeline follows from its stages' configurations."""

    rule: Literal["table", "product", "min", "mean", "measured", "none"] = Field(
        default="product",
        description="table: look the configuration up in `table` (the most specific match "
        "wins); product/min/mean: compose the operators' own `accuracy`; measured: run the "
        "pipeline's executable stages on its `dataset` and compare with the labels; none: no "
        "accuracy.",
    )
    table: list[AccuracyEntry] = Field(
        default_factory=list, description="Rows for rule=table."
    )


class Branch(_Model):
    """A stage whose requests take one of its outgoing edges by chance (a router, a cascade).

    Each request of stage ``at`` goes to successor ``s`` with probability ``to[s]``, to at most
    one of them; with the rest, ``1 - sum``, to none of them. Edges out of ``at`` not named in
    ``to`` are always taken.
    """

    at: Name = Field(description="The stage that chooses.")
    to: dict[Name, Number] = Field(
        min_length=1,
        description="Successor stage -> probability that a request goes there; they sum to at "
        "most 1.",
    )

    @field_validator("to")
    @classmethod
    def _probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for stage, p in value.items():
            if not 0 <= p <= 1:
                raise ValueError(f"stage {stage!r}: a probability must be >= 0 and <= 1, got "
                                 f"{p!r}")
        total = sum(value.values())
        if total > 1 + 1e-9:
            raise ValueError(f"the probabilities sum to {total:g}; a request takes at most one "
                             "branch, so they must sum to at most 1 (the rest takes none)")
        return value


class Pipeline(_Model):
    """A DAG of stages from sources to one sink."""

    name: Name = Field(description="Identifier used by queries.")
    sources: list[Source] = Field(min_length=1, description="Entry points of requests.")
    stages: list[Stage] = Field(min_length=1, description="The operator instances.")
    edges: list[tuple[Name, Name]] = Field(
        min_length=1, description="[from, to] pairs; from is a source or a stage, to a stage."
    )
    accuracy: AccuracyModel = Field(
        default_factory=AccuracyModel, description="End-to-end accuracy model."
    )
    branches: list[Branch] = Field(
        default_factory=list, max_length=MAX_BRANCH_POINTS,
        description="Stages whose requests take one of their outgoing edges by chance; "
        "omitted: every request takes every edge.",
    )
    dataset: ImportPath | None = Field(
        default=None,
        description="Import path 'package.module:function' of the labelled profiling inputs "
        "(a circinus.executable.Dataset); needed by accuracy rule 'measured'.",
    )


class Slo(_Model):
    """The objectives one query must meet; omitted objectives are not constrained."""

    latency_ms: Number | None = Field(
        default=None, ge=MIN_LATENCY_SLO_MS, le=MAX_SERVICE_MS,
        description="Bound on end-to-end latency at `percentile`, ms.",
    )
    percentile: Number = Field(
        default=99.0, ge=1, le=99.999, description="Percentile the latency bound applies to."
    )
    min_accuracy: Number | None = Field(
        default=None, ge=0, le=MAX_ACCURACY, description="Lowest acceptable end-to-end accuracy."
    )
    max_cost_per_hour: Number | None = Field(
        default=None, ge=0, le=MAX_COST_PER_HOUR,
        description="Highest acceptable cost of the query's plan, $/h.",
    )


class Query(_Model):
    """A long-lived serving request: one pipeline instance with its own rate and SLO."""

    name: Name = Field(description="Identifier, unique in the world.")
    pipeline: Name = Field(description="Pipeline to run.")
    sources: dict[str, Name] = Field(
        description="Pipeline source -> site where its data originates."
    )
    rate_rps: Number = Field(
        ge=MIN_RATE_RPS, le=MAX_RATE_RPS, description="Request rate, requests per second."
    )
    slo: Slo = Field(default_factory=Slo, description="Objectives.")
    weight: Number = Field(
        default=1.0, ge=MIN_WEIGHT, le=MAX_WEIGHT,
        description="Value of serving this query (goodput).",
    )
    work_scale: dict[Name, Number] = Field(
        default_factory=dict,
        description="Stage -> multiplier of its profiled service time for this query's requests "
        "(e.g. its mean prompt length over the profile's); stages left out use 1.",
    )
    sharing: Sharing | None = Field(
        default=None,
        description="dedicated: this query's stages run on replicas of their own (isolation); "
        "shared: on deployments shared with other queries; omitted: the planner's `sharing`. "
        "A stage is dedicated when its query or its operator asks for it.",
    )
    source_rate_rps: dict[Name, Number] = Field(
        default_factory=dict,
        description="Source -> its own message rate, req/s (e.g. a microphone at 50 while the "
        "camera's requests come at rate_rps); a join takes the latest message of such a source "
        "without waiting. Sources left out emit one message per request.",
    )
    source_output_kb: dict[Name, Number] = Field(
        default_factory=dict,
        description="Source -> size of this query's messages from it, KB (e.g. an HD camera); "
        "sources left out send the pipeline source's output_kb.",
    )

    @field_validator("source_rate_rps")
    @classmethod
    def _source_rates_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for source, rate in value.items():
            if not MIN_RATE_RPS <= rate <= MAX_RATE_RPS:
                raise ValueError(f"source {source!r}: rate must be >= {MIN_RATE_RPS:f} and <= "
                                 f"{MAX_RATE_RPS:.0f} req/s, got {rate!r}")
        return value

    @field_validator("source_output_kb")
    @classmethod
    def _source_sizes_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for source, size in value.items():
            if not 0 <= size <= MAX_MESSAGE_KB:
                raise ValueError(f"source {source!r}: a message size must be >= 0 and <= "
                                 f"{MAX_MESSAGE_KB:.0f} KB, got {size!r}")
        return value

    @field_validator("work_scale")
    @classmethod
    def _scales_positive(cls, value: dict[str, float]) -> dict[str, float]:
        for stage, factor in value.items():
            if factor <= 0:
                raise ValueError(f"stage {stage!r}: multiplier must be > 0, got {factor!r}")
            if not MIN_WORK_SCALE <= factor <= MAX_WORK_SCALE:
                raise ValueError(f"stage {stage!r}: multiplier must be >= {MIN_WORK_SCALE:g} and "
                                 f"<= {MAX_WORK_SCALE:g}, got {factor!r}")
        return value


class PlannerSettings(_Model):
    """Knobs of the planner itself; every one has a sensible default."""

    max_utilization: Number = Field(
        default=0.8,
        ge=0.01,
        le=1,
        description="Highest utilisation allowed for any replica group (load / capacity).",
    )
    max_devices_per_operator: Integer = Field(
        default=1,
        ge=1,
        le=16,
        description="An operator may be spread over up to this many devices, one replica on "
        "each (e.g. several single-machine workers).",
    )
    extra_replicas: Integer = Field(
        default=1,
        ge=0,
        le=8,
        description="Replicas beyond the minimum the planner tries, to trade cost for latency.",
    )
    candidates_per_query: Integer = Field(
        default=8, ge=1, le=64, description="Candidate plans kept per query for selection "
        "(with shared deployments, up to one in eight more: plans with a stage on more replicas "
        "than its utilisation level needs)."
    )
    time_limit_s: Number = Field(
        default=30.0, ge=0.1, le=86_400,
        description="Time budget of the global selection solver, seconds.",
    )
    partition_above: Integer = Field(
        default=400_000, ge=1, le=100_000_000,
        description="Candidates (all queries' together) above which the selection is "
        "partitioned: the queries split into `partitions` parts, each with a share of every "
        "capacity, selected apart, merged and repaired, the gap reported against a Lagrangian "
        "bound of the whole problem. Below it the selection is exact (the MILP, or the LP "
        "rounding above 3,000 candidates).",
    )
    partitions: Integer = Field(
        default=4, ge=1, le=256,
        description="Parts of a partitioned selection (see `partition_above`).",
    )
    why_not_time_s: Number = Field(
        default=5.0, ge=0.1, le=86_400,
        description="Time budget for finding rejected queries' nearest admissible SLOs, "
        "seconds, once per class of queries alike but for their names, the largest classes "
        "first (`circinus plan` searches on every core); the ones past it are still given "
        "the objective or resource that stops them, without a nearest SLO.",
    )
    tiers: tuple[Literal["edge", "cloud"], ...] = Field(
        default=("edge", "cloud"),
        min_length=1,
        description="Tiers whose devices plans may use (e.g. only the cloud, for a single-tier "
        "baseline).",
    )
    seed: Integer = Field(
        default=0, ge=0, le=2**32 - 1, description="Seed of every stochastic search."
    )
    sharing: Literal["shared", "dedicated", "mixed"] = Field(
        default="shared",
        description="shared: one deployment per (operator configuration, device, batch size, "
        "utilisation level) serves every query routed to it, its replicas sized for their "
        "summed load (what a serving engine runs); dedicated: every query gets replicas of its "
        "own; mixed: each stage may take either (more plans to search; it pays off for "
        "low-rate, long-service stages). A query or operator may override it with its own "
        "`sharing`.",
    )
    utilization_levels: Integer = Field(
        default=2,
        ge=1,
        le=8,
        description="Utilisations a shared deployment may be sized for: max_utilization x k / n "
        "for k = n..1 (n this number; 2 gives 0.8 and 0.4 of the default bound). A lower level "
        "buys latency with replicas; each level multiplies the options the search weighs.",
    )
    link_check: bool = Field(
        default=True,
        description="After the selection, estimate the admitted plans again at the utilisation "
        "of the shared links they cross (transfers slowed by sharing) and drop those that then "
        "miss their SLO, repairing the selection; off, plans are estimated as if alone on "
        "their links.",
    )


class ProfilingSettings(_Model):
    """How executable operators and measured accuracies are profiled (``circinus profile``)."""

    hardware: Name | None = Field(
        default=None,
        description="Hardware class of the machine that profiles: measured latencies are "
        "recorded for it. Needed when an operator has an `implementation`.",
    )
    confidence: Number = Field(
        default=0.99, gt=0.5, lt=1,
        description="Confidence of the intervals that decide when a candidate is measured "
        "enough.",
    )
    round_size: Integer = Field(
        default=16, ge=1, le=100_000, description="Inputs per candidate per round."
    )
    min_samples: Integer = Field(
        default=32, ge=2, le=1_000_000,
        description="Inputs a candidate is measured on before it may stop.",
    )
    arms_per_round: Integer = Field(
        default=4, ge=1, le=10_000, description="Undecided candidates measured per round."
    )
    latency_precision: Number = Field(
        default=0.1, gt=0, lt=1,
        description="A latency is measured until its interval's half-width is at most this "
        "fraction of its mean.",
    )
    exploration: Number = Field(
        default=0.05, ge=0, le=1_000, description="Exploration bonus of the round allocation."
    )
    strata: Integer = Field(default=8, ge=1, le=1_000, description="k-means strata of the inputs.")
    max_inputs: Integer | None = Field(
        default=None, ge=1, le=10**9, description="Use only the first inputs of each dataset."
    )


class HopFigures(_Model):
    """The overhead of one stage call that runs on one tier (see :class:`RuntimeSettings`)."""

    hop_mean_ms: Number = Field(ge=0, le=100_000,
                                description="Mean overhead of one stage call there, ms.")
    hop_sd_ms: Number = Field(
        default=0.0, ge=0, le=100_000,
        description="Standard deviation of the overhead of one stage call there, ms.")
    samples: int = Field(default=0, ge=0, le=10**12, strict=True,
                         description="Requests of queries with calls there the figures rest on.")


class TierFigures(_Model):
    """Per-call figures of the stage calls that run on each tier; a tier without its own uses
    the world-wide figure."""

    edge: HopFigures | None = Field(default=None, description="Calls served on an edge site.")
    cloud: HopFigures | None = Field(default=None, description="Calls served on a cloud site.")


class RuntimeSettings(_Model):
    """What the serving engine adds to every stage call, as ``circinus calibrate`` measured it.

    A request of a pipeline of ``k`` stages is ``k`` calls from its pipeline's ingress to the
    stages' deployments, plus the call that brings it to the ingress; the overhead of that last
    call is spread over the stage calls (``k`` stage calls cost ``k x hop_mean_ms`` in all, with
    variance ``k x hop_sd_ms^2``). The estimator adds it to every stage's latency.

    NOTE (per tier): a call's overhead depends on where the called replica runs. On one machine
    the cloud's replicas share the head node's cores with the ingress and the proxy, and every
    call to them crosses an emulated link; an edge box runs its replicas on cores of its own
    (served OCR, the same plan's calls: 7.4 ms mean, 2.5 ms sd on the edge boxes against a tail
    5-26 % longer on the cloud cores than one world-wide figure predicts). ``tiers`` keys the
    figures by the tier of the called replica's site: every world declares it for every site, so
    the figures carry over to worlds and plans not measured, and the calibration runs can tell
    the two apart whenever their queries call the tiers in different proportions. Finer keys
    (per hardware class, per site) would leave most of a new plan's places without a figure of
    their own. A stage split over several tiers pays the mixture of their figures (by its
    shares). ``hop_mean_ms`` / ``hop_sd_ms`` stay the figure of a tier without its own.
    """

    engine: Literal["ray-serve"] = Field(
        default="ray-serve", description="Serving engine the figures were measured on.")
    hop_mean_ms: Number = Field(ge=0, le=100_000,
                                description="Mean overhead of one stage call, ms.")
    hop_sd_ms: Number = Field(
        default=0.0, ge=0, le=100_000,
        description="Standard deviation of the overhead of one stage call, ms.")
    samples: int = Field(default=0, ge=0, le=10**12, strict=True,
                         description="Requests the figures rest on.")
    tiers: TierFigures | None = Field(
        default=None, description="Figures of the calls served on each tier (null, or a tier "
        "left out: the world-wide figure).")
    note: str = Field(default="", description="Where and how they were measured.")

    def figures(self, tier: str) -> tuple[float, float]:
        """Mean and standard deviation (ms) of one call served on ``tier``."""
        own = None if self.tiers is None else getattr(self.tiers, tier, None)
        if own is None:
            return self.hop_mean_ms, self.hop_sd_ms
        return own.hop_mean_ms, own.hop_sd_ms

    def document(self) -> dict[str, Any]:
        """The section as written in a world file (tiers without figures left out)."""
        doc = self.model_dump(mode="json")
        tiers = {k: v for k, v in (doc.pop("tiers") or {}).items() if v is not None}
        note = doc.pop("note")
        if tiers:
            doc["tiers"] = tiers
        doc["note"] = note
        return doc


class World(_Model):
    """Everything a planning run needs."""

    version: Literal[1] = Field(default=1, description="Format version.")
    name: Name = Field(default="world", description="Name shown in reports.")
    description: Text = Field(default="", description="Free text: origin, attribution, notes.")
    hardware: list[HardwareClass] = Field(min_length=1, description="Hardware classes.")
    sites: list[Site] = Field(min_length=1, description="Edge and cloud locations.")
    devices: list[Device] = Field(min_length=1, description="Devices and pools.")
    links: list[Link] = Field(default_factory=list, description="Directed inter-site links.")
    operators: list[Operator] = Field(min_length=1, description="Operators.")
    pipelines: list[Pipeline] = Field(min_length=1, description="Pipelines.")
    queries: list[Query] = Field(description="Queries to plan.")
    planner: PlannerSettings = Field(
        default_factory=PlannerSettings, description="Planner settings."
    )
    profiling: ProfilingSettings = Field(
        default_factory=ProfilingSettings, description="Profiler settings."
    )
    runtime: RuntimeSettings | None = Field(
        default=None, description="Per-call overhead of the serving engine (null: none "
        "modelled); written by `circinus calibrate`.")
