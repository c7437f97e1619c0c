"""The service's Prometheus metrics, in a registry of its own (no process-wide state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from circinus.online import OnlinePlanner

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds of the decision latency histogram, s."""


class ServiceMetrics:
    """Counters of decisions, admissions and rejections, the decision latency histogram, and
    gauges of the state (utilisation per device, memory and link; queries admitted and
    waiting; the queue). Safe to update from the writer thread while being scraped."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.decisions = Counter("circinus_decisions", "Decisions committed, by kind.", ["kind"],
                                 registry=r)
        self.admissions = Counter("circinus_admissions", "Arriving queries admitted.",
                                  registry=r)
        self.rejections = Counter(
            "circinus_rejections", "Arriving queries not admitted, by binding obstacle "
            "(accuracy, latency, cost, placement, capacity).", ["reason"], registry=r)
        self.latency = Histogram("circinus_decision_seconds", "Time from taking a decision up "
                                 "to its commit, s.", ["kind"], buckets=LATENCY_BUCKETS,
                                 registry=r)
        self.utilisation = Gauge("circinus_utilisation", "Used over capacity, by resource "
                                 "kind (device, memory, link) and name.", ["kind", "name"],
                                 registry=r)
        self.queries = Gauge("circinus_queries", "Present queries, by state.", ["state"],
                             registry=r)
        self.queue = Gauge("circinus_queue_depth", "Requests waiting for or being served by "
                           "the planner.", registry=r)
        self.refused = Counter("circinus_refused_requests", "Requests refused before the "
                               "planner (429: queue full, 503: not ready).", ["status"],
                               registry=r)
        self.ready_seconds = Gauge("circinus_ready_seconds", "Time from start to ready (state "
                                   "planned or restored from the store), s.", registry=r)
        self._labels: set[tuple[str, str]] = set()

    def observe(self, planner: OnlinePlanner) -> None:
        """Set the gauges of the state from ``planner`` (called by the writer thread)."""
        used, capacity = planner.used(), planner.capacity()
        labels = set()
        for (kind, name), cap in capacity.items():
            if kind in ("device", "memory", "link") and cap > 0:
                self.utilisation.labels(kind, name).set(used.get((kind, name), 0.0) / cap)
                labels.add((kind, name))
        for gone in self._labels - labels:
            self.utilisation.remove(*gone)
        self._labels = labels
        admitted = len(planner.admitted)
        self.queries.labels("admitted").set(admitted)
        self.queries.labels("waiting").set(len(planner.queries) - admitted)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
