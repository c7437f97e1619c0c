"""PNG figures of a plan: latency-cost frontiers, goodput under load, predicted against simulated
latency, and device use.

Every figure is a pure function of plain records (built from a world, a plan file and a
simulation by :mod:`circinus.report.gather` and :mod:`circinus.report.sweep`) that writes one PNG
and returns its path. Figures are drawn with matplotlib's object interface on the Agg canvas:
no window, no pyplot state shared between calls, the style scoped to each figure. A PNG is
written atomically (through a temporary file next to it).

Usage::

    from circinus.report.plots import DeviceUse, plot_utilisation

    plot_utilisation([DeviceUse("box", "edge", 8, 6, 4.1, 3.9)], [], Path("use.png"))
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.ticker import FuncFormatter, LogLocator, PercentFormatter
from matplotlib.typing import RcKeyType
from scipy.special import gammainc, ndtr

from circinus.estimate.queueing import gamma_fit, quantile

STYLE: dict[RcKeyType, Any] = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "figure.titlesize": 13,
    "figure.titleweight": "bold",
    "legend.fontsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 110,
}
"""Matplotlib settings of every figure (applied while it is drawn, never globally)."""

METHOD_STYLE: dict[str, tuple[str, str]] = {
    "circinus": ("#0072B2", "o"),
    "oracle": ("#000000", "*"),
    "vulcan": ("#E69F00", "s"),
    "jellybean": ("#009E73", "^"),
    "infaas": ("#CC79A7", "D"),
    "nexus": ("#F0E442", "h"),
    "vulcan+select": ("#E69F00", "p"),
    "jellybean+select": ("#009E73", "<"),
    "cloud-only": ("#56B4E9", "v"),
    "edge-only": ("#D55E00", "P"),
    "random": ("#999999", "X"),
}
"""Colour (Okabe-Ito, readable with colour blindness) and marker of each planning method."""

SLO_COLOUR = "#C0392B"
PREDICTED = "#E69F00"
SIMULATED = "#0072B2"
ALLOCATED = "#BFD7EA"
SPACE = "#8B97A5"


@dataclass(frozen=True, eq=False)
class FrontierPanel:
    """The plans of one group of interchangeable queries, as (cost $/h, latency ms) points."""

    title: str
    """What the group is, e.g. ``vision-sd @ shop-north, 1 req/s``."""
    percentile: float
    """SLO percentile every latency is taken at."""
    slo_latency_ms: float | None
    min_accuracy: float | None
    max_cost_per_hour: float | None
    space: np.ndarray
    """Every plan of the group's plan space meeting its accuracy bound, shape ``(n, 2)``:
    ``(cost $/h, latency ms)``, finite."""
    candidates: np.ndarray
    """The candidates the search kept for the group, shape ``(k, 2)``."""
    chosen: np.ndarray
    """The distinct plans the global selection chose for the group's admitted members,
    shape ``(m, 2)``."""
    members: int
    admitted: int


@dataclass(frozen=True)
class LoadPoint:
    """What one planning method achieved with every query's rate scaled by ``load``."""

    method: str
    load: float
    goodput: float
    admitted: int
    queries: int
    total_weight: float
    """Goodput if every query were admitted."""
    cost_per_hour: float
    seconds: float
    """Wall time of planning, s."""


@dataclass(frozen=True, eq=False)
class LatencyPanel:
    """One admitted query's latency: the planner's prediction and the simulator's requests."""

    query: str
    subtitle: str
    """What the plan is, e.g. ``vision-sd, 2 req/s, edge → cloud``."""
    percentile: float
    slo_latency_ms: float | None
    moments: tuple[float, float, float]
    """Predicted ``(mean ms, variance ms², third central moment ms³)`` of the end-to-end
    latency (the third NaN when the plan file lacks it)."""
    simulated_ms: np.ndarray
    """Every measured request's latency, ms (``inf``: never completed)."""


