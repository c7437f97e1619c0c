"""Benchmarks: methods side by side on the same worlds, with fixed seeds."""

from circinus.bench.methods import METHODS, Method

__all__ = ["METHODS", "Method"]
