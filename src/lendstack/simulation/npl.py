"""The NPL sale hook: each quarter-end the bad loans are packaged, valued and sold.

It runs the real NPL pilot code (`collections`, `storage.npl*`) exactly as `lendstack npl
package|value|sell` does: the pilot's eligibility rule selects the loans (substandard or worse,
charged-off ones included), the lender's own recovery curves value the package at the buyer's
target IRR, and the sale is booked in one transaction on the open business date after the
month-end (receivables out, allowance released, cash in, loss on sale to 6705, funders paid
their share). Sold loans leave the book, so later NPL ratios fall, and the price shows in the
next month's P&L as cash against the written-down claim.

Simulation assumptions (docs/simulation.md): the pilot window is taken to cover the whole run
(its real end is 2026-12-31), the buyer is the first on the shipped allowlist, the price is the
valuation at a 15% IRR with no haircut.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import Engine

from lendstack.collections.npl_buyers import load_buyers
from lendstack.collections.npl_eligibility import PILOT_END, pilot
from lendstack.collections.npl_valuation import Terms
from lendstack.core.errors import ValidationError
from lendstack.simulation.metrics import MonthMetrics
from lendstack.storage.npl import value_portfolio
from lendstack.storage.npl_package import create_portfolio
from lendstack.storage.npl_sale import sell_portfolio

BUYER_IRR = 0.15


@dataclass(frozen=True, slots=True)
class NplSale:
    """`MonthEndHook`: sell the eligible bad loans every `every_months` months."""

    run_end: date
    every_months: int = 3

    def __call__(self, engine: Engine, month_end: date, metrics: MonthMetrics) -> None:
        if metrics.month % self.every_months:
            return
        day = month_end + timedelta(days=1)  # the open business date
        name = f"sim-npl-{month_end:%Y-%m}"
        # The pilot's window is taken to cover the run, through the open date after its last
        # month-end, when the last quarter's sale is booked.
        criteria = pilot(max(PILOT_END, self.run_end + timedelta(days=1)))
        try:
            with engine.begin() as conn:
                create_portfolio(conn, name, day, criteria)
        except ValidationError as exc:
            if exc.field != "criteria":  # anything but "no loan is eligible" is a real error
                raise
            return
        price = value_portfolio(engine, name, Terms(BUYER_IRR)).price
        buyer = load_buyers().buyers[0]
        result = sell_portfolio(
            engine, name, buyer, price.quantize(Decimal("0.01"), ROUND_DOWN), day
        )
        metrics.npl_sold_loans = result.loans
        metrics.npl_sale_price = float(price.quantize(Decimal("0.01"), ROUND_DOWN))
        metrics.events.append(
            f"NPL sale: {result.loans} loans to {buyer.name} for {metrics.npl_sale_price:,.2f} on {day}"
        )