@dataclass(frozen=True)
class DeviceUse:
    """One device or pool: its capacity, what the plan allocates and how busy it is."""

    name: str
    tier: str
    capacity_units: float
    allocated_units: float
    predicted_busy_units: float | None
    """Allocated units times the predicted utilisation of each replica group (``None``: not
    computed)."""
    simulated_busy_units: float | None
    """Units busy serving in the simulation, averaged over the measured window."""


@dataclass(frozen=True)
class LinkUse:
    """One directed link with a capacity: planned and simulated traffic, Mbit/s."""

    name: str
    capacity_mbps: float
    planned_mbps: float
    simulated_mbps: float | None


# -- figure plumbing ---------------------------------------------------------------------------


@contextmanager
def _figure(path: Path, *, width: float, height: float,
            wspace: float | None = None) -> Iterator[Figure]:
    """A figure on the Agg canvas, saved atomically to ``path`` as PNG when the block ends."""
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(width, height), layout=ConstrainedLayoutEngine(wspace=wspace))
        FigureCanvasAgg(fig)
        yield fig
        tmp = path.with_name(path.name + ".tmp")
        fig.savefig(tmp, format="png")
    tmp.replace(path)


def _grid(fig: Figure, n: int, *, cols: int = 2) -> list[Axes]:
    """``n`` panels (at least one) in rows of ``cols``; unused cells are hidden."""
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return axes[: max(n, 1)]


def _empty(ax: Axes, message: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)


