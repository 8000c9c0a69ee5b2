"""Reason codes: why a borrower's PD is what it is, in stable codes and plain words.

Champion reasons are per-feature log-odds contributions of the blended model (TreeSHAP via
LightGBM's `pred_contrib` for the trees, coefficient x value for the linear parts) measured
against the **population mean**: the average contribution of each feature over the training
data. We use the population mean rather than the approval cutoff because it is what TreeSHAP
natively measures (no background sample or interventional re-weighting is needed), it does not
move when credit policy moves the cutoff, and it answers the question regulators ask: what
about this applicant differs from a typical one and pushes the risk up. A positive
contribution pushes toward default; only those are adverse reasons.

Scorecard reasons are the classic ones: points below the characteristic's maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lendstack.scoring.features import FeatureSpec

TOP_REASONS = 4


@dataclass(frozen=True, slots=True)
class Reason:
    """`impact` is log-odds toward default (champion) or points short of maximum (scorecard)."""

    code: str
    feature: str
    value: str
    text: str
    impact: float


def reason_text(spec: FeatureSpec, j: int, value: float) -> tuple[str, str]:
    feat = spec.features[j]
    shown = spec.display_value(j, value)
    with_unit = f"{shown} {feat.unit}" if feat.unit and shown != "missing" else shown
    if feat.label and feat.label != feat.name:
        return shown, f"{feat.code} {feat.label} ({feat.name} = {with_unit})"
    return shown, f"{feat.code} {feat.name} = {with_unit}"


def top_adverse(
    spec: FeatureSpec, row: np.ndarray, impacts: np.ndarray, limit: int = TOP_REASONS
) -> tuple[Reason, ...]:
    """The `limit` largest positive impacts, largest first; ties broken by feature order."""
    order = sorted(
        (j for j in range(len(spec.features)) if impacts[j] > 0), key=lambda j: (-impacts[j], j)
    )
    reasons = []
    for j in order[:limit]:
        shown, text = reason_text(spec, j, float(row[j]))
        reasons.append(
            Reason(spec.features[j].code, spec.features[j].name, shown, text, float(impacts[j]))
        )
    return tuple(reasons)


def centre(contributions: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Express contributions against the reference point; the constant absorbs the shift,
    so each row still sums to the model's raw log-odds."""
    out = contributions - reference
    out[:, -1] = contributions[:, -1] + reference[:-1].sum()
    return out


def population_reference(contributions: np.ndarray) -> np.ndarray:
    """Mean contribution per feature over a background sample; last entry is zero."""
    ref = contributions.mean(axis=0)
    ref[-1] = 0.0
    return ref
