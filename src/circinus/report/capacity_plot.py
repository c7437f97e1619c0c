"""The capacity figure: goodput and cost against each swept device's capacity.

One panel per device (``circinus capacity``'s sweeps): the share of query weight admitted
(left axis) and, on the right axis, the cost of the selected plans and of all additions, $/h;
today's capacity and the suggested one marked, the asked goodput drawn across. Drawn from the
capacity file's plain records, like every figure of :mod:`circinus.report.plots`.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import MaxNLocator, PercentFormatter

from circinus.capacity.file import CapacityFile, SweepOut
from circinus.report.plots import PREDICTED, SIMULATED, SLO_COLOUR, SPACE, _figure, _grid

PLAN_COST = "#009E73"


def plot_capacity(file: CapacityFile, path: Path) -> Path:
    """Write the figure of ``file``'s sweeps to ``path`` (PNG) and return the path."""
    sweeps = file.sweeps
    rows = max(1, (len(sweeps) + 1) // 2)
    with _figure(path, width=11, height=3.6 * rows + 1.1) as fig:
        axes = _grid(fig, len(sweeps))
        if not sweeps:
            axes[0].set_axis_off()
            axes[0].text(0.5, 0.5, "no device to sweep", ha="center", va="center")
        for ax, sweep in zip(axes, sweeps, strict=False):
            _panel(ax, sweep, file.target_goodput)
        fig.suptitle(f"{file.world}: goodput and cost against capacity (target "
                     f"{file.target_goodput:.0%}, additions ${file.cost_per_hour:.3g}/h)")
        handles, labels = [], []
        for ax in fig.axes:
            h, lab = ax.get_legend_handles_labels()
            for one, name in zip(h, lab, strict=True):
                if name not in labels:
                    handles.append(one)
                    labels.append(name)
        fig.legend(handles, labels, loc="outside lower center", ncol=5, frameon=False)
    return path


def _panel(ax: object, sweep: SweepOut, target: float) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    pts = [p for p in sweep.points if p.goodput is not None]
    x = [p.units for p in pts]
    ax.plot(x, [p.goodput or 0.0 for p in pts], marker="o", color=SIMULATED,
            label="goodput (share)")
    ax.axhline(target, color=SLO_COLOUR, linestyle=":", linewidth=1.2, label="asked goodput")
    ax.axvline(sweep.units_now, color=SPACE, linestyle="--", linewidth=1, label="today")
    ax.axvline(sweep.units_suggested, color=PREDICTED, linestyle="-", linewidth=1.5,
               label="suggested")
    ax.set_xlabel(f"{sweep.name} units")
    ax.set_ylabel("goodput")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(sweep.name)
    cost = ax.twinx()
    cost.spines["right"].set_visible(True)
    cost.grid(False)
    cost.plot(x, [p.plan_cost_per_hour or 0.0 for p in pts], marker="s", markersize=4,
              color=PLAN_COST, label="plan cost $/h")
    cost.plot(x, [p.added_cost_per_hour for p in pts], linestyle="--", color=PLAN_COST,
              alpha=0.6, label="additions $/h")
    cost.set_ylabel("$/h")
    cost.set_ylim(bottom=0)
