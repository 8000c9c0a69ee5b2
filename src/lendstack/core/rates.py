"""Internal rate of return and the APR disclosure required by PBOC Announcement 〔2021〕 No. 3.

The announcement asks lenders to show the annualised comprehensive cost of a loan: the rate that
discounts *all* the borrower's cash flows (interest and every fee) to zero. We solve for that rate
in `Decimal` with a safeguarded Newton iteration, so a quoted APR is reproducible digit for digit
on any machine; floats would make two quotes of the same loan disagree in the last places.

Sign convention: `flows[k]` is the cash at month k as seen by the borrower, positive when the
borrower receives money (k = 0, the net disbursement) and negative when the borrower pays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from lendstack.core.errors import ValidationError

RATE_QUANTUM = Decimal("1E-10")
"""Output precision of the three disclosed annual rates; internal precision is far higher."""

IRR_QUANTUM = Decimal("1E-20")
"""Precision kept for the monthly IRR, so rates derived from it agree to the disclosed digits."""

_PRECISION = 60
_TOLERANCE = Decimal("1E-30")
_MAX_ITERATIONS = 400
_ONE = Decimal(1)


def _checked(flows: Sequence[Decimal]) -> tuple[Decimal, ...]:
    values = tuple(flows)
    for v in values:
        if not isinstance(v, Decimal) or not v.is_finite():
            raise ValidationError(f"cash flows must be finite Decimals, got {v!r}", field="flows")
    if not (any(v > 0 for v in values) and any(v < 0 for v in values)):
        raise ValidationError(
            "cash flows need a sign change (money received and money paid) to have an IRR",
            field="flows",
        )
    return values


def _npv_and_slope(values: Sequence[Decimal], rate: Decimal) -> tuple[Decimal, Decimal]:
    """NPV at `rate` and its derivative d(NPV)/d(rate), by Horner's rule in v = 1/(1+rate)."""
    v = _ONE / (_ONE + rate)
    total, slope_v = Decimal(0), Decimal(0)
    for flow in reversed(values):
        slope_v = slope_v * v + total
        total = total * v + flow
    return total, -slope_v * v * v


def _npv(values: Sequence[Decimal], rate: Decimal) -> Decimal:
    """NPV alone, for the bracket's signs: `_npv_and_slope`'s own recurrence for the NPV (which
    never reads the slope's), so the same digits without the slope's work."""
    v = _ONE / (_ONE + rate)
    total = Decimal(0)
    for flow in reversed(values):
        total = total * v + flow
    return total


def npv(flows: Sequence[Decimal], rate: Decimal) -> Decimal:
    """Net present value of monthly `flows` at the periodic `rate` (flows[0] undiscounted)."""
    if rate <= -1:
        raise ValidationError(f"must be > -1, got {rate}", field="rate")
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        value = _npv(tuple(flows), rate)
    return +value


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


def _bracket_grids() -> tuple[tuple[Decimal, ...], tuple[Decimal, ...]]:
    """The rates `_bracket` walks: 0, 1%, 2%, 4%, … upwards, and 0, −90%, −99%, … down.

    Built once (every APR solve walks them); every point is exact at the solver's precision.
    """
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        up = (Decimal(0), *(Decimal(2) ** k / 100 for k in range(30)))
        down = (Decimal(0), *(-_ONE + Decimal(10) ** -k for k in range(1, 30)))
    return up, down


_BRACKET_GRIDS = _bracket_grids()


def _bracket(values: Sequence[Decimal]) -> tuple[Decimal, Decimal, Decimal]:
    """Two rates whose NPVs have opposite signs (or an exact root twice), and the NPV at the
    lower one (the solver starts from it).

    Walks outward from 0 through increasing positive rates, then towards −1, because a loan
    with any cost has its root above 0 and a subsidised one between −1 and 0.
    """
    for points in _BRACKET_GRIDS:
        prev = points[0]
        prev_npv = _npv(values, prev)
        prev_sign = _sign(prev_npv)
        if prev_sign == 0:
            return prev, prev, prev_npv
        for point in points[1:]:
            point_npv = _npv(values, point)
            if _sign(point_npv) != prev_sign:
                if prev < point:
                    return prev, point, prev_npv
                return point, prev, point_npv
            prev, prev_npv = point, point_npv
    raise ValidationError("no rate above -100% makes these cash flows' NPV zero", field="flows")


def _solve(values: Sequence[Decimal], lo: Decimal, hi: Decimal, f_lo: Decimal) -> Decimal:
    """Newton steps kept inside a shrinking sign-change bracket; bisect when Newton strays.
    `f_lo` is the NPV at `lo`."""
    rate = (lo + hi) / 2
    for _ in range(_MAX_ITERATIONS):
        f, slope = _npv_and_slope(values, rate)
        if f == 0:
            return rate
        if _sign(f) == _sign(f_lo):
            lo, f_lo = rate, f
        else:
            hi = rate
        step_ok = slope != 0 and lo < rate - f / slope < hi
        new_rate = rate - f / slope if step_ok else (lo + hi) / 2
        if abs(new_rate - rate) < _TOLERANCE or hi - lo < _TOLERANCE:
            return new_rate
        rate = new_rate
    return rate


def periodic_irr(flows: Sequence[Decimal]) -> Decimal:
    """The periodic (monthly, for lendstack's grid) IRR of `flows`, accurate far beyond 1e-12.

    Raises `ValidationError` when the flows have no sign change and therefore no IRR.
    With several sign changes the root nearest above 0 is returned.
    """
    values = _checked(flows)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        lo, hi, f_lo = _bracket(values)
        rate = lo if lo == hi else _solve(values, lo, hi, f_lo)
    return +rate


@dataclass(frozen=True, slots=True)
class AprDisclosure:
    """The three labelled annual rates a quote shows, plus the monthly IRR they derive from.

    * `apr_irr`: nominal annual IRR = monthly IRR × 12, the PBOC 〔2021〕 No. 3 headline figure;
    * `apr_effective`: effective annual rate = (1 + monthly IRR)^12 − 1;
    * `apr_simple`: simple annualised cost = total cost / amount / (term_months / 12),
      where total cost = −Σ flows (everything paid beyond the cash actually received, i.e.
      interest + per-period fees + upfront fee), and amount = the contract principal.
    """

    apr_irr: Decimal
    apr_effective: Decimal
    apr_simple: Decimal
    monthly_irr: Decimal


def _q(rate: Decimal) -> Decimal:
    return rate.quantize(RATE_QUANTUM, rounding=ROUND_HALF_EVEN)


def disclose(flows: Sequence[Decimal], amount: Decimal, term_months: int) -> AprDisclosure:
    """Labelled APRs for monthly `flows` of a loan of `amount` over `term_months`.

    The annual rates are rounded half-even to 1e-10 for display, the monthly IRR to 1e-20;
    the IRR itself is solved at 60 significant digits.
    """
    if amount <= 0:
        raise ValidationError(f"must be > 0, got {amount}", field="amount")
    if term_months < 1:
        raise ValidationError(f"must be >= 1, got {term_months}", field="term")
    monthly = periodic_irr(flows)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        total_cost = -sum(flows, Decimal(0))
        simple = total_cost * 12 / (amount * term_months)
        effective = (_ONE + monthly) ** 12 - _ONE
        nominal = monthly * 12
    irr = monthly.quantize(IRR_QUANTUM, rounding=ROUND_HALF_EVEN)
    return AprDisclosure(_q(nominal), _q(effective), _q(simple), irr)
