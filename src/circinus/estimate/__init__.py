"""Performance estimation: predicted latency, accuracy, cost and resource use of a plan."""

from circinus.estimate.analytic import AnalyticEstimator
from circinus.estimate.base import (
    EPS,
    BaseEstimator,
    Estimate,
    Shares,
    StageEstimate,
    TransferEstimate,
)

__all__ = [
    "EPS",
    "AnalyticEstimator",
    "BaseEstimator",
    "Estimate",
    "Shares",
    "StageEstimate",
    "TransferEstimate",
]
