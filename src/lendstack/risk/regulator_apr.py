"""All-in APR of every loan on the books, vectorised, with an exact check at the cap.

The regulator report needs each loan's all-in APR (PBOC 〔2021〕 No. 3: the nominal annual IRR
of the borrower's cash flows, every fee included) for a million loans in seconds. The Decimal
solver in `lendstack.core.rates` takes about a millisecond a loan, so the distribution is
computed here in float64 with a vectorised Newton iteration over the loans' original
schedules (version 1 of `installments`, as the contract was signed): flows are the net
disbursement (principal less the upfront fee) at month 0 and each installment's total at its
month on the schedule's monthly grid. Floats are fine for a distribution (DESIGN.md).

Whether a loan is above the cap is a compliance finding, so it is not left to floats: every
loan whose float APR lies within `EXACT_BAND` of the decision boundary (the cap plus half the
1e-10 step the disclosed APR is rounded to) is recomputed with `lendstack.core.rates.disclose`
from the same flows in exact decimals, and that figure decides, compared as the rule engine
compares it. Float64 Newton on these flows is accurate to about 1e-13, far inside the band,
so no loan is misjudged, and the Decimal solver runs only for the few loans on the boundary
and the loans listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from lendstack.core.money import Rounding, from_fen, quantize_fen, to_fen
from lendstack.core.rates import disclose

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

EXACT_BAND = 1e-11
"""Float APRs within this of the decision boundary are decided by the exact Decimal solver
(float64 Newton here is accurate to ~1e-13, a hundredfold inside it)."""
QUANTUM = 1e-10
"""The disclosed APR's rounding step (`lendstack.core.rates.RATE_QUANTUM`)."""
_CHUNK = 100_000
_ITERATIONS = 60
_TOLERANCE = 1e-15


@dataclass(frozen=True, slots=True)
class Contracts:
    """Loans (sorted by id) and their original schedules, as arrays.

    `flow_loan`, `flow_number`, `flow_fen`: one entry per installment of schedule version 1
    (number = installment number, fen = principal + interest + fee).
    """

    loan_id: I64
    principal_fen: I64
    upfront_fee_rate: tuple[str, ...]
    rounding: tuple[str, ...]
    term_months: I64
    flow_loan: I64
    flow_number: I64
    flow_fen: I64
    disbursed: NDArray[np.datetime64]

    def upfront_fee_fen(self) -> I64:
        """Exact upfront fees: Decimal only for the (usually few) loans that charge one."""
        out = np.zeros(self.loan_id.shape[0], dtype=np.int64)
        charged = {r for r in set(self.upfront_fee_rate) if r and Decimal(r) != 0}
        if not charged:
            return out
        for k, rate in enumerate(self.upfront_fee_rate):
            if rate in charged:
                fee = Decimal(int(self.principal_fen[k])) / 100 * Decimal(rate)
                out[k] = to_fen(quantize_fen(fee, Rounding(self.rounding[k])))
        return out


def _months(c: Contracts) -> tuple[I64, I64]:
    """(row of each flow, grid month of each flow): installment k sits at month
    k + (term − installments), so a bullet's single installment lands on month `term`."""
    row = np.searchsorted(c.loan_id, c.flow_loan)
    counts = np.bincount(row, minlength=c.loan_id.shape[0]).astype(np.int64)
    shift = np.maximum(c.term_months - counts, 0)
    return row, c.flow_number + shift[row]


def float_aprs(c: Contracts) -> F64:
    """Nominal annual IRR (monthly IRR × 12) of every loan, float64; NaN with no flows."""
    n = c.loan_id.shape[0]
    row, month = _months(c)
    net = (c.principal_fen - c.upfront_fee_fen()).astype(np.float64)
    out = np.full(n, np.nan)
    order = np.argsort(row, kind="stable")
    row, month, fen = row[order], month[order], c.flow_fen[order].astype(np.float64)
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        a, b = np.searchsorted(row, [lo, hi])
        if a == b:
            continue
        width = int(month[a:b].max())
        pay = np.zeros((hi - lo, width), dtype=np.float64)
        np.add.at(pay, (row[a:b] - lo, month[a:b] - 1), fen[a:b])
        out[lo:hi] = 12.0 * _monthly_irr(net[lo:hi], pay)
    return out


