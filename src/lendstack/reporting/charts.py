"""Small chart helpers returning matplotlib Figures, ready for `Page.chart`.

They build `Figure` objects directly (no pyplot state), so they work headless, in threads and in
tests. Each takes plain Python data, so callers need not know matplotlib.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

_SIZE = (6.4, 3.6)


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    title: str,
    xlabel: str = "",
    ylabel: str = "",
) -> Figure:
    """One line per named series of (x, y) points; a legend when there is more than one."""
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    for name, points in series.items():
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        ax.plot(xs, ys, marker="o" if len(points) < 30 else None, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if len(series) > 1:
        ax.legend(fontsize="small")
    return fig


def bar_chart(
    values: Mapping[str, float],
    title: str,
    xlabel: str = "",
    ylabel: str = "",
    horizontal: bool = False,
) -> Figure:
    """One bar per label; horizontal suits long labels (provinces, partners)."""
    labels = list(values)
    heights = [float(v) for v in values.values()]
    size = (6.4, max(2.4, 0.28 * len(labels) + 1.2)) if horizontal else _SIZE
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    if horizontal:
        ax.barh(labels, heights)
    else:
        ax.bar(labels, heights)
        if len(labels) > 6:
            ax.tick_params(axis="x", labelrotation=45)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return fig


def histogram(
    values: Sequence[float] | Mapping[str, Sequence[float]],
    title: str,
    xlabel: str = "",
    ylabel: str = "count",
    bins: int | Sequence[float] = 40,
    density: bool = False,
) -> Figure:
    """A histogram of one sample, or overlaid histograms of named samples on shared bins."""
    raw = dict(values) if isinstance(values, Mapping) else {"": values}
    samples = {k: np.asarray(v, dtype=np.float64) for k, v in raw.items()}
    fig = Figure(figsize=_SIZE)
    ax = fig.add_subplot()
    edges: Any = bins
    if isinstance(bins, int):
        sizes = [s for s in samples.values() if s.size]
        low = min((float(s.min()) for s in sizes), default=0.0)
        high = max((float(s.max()) for s in sizes), default=1.0)
        high = high if high > low else low + 1.0
        edges = np.linspace(low, high, bins + 1)
    alpha = 0.6 if len(samples) > 1 else 1.0
    for name, sample in samples.items():
        ax.hist(sample, bins=edges, alpha=alpha, density=density, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if len(samples) > 1:
        ax.legend(fontsize="small")
    return fig