def _plain_log(ax: Axes, axis: str) -> None:
    """Log scale ticked at 1, 2, 5 times powers of ten, written plainly (0.2, not 2×10⁻¹)."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    if axis == "x":
        ax.set_xscale("log")
    else:
        ax.set_yscale("log")
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _shared_legend(fig: Figure, axes: Sequence[Axes], *, ncol: int) -> None:
    """One legend below the panels with every label any panel uses, first use first."""
    seen: dict[str, Artist] = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        for h, lab in zip(handles, labels, strict=True):
            seen.setdefault(lab, h)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=ncol,
                   frameon=False)


# -- 1. latency-cost frontiers -----------------------------------------------------------------


def pareto_front(points: np.ndarray) -> np.ndarray:
    """The points of ``(cost, latency)`` rows no other point beats on both, cheapest first.

    Example: ``[[1, 50], [2, 40], [2, 60], [3, 45]]`` gives ``[[1, 50], [2, 40]]``.
    """
    if len(points) == 0:
        return points.reshape(0, 2)
    order = np.lexsort((points[:, 1], points[:, 0]))
    best = np.inf
    keep = []
    for i in order:
        if points[i, 1] < best:
            best = points[i, 1]
            keep.append(i)
    return points[keep]


def plot_frontiers(panels: Sequence[FrontierPanel], path: Path) -> Path:
    """Per query group, every plan as latency against cost, the frontier, the candidates, the
    SLO bound and the chosen plan; one panel per group."""
    with _figure(path, width=11, height=4.2 * max(1, math.ceil(len(panels) / 2)) + 0.9) as fig:
        fig.suptitle("Latency against cost of every plan, per query group")
        axes = _grid(fig, len(panels))
        if not panels:
            _empty(axes[0], "no query has a plan")
        for ax, panel in zip(axes, panels, strict=False):
            _frontier_panel(ax, panel)
        _shared_legend(fig, axes, ncol=3)
    return path


def _frontier_panel(ax: Axes, p: FrontierPanel) -> None:
    pct = f"p{p.percentile:g}"
    slo = [f"{pct} ≤ {p.slo_latency_ms:g} ms" if p.slo_latency_ms is not None else "no bound"]
    if p.min_accuracy is not None:
        slo.append(f"accuracy ≥ {p.min_accuracy:g}")
    if p.max_cost_per_hour is not None:
        slo.append(f"≤ ${p.max_cost_per_hour:g}/h")
    ax.set_title(f"{p.title}\nSLO {', '.join(slo)} · {p.admitted} of {p.members} "
                 f"{'query' if p.members == 1 else 'queries'} admitted")
    if len(p.space) == 0 and len(p.candidates) == 0:
        _empty(ax, "no plan reaches the accuracy bound")
        return
    if len(p.space):
        # Few plans: visible dots; tens of thousands: a faint cloud whose density shows.
        size = float(np.clip(20_000 / len(p.space), 2.0, 16.0))
        alpha = float(np.clip(math.sqrt(400 / len(p.space)), 0.12, 0.7))
        ax.scatter(p.space[:, 0], p.space[:, 1], s=size, color=SPACE, alpha=alpha,
                   linewidths=0, rasterized=True)
        ax.plot([], [], "o", color=SPACE, markersize=5,
                label="a plan of the group's plan space (accuracy met)")
        front = pareto_front(p.space)
        ax.step(front[:, 0], front[:, 1], where="post", color="#2C3E50", linewidth=1.6,
                label="Pareto frontier (no plan is cheaper and faster)")
    if len(p.candidates):
        ax.scatter(p.candidates[:, 0], p.candidates[:, 1], s=55, facecolors="none",
                   edgecolors=SIMULATED, linewidths=1.8, zorder=4,
                   label="candidate kept by the search")
    if len(p.chosen):
        ax.scatter(p.chosen[:, 0], p.chosen[:, 1], s=230, marker="*", color="#F1C40F",
                   edgecolors="black", linewidths=0.8, zorder=5,
                   label="plan chosen by the global selection")
    _plain_log(ax, "x")
    _plain_log(ax, "y")
    top = _latency_top(p)
    if top is not None:
        hidden = int(np.count_nonzero(p.space[:, 1] > top)) if len(p.space) else 0
        ax.set_ylim(top=top)
        if hidden:
            ax.text(0.02, 0.98, f"↑ {hidden:,} slower plans above {top:,.0f} ms", fontsize=8.5,
                    color="#555555", transform=ax.transAxes, ha="left", va="top")
    if p.slo_latency_ms is not None:
        ax.axhline(p.slo_latency_ms, color=SLO_COLOUR, linestyle="--", linewidth=1.4,
                   label="SLO latency bound")
        ax.axhspan(p.slo_latency_ms, ax.get_ylim()[1], color=SLO_COLOUR, alpha=0.05,
                   linewidth=0)
    if p.max_cost_per_hour is not None:
        ax.axvline(p.max_cost_per_hour, color=SLO_COLOUR, linestyle=":", linewidth=1.4,
                   label="SLO cost bound")
    ax.set_xlabel("cost of the plan ($/h)")
    ax.set_ylabel(f"{pct} latency (ms)")


def _latency_top(p: FrontierPanel) -> float | None:
    """Top of the latency axis: a few times the SLO bound, enough for every candidate and
    chosen plan (saturated plans, seconds to minutes slow, would squash the interesting part);
    ``None`` (automatic) when the query has no latency bound."""
    if p.slo_latency_ms is None:
        return None
    shown = [3.0 * p.slo_latency_ms, *(1.3 * p.candidates[:, 1]), *(1.3 * p.chosen[:, 1])]
    top = max(shown)
    return top if len(p.space) and float(p.space[:, 1].max()) > top else None


# -- 2. goodput against load -------------------------------------------------------------------


def plot_goodput_vs_load(points: Sequence[LoadPoint], path: Path) -> Path:
    """Goodput and cost of each method's plan as every query's rate is scaled."""
    with _figure(path, width=11.5, height=4.8, wspace=0.12) as fig:
        fig.suptitle("Goodput and cost under growing load, per planning method")
        left, right = fig.subplots(1, 2)
        if not points:
            _empty(left, "no method was run")
            right.set_visible(False)
            return path
        methods = list(dict.fromkeys(p.method for p in points))
        total = max(p.total_weight for p in points)
        loads = sorted({p.load for p in points})
        for k, method in enumerate(methods):
            mine = sorted((p for p in points if p.method == method), key=lambda p: p.load)
            colour, marker = METHOD_STYLE.get(method, ("#555555", "o"))
            secs = sum(p.seconds for p in mine) / len(mine)
            # Methods often tie: each later line is drawn thinner on top of the earlier ones,
            # so tied lines show as nested stripes instead of hiding each other.
            style = {"color": colour, "marker": marker,
                     "markersize": 9.0 if k == 0 else max(4.0, 7.5 - 0.8 * k),
                     "linewidth": 3.6 if k == 0 else max(1.3, 3.0 - 0.45 * k), "zorder": 2 + k}
            x = [p.load for p in mine]
            left.plot(x, [p.goodput for p in mine],
                      label=f"{method} ({_duration(secs)} per plan)", **style)
            right.plot(x, [p.cost_per_hour for p in mine], color=colour, marker=marker,
                       markersize=6, linewidth=2.4 if k == 0 else 1.6, zorder=2 + k)
        left.axhline(total, color="#555555", linestyle="--", linewidth=1.2,
                     label="every query admitted")
        left.set_ylim(0, total * 1.08)
        left.set_ylabel("goodput (weight of admitted queries)")
        share = left.secondary_yaxis("right", functions=(lambda g: g / total * 100,
                                                         lambda s: s * total / 100))
        share.set_ylabel("share of all queries' weight (%)")
        left.set_title("Goodput: every admitted plan meets its SLO (predicted)")
        right.set_ylabel("cost of the admitted plans ($/h)")
        right.set_ylim(bottom=0)
        right.set_title("Cost of what is admitted")
        for ax in (left, right):
            ax.set_xlabel("load factor (× every query's request rate)")
            ax.set_xticks(loads, [f"{x:g}×" for x in loads])
        fig.legend(loc="outside lower center", ncol=min(4, len(methods) + 1), frameon=False,
                   handles=left.get_legend_handles_labels()[0])
    return path


def _duration(seconds: float) -> str:
    """``0.042`` -> ``42 ms``, ``3.14`` -> ``3.1 s``."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


