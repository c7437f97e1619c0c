"""Per-query candidate search."""

from circinus.search.base import BaseSearch, Candidate, QueryCandidates
from circinus.search.exhaustive import ExhaustiveSearch

__all__ = ["BaseSearch", "Candidate", "ExhaustiveSearch", "QueryCandidates"]
