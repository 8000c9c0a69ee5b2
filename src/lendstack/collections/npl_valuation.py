"""Valuing an NPL package: expected collections from recovery curves, discounted at the buyer's IRR.

A loan `m0` months past default with claim `C` is expected to yield, in future month k,
`C × (curve(m0 + k) - curve(m0))`: the cash its segment's history collects in that month of a
default's life. Summed over the package, cut by the recovery haircut (a stress on the curve)
and the buyer's collection cost (AMCs pay agencies a commission on what they collect), that is
the buyer's monthly cash flow. The price is its present value at the target IRR, compounded
monthly as (1 + IRR)^(k/12), rounded half-up to the fen.

The round trip is the valuation's own check: the IRR recomputed from the rounded price (a
bracketed root of NPV(r) = price, by Brent's method) must return the target within one basis
point; the report says whether it does rather than assume it. Cash-flow analytics are floats
(DESIGN.md: floats for analytics); only the price becomes money.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq

from lendstack.collections.npl_recovery import HORIZON, Curve
from lendstack.core.errors import ValidationError

DEFAULT_COST = 0.30
"""Buyer's collection cost as a share of cash collected (agency commissions of 20-40 %)."""
MARKET_RANGE = (Decimal("2.65"), Decimal("7.3"))
"""China's 2022-2025 personal batch prices, % of principal + interest (REGULATION.md §7.2)."""
IRR_TOLERANCE = 1e-4
"""One basis point."""


@dataclass(frozen=True, slots=True)
class Package:
    """A package as the valuation needs it: per loan, its segment, age and balances (fen)."""

    segment: NDArray[np.int64]
    months_since_default: NDArray[np.int64]
    claim: NDArray[np.int64]
    principal: NDArray[np.int64]
    interest: NDArray[np.int64]

    @property
    def loans(self) -> int:
        return len(self.claim)


def expected_cash(package: Package, curves: Sequence[Curve]) -> NDArray[np.float64]:
    """Gross expected collections (fen) in future months 1..HORIZON."""
    out = np.zeros(HORIZON + 1)
    m0 = np.minimum(package.months_since_default, HORIZON)
    for s, curve in enumerate(curves):
        mask = package.segment == s
        weight = np.bincount(m0[mask], weights=package.claim[mask], minlength=HORIZON + 1)
        cum = curve.cumulative
        for age in np.nonzero(weight)[0]:
            monthly = np.diff(cum[age:])
            out[1 : len(monthly) + 1] += weight[age] * monthly
    return out[1:]


def npv(flows: NDArray[np.float64], irr: float) -> float:
    months = np.arange(1, len(flows) + 1, dtype=np.float64)
    return float(np.sum(flows / np.power(1.0 + irr, months / 12.0)))


def irr_from_price(flows: NDArray[np.float64], price: float) -> float | None:
    """The annual IRR at which the flows are worth `price`; None if no root is bracketed."""
    if price <= 0 or not np.any(flows > 0):
        return None
    lo, hi = -0.99, 1000.0
    f_lo, f_hi = npv(flows, lo) - price, npv(flows, hi) - price
    if f_lo * f_hi > 0:
        return None
    return float(brentq(lambda r: npv(flows, r) - price, lo, hi, xtol=1e-12, rtol=1e-12))


def to_price(value: float) -> Decimal:
    """Fen of present value as yuan, half-up to the fen."""
    fen = Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return (fen / 100).quantize(Decimal("0.01"))


@dataclass(frozen=True, slots=True)
class Terms:
    irr: float
    haircut: float = 0.0
    cost: float = DEFAULT_COST

    def __post_init__(self) -> None:
        if not -0.5 < self.irr < 10:
            raise ValidationError(f"IRR {self.irr} must be a fraction, e.g. 0.15", field="irr")
        if not 0 <= self.haircut < 1:
            raise ValidationError(f"haircut {self.haircut} must be in [0, 1)", field="haircut")
        if not 0 <= self.cost < 1:
            raise ValidationError(f"cost {self.cost} must be in [0, 1)", field="cost")

    def net(self, gross: NDArray[np.float64]) -> NDArray[np.float64]:
        return gross * (1.0 - self.haircut) * (1.0 - self.cost)