# -- 3. latency distributions: predicted against simulated -------------------------------------


def predicted_cdf(moments: tuple[float, float, float], x: np.ndarray) -> np.ndarray:
    """The planner's CDF of end-to-end latency at ``x`` (ms): the shifted gamma with the
    predicted mean, variance and third central moment (NaN: the gamma of mean and variance;
    :func:`~circinus.estimate.queueing.gamma_fit`), a step at the mean without variance, zero
    if the mean is infinite. Example: mean 10 and variance 100 (an exponential) give
    ``1 - exp(-x / 10)``."""
    mean, var, third = moments
    if not (math.isfinite(mean) and math.isfinite(var)):
        return np.zeros_like(x, dtype=float)
    if var <= mean * mean * 1e-12:
        return (x >= mean).astype(float)
    shape, scale, shift = gamma_fit(mean, var, third if math.isfinite(third) else None)
    if math.isinf(shape):
        return np.asarray(ndtr((x - mean) / math.sqrt(var)), dtype=float)
    return np.asarray(gammainc(shape, np.maximum(x - shift, 0.0) / scale), dtype=float)


def predicted_quantile(moments: tuple[float, float, float], q: float) -> float:
    """The ``q``-quantile (0 < q < 1) of :func:`predicted_cdf`, ms."""
    mean, var, third = moments
    return quantile(mean, var, q, third)


def empirical_quantile(latencies: np.ndarray, q: float) -> float:
    """The smallest latency with at least ``q`` of the requests at or below it (the simulator's
    definition), ``inf`` when that many never completed."""
    if len(latencies) == 0:
        return math.nan
    return float(np.quantile(latencies, q, method="inverted_cdf"))


