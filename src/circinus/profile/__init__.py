"""Profiling: measuring real operators incrementally, and the store that keeps every sample.

* :mod:`~circinus.profile.store` - durable samples (SQLite or PostgreSQL);
* :mod:`~circinus.profile.stats` - running statistics and confidence intervals;
* :mod:`~circinus.profile.stop` - stop rules (interval on one side of the bound, dominated);
* :mod:`~circinus.profile.allocate` - which undecided candidates get the next round;
* :mod:`~circinus.profile.strata` - k-means strata and a stratified input order;
* :mod:`~circinus.profile.executor` - what runs a configuration vector on an input (for real,
  or drawn from a table-driven world's tables);
* :mod:`~circinus.profile.profiler` - the precision-aware profiling loop;
* :mod:`~circinus.profile.measure` - a world with unknown estimates in, a measured world out.
"""

from circinus.profile.allocate import Arm, allocate
from circinus.profile.executor import BaseExecutor, LiveExecutor, Outcome, TableExecutor
from circinus.profile.measure import Measured, measure_tables, measure_world
from circinus.profile.profiler import PipelineProfile, Profiler, Progress
from circinus.profile.stats import (
    Interval,
    RunningStats,
    clopper_pearson_interval,
    t_interval,
    wilson_interval,
)
from circinus.profile.stop import (
    AnyStopRule,
    BaseStopRule,
    CIStopRule,
    Decision,
    DominatedStopRule,
    Target,
)
from circinus.profile.store import (
    BaseProfileStore,
    MemoryProfileStore,
    Sample,
    SqlProfileStore,
    StoreError,
    default_store_url,
)
from circinus.profile.strata import kmeans_strata, stratified_order
from circinus.spec.unknowns import needs_profiling, pipelines_to_measure

__all__ = [
    "AnyStopRule",
    "Arm",
    "BaseExecutor",
    "BaseProfileStore",
    "BaseStopRule",
    "CIStopRule",
    "Decision",
    "DominatedStopRule",
    "Interval",
    "LiveExecutor",
    "Measured",
    "MemoryProfileStore",
    "Outcome",
    "PipelineProfile",
    "Profiler",
    "Progress",
    "RunningStats",
    "Sample",
    "SqlProfileStore",
    "StoreError",
    "TableExecutor",
    "Target",
    "allocate",
    "clopper_pearson_interval",
    "default_store_url",
    "kmeans_strata",
    "measure_tables",
    "measure_world",
    "needs_profiling",
    "pipelines_to_measure",
    "stratified_order",
    "t_interval",
    "wilson_interval",
]
