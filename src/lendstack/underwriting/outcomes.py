"""The true default process behind the synthetic applicants: a logistic hazard in z and debt.

The applicant generator (`population.py`) draws what an application shows; this module decides
who defaults. Keeping the two apart is what lets us measure a model honestly: the latent PD
here is the best score any model could reach (it sees z, which no application does), so the
AUC of `latent_pd` is the ceiling a trained model is compared against.

    logit PD = intercept − b_z·z + b_burden·min(burden, 2) + b_inq·inquiries_3m
               + b_dpd·[worst DPD 24m ≥ 30] + b_lenders·active_lenders
               + b_emp[employment] + b_student·student + b_spec·speculation

`burden` is (existing obligations + the new loan's installment) / monthly income, with the
installment estimated at a reference APR (`monthly_installment`); the feature map uses the
same estimate, because at scoring time the price is not yet known. Outcome: `defaulted` means
90+ days past due within 12 months of origination, drawn as Bernoulli(latent PD).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from lendstack.core.errors import ValidationError

INCOME_FLOOR = 100.0
"""CNY a month. Ratios divide by at least this, so a zero income reads as a very high burden."""

BURDEN_CAP = 2.0
"""Beyond twice the income the burden stops adding risk: the applicant is already underwater."""


def monthly_installment(amount: Any, term_months: Any, apr: float) -> Any:
    """Level (annuity) installment of `amount` over `term_months` at `apr`, in the same unit.

    Written with plain operators so one definition serves a numpy column (the generator) and a
    float (the feature map at decision time); the two must never disagree.
    """
    r = apr / 12.0
    return amount * r / (1.0 - (1.0 + r) ** (-term_months))


@dataclass(frozen=True, slots=True)
class Hazard:
    """Coefficients of the default hazard (log-odds per unit). Calibrated in docs/applicants.md."""

    intercept: float = -4.75
    z: float = 1.15
    """Log-odds lost per standard deviation of creditworthiness."""
    burden: float = 1.0
    inquiries_3m: float = 0.10
    serious_delinquency: float = 0.55
    active_lenders: float = 0.10
    self_employed: float = 0.15
    gig: float = 0.30
    unemployed: float = 0.70
    student: float = 0.40
    speculation: float = 1.20
    reference_apr: float = 0.18
    """APR at which the new installment is estimated (mid-market; §10 puts APRs at 12–24%)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.reference_apr < 1.0:
            raise ValidationError("must be in (0, 1)", field="reference_apr")


@dataclass(frozen=True, slots=True)
class Outcomes:
    """What happened to each applicant had the loan been made: the labels and the truth."""

    defaulted: np.ndarray
    """bool: 90+ DPD within 12 months."""
    latent_pd: np.ndarray
    """The true probability of default (the model ceiling)."""
    z: np.ndarray
    """Latent creditworthiness, N(0, 1); higher is better."""
    burden: np.ndarray
    """(obligations + new installment) / income, as the hazard saw it."""

    @property
    def bad_rate(self) -> float:
        return float(self.defaulted.mean()) if len(self.defaulted) else 0.0

    @property
    def latent_auc(self) -> float:
        """AUC of the true PD against the drawn outcomes: what a perfect model would score."""
        return auc(self.defaulted, self.latent_pd)


def burden_ratio(
    obligations: np.ndarray, amount: np.ndarray, term: np.ndarray, income: np.ndarray, apr: float
) -> np.ndarray:
    """Debt service after the new loan over income (all in CNY a month)."""
    new = monthly_installment(amount, term, apr)
    return np.asarray((obligations + new) / np.maximum(income, INCOME_FLOOR))


def hazard_logit(cols: dict[str, np.ndarray], z: np.ndarray, hazard: Hazard) -> np.ndarray:
    """The log-odds of default for every applicant; `cols` are the generator's columns."""
    h = hazard
    burden = _burden(cols, h)
    emp = cols["employment"]
    logit = (
        h.intercept
        - h.z * z
        + h.burden * np.minimum(burden, BURDEN_CAP)
        + h.inquiries_3m * cols["inquiries_3m"]
        + h.serious_delinquency * (cols["worst_dpd_24m"] >= 30)
        + h.active_lenders * cols["active_lenders"]
        + h.self_employed * (emp == "self_employed")
        + h.gig * (emp == "gig")
        + h.unemployed * (emp == "unemployed")
        + h.student * cols["is_student"]
        + h.speculation * cols["speculation"]
    )
    return np.asarray(logit, dtype=np.float64)


def _burden(cols: dict[str, np.ndarray], h: Hazard) -> np.ndarray:
    return burden_ratio(
        cols["monthly_obligations_fen"] / 100.0,
        cols["amount_fen"] / 100.0,
        cols["term_months"],
        cols["monthly_income_fen"] / 100.0,
        h.reference_apr,
    )


def draw_outcomes(
    cols: dict[str, np.ndarray], z: np.ndarray, hazard: Hazard, rng: np.random.Generator
) -> Outcomes:
    """Latent PD from the hazard, then one Bernoulli draw per applicant."""
    pd_ = 1.0 / (1.0 + np.exp(-hazard_logit(cols, z, hazard)))
    defaulted = rng.random(len(z)) < pd_
    return Outcomes(defaulted, pd_, z, _burden(cols, hazard))


def reference_screen(cols: dict[str, np.ndarray], burden: np.ndarray) -> np.ndarray:
    """Who a sane, simple knock-out policy would approve: the calibration population.

    Not the rule pack (that lives in the decision engine); just the screen the bad-rate
    target in REGULATION.md §10 (~2% 90+ DPD on prime platforms) is calibrated against.
    """
    return np.asarray(
        (cols["worst_dpd_24m"] < 30)
        & (cols["active_lenders"] <= 4)
        & (cols["inquiries_3m"] <= 4)
        & (burden <= 0.7)
        & ~cols["is_student"]
        & ~cols["forbidden_purpose"]
        & (cols["on_time_share"] >= 0.9)
    )


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Rank (Mann–Whitney) AUC with ties averaged; NaN when one class is absent."""
    y = np.asarray(y, dtype=bool)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))