def plot_latency_cdfs(panels: Sequence[LatencyPanel], path: Path) -> Path:
    """Per query, the predicted latency CDF against the simulated requests' empirical CDF."""
    with _figure(path, width=11, height=4.0 * max(1, math.ceil(len(panels) / 2)) + 0.8) as fig:
        fig.suptitle("End-to-end latency: planner's prediction against the simulation")
        axes = _grid(fig, len(panels))
        if not panels:
            _empty(axes[0], "no admitted query to compare")
        for ax, panel in zip(axes, panels, strict=False):
            _latency_panel(ax, panel)
        _shared_legend(fig, axes, ncol=4)
    return path


def _latency_panel(ax: Axes, p: LatencyPanel) -> None:
    q = p.percentile / 100
    sim = np.sort(p.simulated_ms)
    done = sim[np.isfinite(sim)]
    pred_q = predicted_quantile(p.moments, q)
    sim_q = empirical_quantile(sim, q)
    ax.set_title(f"{p.query}\n{p.subtitle}")
    tops = [x for x in (predicted_quantile(p.moments, 0.999), pred_q,
                        float(done[-1]) if len(done) else math.nan) if math.isfinite(x)]
    right = 1.1 * max(tops, default=1.0)
    bound = p.slo_latency_ms
    if bound is not None and bound <= 2 * right:
        right = max(right, 1.08 * bound)  # the bound fits without squashing the curves
    lows = [x for x in (predicted_quantile(p.moments, 0.001),
                        float(done[0]) if len(done) else math.nan) if math.isfinite(x)]
    left = 0.85 * min(lows, default=0.0)
    x = np.linspace(left, right, 600)
    if len(sim):
        ys = np.arange(1, len(done) + 1) / len(sim)
        ax.step(np.concatenate([[left], done, [right]]),
                np.concatenate([[0.0], ys, [ys[-1] if len(ys) else 0.0]]), where="post",
                color=SIMULATED, linewidth=2, label="simulated requests (empirical CDF)")
    ax.plot(x, predicted_cdf(p.moments, x), color=PREDICTED, linestyle="--", linewidth=2,
            label="predicted (gamma)")
    ax.axhline(q, color="#555555", linestyle=":", linewidth=1, label="SLO percentile")
    if bound is not None and bound <= right:
        ax.axvline(bound, color=SLO_COLOUR, linestyle="--", linewidth=1.4,
                   label="SLO latency bound")
    elif bound is not None:
        ax.annotate(f"SLO bound {bound:,.0f} ms →", xy=(0.99, 0.5), xycoords="axes fraction",
                    ha="right", va="center", color=SLO_COLOUR, fontsize=9)
    pct = f"p{p.percentile:g}"
    notes = [f"{len(sim):,} requests"]
    if math.isfinite(pred_q):
        ax.plot([pred_q], [q], "o", color=PREDICTED, markersize=7, zorder=5)
        notes.append(f"predicted {pct} {pred_q:,.1f} ms")
    if math.isfinite(sim_q):
        ax.plot([sim_q], [q], "o", color=SIMULATED, markersize=7, zorder=5)
        notes.append(f"simulated {pct} {sim_q:,.1f} ms")
    elif len(sim):
        notes.append(f"simulated {pct}: not completed")
    ax.text(0.97, 0.06, "\n".join(notes), transform=ax.transAxes, ha="right", va="bottom",
            fontsize=9, bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85,
                              "edgecolor": "#CCCCCC"})
    ax.set_xlim(left, right)
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("end-to-end latency (ms)")
    ax.set_ylabel("requests at or below (%)")


# -- 4. device and link use --------------------------------------------------------------------


def plot_utilisation(devices: Sequence[DeviceUse], links: Sequence[LinkUse], path: Path) -> Path:
    """Per device, allocated and busy units as shares of its capacity; per capacity-bound
    link, planned and simulated traffic as shares of its capacity."""
    rows = [len(devices), len(links)] if links else [len(devices)]
    height = 1.6 + 0.42 * sum(max(r, 1) for r in rows) + 0.6 * len(rows)
    with _figure(path, width=10, height=height) as fig:
        fig.suptitle("Resource use: what the plan allocates and how busy it is")
        axes = fig.subplots(len(rows), 1, squeeze=False,
                            height_ratios=[max(r, 1) + 1.5 for r in rows]).ravel()
        _device_bars(axes[0], devices)
        if links:
            _link_bars(axes[1], links)
        _shared_legend(fig, list(axes), ncol=4)
    return path


