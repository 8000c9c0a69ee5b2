"""How simulated borrowers behave: who applies each month, and what they do at each due date.

Both sit on the applicant generative model (`lendstack.underwriting.population`): the latent
PD it draws for every borrower (`outcomes.latent_pd`, P(90+ DPD within 12 months)) becomes a
monthly hazard of entering default at a due date,

    h = (1 − (1 − latent_pd)^(1/12)) / (1 − cure_rate)²
    logit p_miss = logit h + log(miss_scale)
                   + b_burden · (min(burden / income_factor, 2) − min(burden, 2))   (income shock)
                   + 3 · drawdown/0.25 · diverted                                   (gold falls)

where `income_factor` is the scenario's income multiplier for the borrower's city tier that
month (dividing by (1 − cure_rate)² undoes the cures at 30 and 60 DPD, so with
miss_scale 1 a borrower reaches 90 DPD within a year with about their latent PD), `drawdown` the gold price's fall from its trailing 3-month high, and `diverted` whether
the borrower put the loan money into gold or FX (drawn once, with probability equal to their
speculation propensity). At a due date a borrower, with one uniform draw u:
- u < p_miss: stops paying; at each 30-day mark of arrears cures (pays everything) with
  probability `cure_rate` (halved after 90 days, none after 180), times the scenario's
  `collections.contact_lift` if collections reached the borrower within the last 31 days; a
  borrower who promised to pay also pays everything on the promise's date with probability
  `collections.promise_keep` (`cures`, `Contact`);
- next `late_share`: pays 2–21 days late;
- next `prepay_rate`: pays the whole loan off;
- otherwise pays the day after the due date.

Every draw is a hash of (seed, loan, due date, purpose), so the same seed gives the same
behaviour however the work is partitioned or ordered. Pure: numpy and hashlib only.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from lendstack.simulation.scenario import Scenario

REFERENCE_APPROVAL = 0.5
REFERENCE_APR = 0.18
DEMAND_FACTOR_BOUNDS = (0.25, 4.0)
DIVERSION_PUSH = 3.0
"""Log-odds added for a diverted borrower when gold falls 25% (scaled with the fall)."""
BURDEN_COEF = 1.0
"""As the latent model's `Hazard.burden`: log-odds per unit of debt service over income."""


