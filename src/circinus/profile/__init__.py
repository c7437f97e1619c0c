"""Profiling: measuring real operators incrementally, and the store that keeps every sample.

* :mod:`~circinus.profile.store` - durable samples (SQLite or PostgreSQL);
* :mod:`~circinus.profile.stats` - running statistics and confidence intervals;
* :mod:`~circinus.profile.stop` - stop rules (interval on one side of the bound, dominated);
* :mod:`~circinus.profile.allocate` - which undecided candidates get the next round;
* :mod:`~circinus.profile.strata` - k-means strata and a stratified input order.
"""

from circinus.profile.allocate import Arm, allocate
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
from circinus.profile.store import BaseProfileStore, Sample, SqlProfileStore, StoreError
from circinus.profile.strata import kmeans_strata, stratified_order

__all__ = [
    "AnyStopRule",
    "Arm",
    "BaseProfileStore",
    "BaseStopRule",
    "CIStopRule",
    "Decision",
    "DominatedStopRule",
    "Interval",
    "RunningStats",
    "Sample",
    "SqlProfileStore",
    "StoreError",
    "Target",
    "allocate",
    "clopper_pearson_interval",
    "kmeans_strata",
    "stratified_order",
    "t_interval",
    "wilson_interval",
]
