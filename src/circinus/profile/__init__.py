"""Profiling: measuring real operators incrementally, and the store that keeps every sample."""

from circinus.profile.store import BaseProfileStore, Sample, SqlProfileStore, StoreError

__all__ = ["BaseProfileStore", "Sample", "SqlProfileStore", "StoreError"]