def uniform(seed: int, *key: object) -> float:
    """A reproducible U[0, 1) for one event, independent of the order events are met."""
    digest = hashlib.blake2b(repr((seed, *key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def demand_factor(scenario: Scenario, approval_rate: float | None, mean_apr: float | None) -> float:
    """How much more (or less) people apply than at the reference market, from last month."""
    d = scenario.demand
    factor = 1.0
    if approval_rate is not None:
        factor *= (max(approval_rate, 0.01) / REFERENCE_APPROVAL) ** d.approval_elasticity
    if mean_apr is not None and mean_apr > 0:
        factor *= (REFERENCE_APR / mean_apr) ** d.price_elasticity
    lo, hi = DEMAND_FACTOR_BOUNDS
    return min(max(factor, lo), hi)


def applicants(
    rng: np.random.Generator, has_loan: np.ndarray, scenario: Scenario, factor: float
) -> np.ndarray:
    """Indices of the borrowers who apply this month (sorted)."""
    d = scenario.demand
    p = np.where(has_loan, d.repeat_rate, d.base_rate) * factor
    return np.flatnonzero(rng.random(len(has_loan)) < np.minimum(p, 1.0))


def diverted(rng: np.random.Generator, speculation: np.ndarray) -> np.ndarray:
    """bool per borrower: puts loan money into gold or FX (probability = propensity)."""
    return np.asarray(rng.random(len(speculation)) < speculation)


def gold_drawdown(scenario: Scenario, month: int) -> float:
    """The gold price's fall (≥ 0) from its high over the trailing three months."""
    high = max(scenario.gold_index(m) for m in range(max(1, month - 3), month + 1))
    return max(0.0, 1.0 - scenario.gold_index(month) / high)


@dataclass(frozen=True, slots=True)
class BorrowerRisk:
    """What the hazard needs per borrower (columns indexed by borrower)."""

    latent_pd: np.ndarray
    burden: np.ndarray
    tier: np.ndarray
    diverted: np.ndarray
    contacts: dict[int, Contact] = field(default_factory=dict)
    """loan id → collections' latest contact that reached the borrower (written by the
    collections hook at each month-end, read by the cure draws)."""


CONTACT_EFFECT_DAYS = 31
"""A contact lifts the cure draws at the 30-day marks of arrears this many days after it."""


@dataclass(frozen=True, slots=True)
class Contact:
    """Collections reached a borrower in arrears on epoch day `day` (an answered call or a
    delivered message); `promise_day` is the due date of the promise to pay they made, if any."""

    day: int
    promise_day: int | None = None


def miss_probability(risk: BorrowerRisk, borrower: int, scenario: Scenario, month: int) -> float:
    """p_miss for one borrower at a due date in `month` (see the module doc)."""
    pd = float(min(max(risk.latent_pd[borrower], 1e-6), 0.999))
    cure = scenario.behaviour.cure_rate
    h = min((1.0 - (1.0 - pd) ** (1.0 / 12.0)) / max((1.0 - cure) ** 2, 0.01), 0.99)
    logit = math.log(h / (1.0 - h)) + math.log(max(scenario.behaviour.miss_scale, 1e-9))
    factor = scenario.income_factor(month, int(risk.tier[borrower]))
    if factor != 1.0:
        burden = float(risk.burden[borrower])
        logit += BURDEN_COEF * (min(burden / max(factor, 0.05), 2.0) - min(burden, 2.0))
    if risk.diverted[borrower]:
        logit += DIVERSION_PUSH * gold_drawdown(scenario, month) / 0.25
    return 1.0 / (1.0 + math.exp(-logit))


class Action(StrEnum):
    PAY = "pay"
    LATE = "late"
    PREPAY = "prepay"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class DueChoice:
    action: Action
    lag_days: int
    """Days after the due date the borrower acts (for DEFAULT: none, so 0)."""


def due_choice(
    seed: int, loan_id: int, due_day: int, p_miss: float, scenario: Scenario
) -> DueChoice:
    """What the borrower of `loan_id` does about the installment due on epoch day `due_day`."""
    b = scenario.behaviour
    u = uniform(seed, loan_id, due_day, "due")
    if u < p_miss:
        return DueChoice(Action.DEFAULT, 0)
    if u < p_miss + b.late_share:
        return DueChoice(Action.LATE, 2 + int(uniform(seed, loan_id, due_day, "lag") * 20))
    if u < p_miss + b.late_share + b.prepay_rate:
        return DueChoice(Action.PREPAY, 1)
    return DueChoice(Action.PAY, 1)


def cures(
    seed: int,
    loan_id: int,
    due_day: int,
    days_late: int,
    scenario: Scenario,
    risk: BorrowerRisk | None = None,
) -> bool:
    """`cure_draw` with the loan's latest collections contact (in `risk.contacts`), if any."""
    contact = None if risk is None else risk.contacts.get(int(loan_id))
    return cure_draw(seed, loan_id, due_day, days_late, scenario, contact)


def cure_draw(
    seed: int,
    loan_id: int,
    due_day: int,
    days_late: int,
    scenario: Scenario,
    contact: Contact | None = None,
) -> bool:
    """Does the borrower in arrears (since epoch day `due_day`) pay everything owed today?

    At a 30-day mark: with probability `cure_rate` (halved after 90 days, none after 180),
    times `collections.contact_lift` when collections reached them within the last
    `CONTACT_EFFECT_DAYS`. On the due date of a promise to pay: with `promise_keep`. The
    contacted and uncontacted draws share one uniform, so a contact never stops a cure."""
    today = due_day + days_late
    if contact is not None and contact.promise_day == today and days_late <= 180:
        keep = scenario.collections.promise_keep
        if uniform(seed, loan_id, due_day, today, "promise") < keep:
            return True
    if days_late % 30 != 0 or days_late > 180:
        return False
    rate = scenario.behaviour.cure_rate * (0.5 if days_late > 90 else 1.0)
    if contact is not None and 0 <= today - contact.day <= CONTACT_EFFECT_DAYS:
        rate = min(rate * scenario.collections.contact_lift, 1.0)
    return uniform(seed, loan_id, due_day, days_late, "cure") < rate
