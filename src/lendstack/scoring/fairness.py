"""Approval and default rates by protected group, with adverse-impact ratios and their CIs.

The adverse-impact ratio (AIR) is a group's approval rate over the most-approved group's, the
quantity behind the four-fifths rule. Its uncertainty comes from a bootstrap stratified by
group: resampling a group's rows and recounting its approvals is exactly a binomial draw, so
the resamples are drawn as binomials, which is fast and needs no row copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MIN_RESAMPLES = 200
_BANDS = 5
_MAX_LEVELS = 10


@dataclass(frozen=True, slots=True)
class GroupRow:
    attribute: str
    group: str
    count: int
    approval_rate: float
    default_rate: float
    air: float
    air_low: float
    air_high: float


def group_labels(column: pd.Series) -> np.ndarray:
    """Groups as strings; a numeric attribute with many values (age) becomes quantile bands."""
    if pd.api.types.is_numeric_dtype(column) and column.nunique() > _MAX_LEVELS:
        banded = pd.qcut(column, _BANDS, duplicates="drop")
        return np.asarray([("missing" if pd.isna(v) else str(v)) for v in banded], dtype=object)
    return np.asarray([("missing" if pd.isna(v) else str(v)) for v in column], dtype=object)


def fairness_table(
    attribute: str,
    groups: np.ndarray,
    pd_: np.ndarray,
    y: np.ndarray | None,
    cutoff: float,
    resamples: int = 1000,
    seed: int = 42,
) -> list[GroupRow]:
    """Approve when PD <= cutoff; AIR against the group with the highest approval rate."""
    if resamples < MIN_RESAMPLES:
        raise ValueError(f"need at least {MIN_RESAMPLES} bootstrap resamples")
    rng = np.random.default_rng(seed)
    names = sorted({str(g) for g in groups})
    approved = pd_ <= cutoff
    counts = np.array([np.sum(groups == g) for g in names])
    rates = np.array([approved[groups == g].mean() for g in names])
    ref = int(np.argmax(rates))
    draws = rng.binomial(counts[:, None], rates[:, None], size=(len(names), resamples))
    boot = draws / counts[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        air_boot = boot / boot[ref]
    rows = []
    for i, g in enumerate(names):
        low, high = np.nanpercentile(air_boot[i], [2.5, 97.5])
        default_rate = float(y[groups == g].mean()) if y is not None else float("nan")
        air = float(rates[i] / rates[ref]) if rates[ref] > 0 else float("nan")
        rows.append(
            GroupRow(
                attribute,
                g,
                int(counts[i]),
                float(rates[i]),
                default_rate,
                air,
                float(low),
                float(high),
            )
        )
    return rows
