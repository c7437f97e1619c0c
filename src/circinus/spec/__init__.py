"""The world specification: models, loading, validation and the look-up index."""

from circinus.spec.index import ConfigKey, OperatorIndex, PipelineIndex, WorldIndex
from circinus.spec.load import load_indexed_world, load_world, parse_world, read_document
from circinus.spec.models import (
    Device,
    HardwareClass,
    LatencyProfile,
    Link,
    Operator,
    Pipeline,
    PlannerSettings,
    ProfilingSettings,
    Query,
    Site,
    Slo,
    World,
)
from circinus.spec.validate import build_index

__all__ = [
    "ConfigKey",
    "Device",
    "HardwareClass",
    "LatencyProfile",
    "Link",
    "Operator",
    "OperatorIndex",
    "Pipeline",
    "PipelineIndex",
    "PlannerSettings",
    "ProfilingSettings",
    "Query",
    "Site",
    "Slo",
    "World",
    "WorldIndex",
    "build_index",
    "load_indexed_world",
    "load_world",
    "parse_world",
    "read_document",
]
