"""The exception tree of Circinus, named after outcomes.

Every error a user can cause derives from :class:`CircinusError`; the CLI maps each class to an
exit code (see :data:`EXIT_CODES`) and prints its message on one line, never a traceback unless
``--debug`` is given.
"""

from __future__ import annotations


class CircinusError(Exception):
    """Base of every error Circinus raises on purpose."""

    exit_code = 1


class SpecError(CircinusError):
    """A world file (or a plan file) is malformed: bad syntax, unknown key, wrong type,
    value out of range, dangling reference or a cyclic pipeline.

    The message starts with the path of the offending field, e.g.
    ``queries[3].slo.latency_ms: must be > 0, got -5``.
    """

    exit_code = 2


class UnknownNameError(SpecError):
    """A request names a query, device or link the planner does not know (e.g. the departure of
    a query that never arrived). The message lists what is known or says how to find it."""


class InfeasibleError(CircinusError):
    """The request cannot be satisfied at all (for example no plan exists for any query)."""

    exit_code = 3


class SolverBudgetExceeded(CircinusError):
    """The selection solver ran out of its time budget without any feasible answer."""

    exit_code = 4


class TooLargeError(CircinusError):
    """The request is beyond the stated size limit of the method asked for (e.g. the oracle's
    plan space per query); the message gives the size, the limit and the way out."""

    exit_code = 5