def _bars(ax: Axes, labels: Sequence[str], series: Sequence[tuple[str, str, list[float | None]]],
          notes: Sequence[str]) -> None:
    """Horizontal grouped bars of shares (None: left out), one group per label, top down."""
    y = np.arange(len(labels))[::-1].astype(float)
    height = 0.8 / len(series)
    top = 1.0
    for k, (label, colour, values) in enumerate(series):
        offs = y + 0.4 - height * (k + 0.5)
        xs = [math.nan if v is None else v for v in values]
        top = max([top, *(v for v in xs if math.isfinite(v))])
        ax.barh(offs, xs, height=height * 0.92, color=colour, label=label)
    ax.axvline(1.0, color="#333333", linewidth=1.2)
    ax.set_yticks(y, labels)
    side = ax.secondary_yaxis("right")
    side.set_yticks(y, notes, fontsize=8.5, color="#333333")
    side.tick_params(length=0)
    ax.set_xlim(0, top * 1.05)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.grid(axis="y", visible=False)


def _device_bars(ax: Axes, devices: Sequence[DeviceUse]) -> None:
    if not devices:
        _empty(ax, "the world has no device")
        return

    def share(v: float | None, d: DeviceUse) -> float | None:
        return None if v is None else v / d.capacity_units

    series: list[tuple[str, str, list[float | None]]] = [
        ("allocated by the plan", ALLOCATED,
         [share(d.allocated_units, d) for d in devices])]
    if any(d.predicted_busy_units is not None for d in devices):
        series.append((PREDICTED_USE, PREDICTED,
                       [share(d.predicted_busy_units, d) for d in devices]))
    if any(d.simulated_busy_units is not None for d in devices):
        series.append((SIMULATED_USE, SIMULATED,
                       [share(d.simulated_busy_units, d) for d in devices]))
    notes = [_device_note(d) for d in devices]
    _bars(ax, [f"{d.name} ({d.tier})" for d in devices], series, notes)
    ax.set_title("Devices and pools: units allocated and busy, as shares of the capacity")
    ax.set_xlabel("share of the device's capacity units (%)")


PREDICTED_USE = "predicted busy units / traffic"
SIMULATED_USE = "simulated busy units / traffic"


def _device_note(d: DeviceUse) -> str:
    """``6 of 8 units allocated; busy 4.1 predicted, 3.9 simulated``."""
    busy = [f"{v:.3g} {what}" for v, what in ((d.predicted_busy_units, "predicted"),
                                              (d.simulated_busy_units, "simulated"))
            if v is not None]
    return (f"{d.allocated_units:g} of {d.capacity_units:g} units allocated"
            + (f"\nbusy {', '.join(busy)}" if busy else ""))


def _link_bars(ax: Axes, links: Sequence[LinkUse]) -> None:
    series: list[tuple[str, str, list[float | None]]] = [
        (PREDICTED_USE, PREDICTED, [ln.planned_mbps / ln.capacity_mbps for ln in links])]
    if any(ln.simulated_mbps is not None for ln in links):
        series.append((SIMULATED_USE, SIMULATED,
                       [None if ln.simulated_mbps is None else ln.simulated_mbps / ln.capacity_mbps
                        for ln in links]))
    notes = [f"{ln.planned_mbps:,.3g} planned"
             + ("" if ln.simulated_mbps is None else f", {ln.simulated_mbps:,.3g} simulated")
             + f" of {ln.capacity_mbps:g} Mbit/s" for ln in links]
    _bars(ax, [ln.name for ln in links], series, notes)
    ax.set_title("Links with a capacity: mean traffic as a share of it")
    ax.set_xlabel("share of the link's capacity (%)")
