"""Risk-based pricing: the APR a loan needs, built up from its costs, on a pricing grid.

    APR = funding cost + expected loss (annualised) + operating cost + margin

The model's PD is a 12-month probability of going 90+ days past due. Over a term of n months
the chance of default is 1 − (1 − PD)^(n/12); the loss is that times LGD, charged on the
principal. Interest, though, accrues on the *outstanding* balance, which for an amortising
loan averages about half the principal over the term. So the annual rate that recovers the
loss is loss ÷ (average balance share × years). Pricing never clamps: a needed APR above the
cap is reported as such and the engine declines.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from lendstack.servicing import RepaymentMethod
from lendstack.underwriting.policy import PricingPolicy

_RATE = Decimal("0.000001")
_FEE_RATE = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Price:
    """The needed APR and its parts, each an annual rate."""

    funding_cost: Decimal
    expected_loss: Decimal
    operating_cost: Decimal
    margin: Decimal
    apr: Decimal
    """The sum of the parts rounded up to the grid: the all-in APR the offer targets."""

    def as_json(self) -> dict[str, str]:
        return {
            "funding_cost": str(self.funding_cost),
            "expected_loss": str(self.expected_loss),
            "operating_cost": str(self.operating_cost),
            "margin": str(self.margin),
            "apr": str(self.apr),
        }


def average_balance_share(method: RepaymentMethod, term_months: int) -> Decimal:
    """Average outstanding principal over the term, as a share of the principal.

    Level principal repayment leaves (n+1)/2n on average; an annuity repays principal slowly
    at first, which the small uplift approximates; bullet and interest-first keep it all.
    """
    n = Decimal(term_months)
    if method in (RepaymentMethod.BULLET, RepaymentMethod.INTEREST_FIRST):
        return Decimal(1)
    share = (n + 1) / (2 * n)
    if method is RepaymentMethod.EQUAL_INSTALLMENT:
        share += Decimal("0.02")
    return share


def term_default_probability(pd_12m: float, term_months: int) -> Decimal:
    """Probability of default within the term, from a 12-month PD, at constant hazard."""
    p = min(max(pd_12m, 0.0), 1.0)
    return Decimal(repr(1.0 - (1.0 - p) ** (term_months / 12.0))).quantize(_RATE)


def price(pd_12m: float, method: RepaymentMethod, term_months: int, policy: PricingPolicy) -> Price:
    years = Decimal(term_months) / 12
    loss = term_default_probability(pd_12m, term_months) * policy.lgd
    expected_loss = (loss / (average_balance_share(method, term_months) * years)).quantize(
        _RATE, rounding=ROUND_CEILING
    )
    total = policy.funding_cost + expected_loss + policy.operating_cost + policy.margin
    on_grid = (total / policy.grid).to_integral_value(rounding=ROUND_CEILING) * policy.grid
    return Price(
        policy.funding_cost,
        expected_loss,
        policy.operating_cost,
        policy.margin,
        on_grid.quantize(_RATE),
    )


def flat_fee_rate(apr: Decimal, term_months: int) -> Decimal:
    """Monthly fee on the original principal whose IRR is about `apr` (fee-based installments).

    A flat monthly fee f on the full principal, repaid in n equal parts, costs about
    f × 12 × 2n/(n+1) a year on the declining balance; invert that. Rounded half-up to a
    basis point; the engine then checks the schedule's real IRR against the cap.
    """
    n = Decimal(term_months)
    return (apr * (n + 1) / (24 * n)).quantize(_FEE_RATE, rounding=ROUND_HALF_UP)
