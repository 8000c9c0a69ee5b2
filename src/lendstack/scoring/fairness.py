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
        rows.append(  # an AIR that cannot be measured (NaN) is not flagged
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


# --- production fairness: observed approvals and defaults --------------------------------

AIR_FLAG = 0.8
"""The four-fifths rule: an approval-rate ratio below this is flagged for review."""


@dataclass(frozen=True, slots=True)
class ObservedGroupRow:
    """One group's observed approval and default rates, 95% bootstrap CIs, and its AIR.

    `default_rate` is over the group's booked loans whose outcome is observable (`matured`);
    NaN when it has none. `flagged` is AIR < `AIR_FLAG`.
    """

    attribute: str
    group: str
    applications: int
    approved: int
    approval_rate: float
    approval_low: float
    approval_high: float
    matured: int
    defaulted: int
    default_rate: float
    default_low: float
    default_high: float
    air: float
    air_low: float
    air_high: float
    flagged: bool


def _binomial_boot(
    rng: np.random.Generator, counts: np.ndarray, rates: np.ndarray, resamples: int
) -> np.ndarray:
    """Bootstrap resamples of each group's rate; a group resample is a binomial draw."""
    safe = np.where(counts > 0, counts, 1)
    draws = rng.binomial(counts[:, None], np.nan_to_num(rates)[:, None], (len(counts), resamples))
    out = draws / safe[:, None]
    out[counts == 0] = np.nan
    return out


def _ci(values: np.ndarray) -> tuple[float, float]:
    if np.all(np.isnan(values)):
        return float("nan"), float("nan")
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)


MIN_REFERENCE = 30
"""A group needs this many applications to serve as the most-favoured reference: a handful
of approvals in a tiny group would otherwise set the bar for everyone."""


def _reference(rates: np.ndarray, counts: np.ndarray) -> int:
    """The most-favoured group: highest approval rate among groups of at least
    MIN_REFERENCE applications (all groups, if none is that large)."""
    usable = ~np.isnan(rates)
    if not usable.any():
        return 0
    large = usable & (counts >= MIN_REFERENCE)
    pool = large if large.any() else usable
    return int(np.argmax(np.where(pool, rates, -1.0)))


def observed_fairness(
    attribute: str,
    groups: np.ndarray,
    approved: np.ndarray,
    loan_groups: np.ndarray,
    defaulted: np.ndarray,
    resamples: int = 1000,
    seed: int = 42,
) -> list[ObservedGroupRow]:
    """Fairness of decisions actually taken.

    `groups`/`approved` are per application (bool: credit granted). `loan_groups`/`defaulted`
    are per booked loan whose outcome is observable (1.0 defaulted, 0.0 not): approvals are
    measured on recent applications, defaults on matured loans, so the two are separate lists.

    AIR is the group's approval rate over the most favoured group's (`_reference`); its CI
    comes from a seeded bootstrap stratified by group, drawn as binomials like `fairness_table`.
    """
    if resamples < MIN_RESAMPLES:
        raise ValueError(f"need at least {MIN_RESAMPLES} bootstrap resamples")
    rng = np.random.default_rng(seed)
    names = sorted({str(g) for g in groups} | {str(g) for g in loan_groups})
    masks = [groups == g for g in names]
    loan_masks = [loan_groups == g for g in names]
    counts = np.array([int(m.sum()) for m in masks])
    approvals = np.array([int(approved[m].sum()) for m in masks])
    matured = np.array([int(m.sum()) for m in loan_masks])
    bads = np.array([int(np.sum(defaulted[m])) for m in loan_masks])
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(counts > 0, approvals / np.maximum(counts, 1), np.nan)
        d_rates = np.where(matured > 0, bads / np.maximum(matured, 1), np.nan)
    ref = _reference(rates, counts)
    boot = _binomial_boot(rng, counts, rates, resamples)
    d_boot = _binomial_boot(rng, matured, d_rates, resamples)
    with np.errstate(divide="ignore", invalid="ignore"):
        air_boot = boot / boot[ref]
    rows = []
    for i, g in enumerate(names):
        air = float(rates[i] / rates[ref]) if rates[ref] > 0 else float("nan")
        rows.append(  # an AIR that cannot be measured (NaN) is not flagged
            ObservedGroupRow(
                attribute, g, int(counts[i]), int(approvals[i]), float(rates[i]),
                *_ci(boot[i]), int(matured[i]), int(bads[i]), float(d_rates[i]),
                *_ci(d_boot[i]), air, *_ci(air_boot[i]), bool(air < AIR_FLAG),
            )
        )  # fmt: skip
    return rows