def _pct(price: Decimal, base_fen: int) -> Decimal | None:
    """`price` (yuan) as a percentage of `base_fen`, e.g. 6.4318 for 6.4318 %."""
    if base_fen <= 0:
        return None
    return (price * 10000 / base_fen).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Valuation:
    terms: Terms
    price: Decimal
    principal_fen: int
    interest_fen: int
    claim_fen: int
    gross_fen: float
    net_fen: float
    irr_recomputed: float | None
    grid: tuple[tuple[float, float, Decimal], ...]
    curves: tuple[Curve, ...]

    @property
    def pct_pi(self) -> Decimal | None:
        return _pct(self.price, self.principal_fen + self.interest_fen)

    @property
    def pct_principal(self) -> Decimal | None:
        return _pct(self.price, self.principal_fen)

    @property
    def irr_ok(self) -> bool:
        got = self.irr_recomputed
        return got is not None and abs(got - self.terms.irr) <= IRR_TOLERANCE

    def market_position(self) -> str:
        pct = self.pct_pi
        low, high = MARKET_RANGE
        if pct is None:
            return "no principal + interest to price against"
        where = "below" if pct < low else "above" if pct > high else "within"
        return (
            f"{pct:.2f}% of principal + interest is {where} China's 2022-2025 personal batch "
            f"prices ({low}%-{high}%)"
        )

    def as_json(self) -> dict[str, Any]:
        base = self.principal_fen + self.interest_fen
        return {
            "irr": self.terms.irr,
            "haircut": self.terms.haircut,
            "collection_cost": self.terms.cost,
            "price": self.price,
            "price_pct_principal_interest": self.pct_pi,
            "price_pct_principal": self.pct_principal,
            "principal": _yuan(self.principal_fen),
            "interest": _yuan(self.interest_fen),
            "principal_interest": _yuan(base),
            "claim": _yuan(self.claim_fen),
            "expected_collections_gross": _yuan(round(self.gross_fen)),
            "expected_collections_net": _yuan(round(self.net_fen)),
            "irr_check": {
                "target": self.terms.irr,
                "recomputed": self.irr_recomputed,
                "tolerance": IRR_TOLERANCE,
                "ok": self.irr_ok,
            },
            "sensitivity": [
                {"irr": i, "haircut": h, "price": p, "price_pct_principal_interest": _pct(p, base)}
                for i, h, p in self.grid
            ],
            "market": self.market_position(),
            "curves": [c.as_json() for c in self.curves],
        }


def _yuan(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def grid_axes(terms: Terms) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """IRR ± 5 points in 2.5-point steps (kept above -50 %), haircuts 0-30 % and the given."""
    irrs = tuple(sorted({round(terms.irr + d, 6) for d in (-0.05, -0.025, 0, 0.025, 0.05)}))
    haircuts = tuple(sorted({0.0, 0.1, 0.2, 0.3, terms.haircut}))
    return tuple(i for i in irrs if i > -0.5), haircuts


def value(package: Package, curves: Sequence[Curve], terms: Terms) -> Valuation:
    gross = expected_cash(package, curves)
    net = terms.net(gross)
    price = to_price(npv(net, terms.irr))
    recomputed = irr_from_price(net, float(price) * 100)
    irrs, haircuts = grid_axes(terms)
    grid = tuple(
        (i, h, to_price(npv(Terms(i, h, terms.cost).net(gross), i))) for i in irrs for h in haircuts
    )
    return Valuation(
        terms, price,
        int(package.principal.sum()), int(package.interest.sum()), int(package.claim.sum()),
        float(gross.sum()), float(net.sum()), recomputed, grid, tuple(curves),
    )  # fmt: skip


def segments_of(products: Sequence[str]) -> tuple[tuple[str, ...], NDArray[np.int64]]:
    """Distinct segments (sorted) and each loan's index into them."""
    names, index = np.unique(np.asarray(products, dtype=object), return_inverse=True)
    return tuple(str(n) for n in names), index.astype(np.int64)


def curve_map(curves: Sequence[Curve]) -> Mapping[str, Curve]:
    return {c.segment: c for c in curves}


__all__ = [
    "DEFAULT_COST",
    "IRR_TOLERANCE",
    "MARKET_RANGE",
    "Package",
    "Terms",
    "Valuation",
    "curve_map",
    "expected_cash",
    "grid_axes",
    "irr_from_price",
    "npv",
    "segments_of",
    "to_price",
    "value",
]