def _monthly_irr(net: F64, pay: F64) -> F64:
    """Root of Σ pay_k (1+r)^-k = net per row, by Newton from r = 0.

    g(r) = Σ pay_k (1+r)^-k − net is decreasing and convex for non-negative payments, so
    Newton from the left of the root (g(0) ≥ 0 whenever the borrower repays at least what
    was received) climbs monotonically to it.
    """
    k = np.arange(1, pay.shape[1] + 1, dtype=np.float64)
    r = np.zeros(net.shape[0])
    has = pay.sum(axis=1) > 0
    for _ in range(_ITERATIONS):
        v = np.power(1.0 + r[:, None], -k[None, :])
        g = (pay * v).sum(axis=1) - net
        dg = -(pay * k[None, :] * v).sum(axis=1) / (1.0 + r)
        step = np.where(has & (dg != 0), g / np.where(dg == 0, 1.0, dg), 0.0)
        r = r - step
        if np.all(np.abs(step) <= _TOLERANCE * np.maximum(1.0, np.abs(r))):
            break
    return np.where(has, r, np.nan)


def _exact_apr(c: Contracts, index: int, months: I64, fens: I64, fee_fen: int) -> Decimal:
    """The disclosed `apr_irr` of one loan from exact decimal flows (its grid months/fen)."""
    term = max(int(c.term_months[index]), int(months.max(initial=0)))
    flows = [Decimal(0)] * (term + 1)
    flows[0] = from_fen(int(c.principal_fen[index]) - fee_fen)
    for m, fen in zip(months.tolist(), fens.tolist(), strict=True):
        flows[m] -= from_fen(fen)
    return disclose(flows, from_fen(int(c.principal_fen[index])), term).apr_irr


def above_cap(
    c: Contracts, apr: F64, cap: F64, listed: int = 1000
) -> tuple[int, list[tuple[int, Decimal]]]:
    """(how many loans' disclosed APR exceeds their cap, [(row, exact APR)] of the first
    `listed` of them); a NaN cap is no cap.

    The disclosed APR is rounded to 1e-10 (half-even), so the decision boundary is
    cap + 0.5e-10. Loans farther than `EXACT_BAND` from it are decided by their float APR;
    the rest, and every loan listed, by the exact Decimal solver. Caps are the rule pack's
    decimals held as floats; `repr` gives them back exactly.
    """
    known = ~np.isnan(cap) & ~np.isnan(apr)
    boundary = np.where(known, cap, 0.0) + 0.5 * QUANTUM
    near = np.flatnonzero(known & (np.abs(apr - boundary) <= EXACT_BAND))
    clear = np.flatnonzero(known & (apr - boundary > EXACT_BAND))
    if near.size == 0 and clear.size == 0:
        return 0, []
    exact = _ExactApr(c)
    above = [i for i in near.tolist() if exact(i) > Decimal(repr(float(cap[i])))]
    rows = sorted([*above, *clear.tolist()])
    return len(rows), [(i, exact(i)) for i in rows[:listed]]


class _ExactApr:
    """The exact disclosed APR of any loan, with the flows indexed once."""

    def __init__(self, c: Contracts) -> None:
        row, month = _months(c)
        order = np.argsort(row, kind="stable")
        self.c, self.row, self.month = c, row[order], month[order]
        self.fen = c.flow_fen[order]
        self.fees = c.upfront_fee_fen()

    def __call__(self, index: int) -> Decimal:
        a, b = np.searchsorted(self.row, [index, index + 1])
        return _exact_apr(self.c, index, self.month[a:b], self.fen[a:b], int(self.fees[index]))
