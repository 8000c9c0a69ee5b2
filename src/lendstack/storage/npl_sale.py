"""Selling an NPL portfolio: one transaction that takes the loans off the books.

In order, inside one transaction (any error writes nothing):
1. check: the portfolio is open, the date is the open business date and inside the pilot,
   every loan is still eligible (still in a sellable status, still 次级 or worse, never sold);
2. split the price to loans by claim and to funders by share (`collections.npl_sale`);
3. post the platform's entry: receivables out at gross, suspense and the loans' allowance from
   the last posted ECL run used, cash in, the rest to 6705 loss on sale;
4. write the funders' flows: a `charge_off` of each remaining position (so positions follow the
   loan's principal to zero) and each funder's `sale` proceeds; close of business posts them
   to the funder GL and the settlement file shows them in its `sale` column;
5. mark the loans `sold` (balances zeroed; a charged-off loan keeps its charge-off date as
   `closed_on`), record them in the no-resale register, and close the portfolio.

Servicing already refuses payments on a `sold` loan, so cash a borrower pays afterwards cannot
become our recovery: it belongs to the buyer.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, insert, text, update

from lendstack.collections.npl_buyers import Buyer
from lendstack.collections.npl_eligibility import CLASS_RANK
from lendstack.collections.npl_sale import (
    SaleTotals,
    funder_split,
    proceeds_by_funder,
    sale_entry,
    split_weighted,
)
from lendstack.core.errors import Conflict, ValidationError
from lendstack.core.money import from_fen, to_fen
from lendstack.funding.subledger import Flow
from lendstack.storage.batches import inserted_ids
from lendstack.storage.calendar import last_closed
from lendstack.storage.npl import StoredPortfolio, get_portfolio
from lendstack.storage.repositories import SqlLedger, now
from lendstack.storage.schema import (
    funder_flows,
    npl_portfolios,
    npl_sales,
    npl_sold_loans,
)

SELLABLE = ("active", "charged_off", "written_off")


@dataclass(frozen=True, slots=True)
class SaleResult:
    sale_id: int
    portfolio: str
    buyer: Buyer
    day: date
    loans: int
    totals: SaleTotals
    proceeds: dict[str, int]
    entry_id: int
    ecl_run_id: int | None

    def as_json(self) -> dict[str, Any]:
        t = self.totals
        return {
            "sale_id": self.sale_id,
            "portfolio": self.portfolio,
            "buyer": self.buyer.as_json(),
            "date": self.day.isoformat(),
            "loans": self.loans,
            "price": from_fen(t.price),
            "derecognised": {
                "principal": from_fen(t.principal),
                "interest": from_fen(t.interest),
                "fee": from_fen(t.fee),
                "penalty": from_fen(t.penalty),
            },
            "suspense_used": from_fen(t.suspense),
            "allowance_released": from_fen(t.allowance),
            "ecl_run_id": self.ecl_run_id,
            "carrying_amount": from_fen(t.carrying),
            "loss_on_sale": from_fen(t.loss),
            "proceeds_by_funder": {f: from_fen(v) for f, v in self.proceeds.items()},
            "entry_id": self.entry_id,
            "no_resale": True,
        }


@dataclass(frozen=True, slots=True)
class _Loan:
    id: int
    status: str
    risk_class: str
    sold: bool
    balances: tuple[int, int, int, int]
    suspense: int
    claim: int


def _open_date(conn: Connection, day: date) -> None:
    closed = last_closed(conn)
    if closed is not None and not closed < day <= closed + timedelta(days=1):
        raise Conflict(
            f"a sale moves money, so it is booked on the open business date "
            f"({closed + timedelta(days=1)}), not {day}",
            field="date",
        )


def _check(conn: Connection, portfolio: StoredPortfolio, day: date) -> None:
    if portfolio.status != "open":
        raise Conflict(f"portfolio {portfolio.name!r} is already {portfolio.status}", field="name")
    end = date.fromisoformat(portfolio.criteria["pilot_end"])
    if day > end:
        raise ValidationError(f"{day} is after the pilot's end ({end})", field="date")
    if day < portfolio.business_date:
        raise ValidationError(
            f"{day} is before the portfolio was packaged ({portfolio.business_date})",
            field="date",
        )
    _open_date(conn, day)


def _loans(conn: Connection, pid: int) -> list[_Loan]:
    rows = conn.execute(
        text(
            "SELECT l.id, l.status, l.risk_class, (SELECT COUNT(*) FROM npl_sold_loans s"
            " WHERE s.loan_id = l.id), l.bal_principal, l.bal_interest, l.bal_fee,"
            " l.bal_penalty, l.non_accrual, l.charged_off_fen - l.recovered_fen"
            " FROM npl_portfolio_loans pl JOIN loans l ON l.id = pl.loan_id"
            " WHERE pl.portfolio_id = :p ORDER BY l.id"
        ),
        {"p": pid},
    )
    out = []
    for lid, status, cls, sold, p, i, f, pen, parked, written in rows:
        active = status == "active"
        bal = (int(p), int(i), int(f), int(pen)) if active else (0, 0, 0, 0)
        suspense = bal[1] + bal[2] + bal[3] if active and parked else 0
        claim = sum(bal) if active else max(int(written), 0)
        out.append(_Loan(int(lid), status, cls, bool(sold), bal, suspense, claim))
    return out


def _refuse_ineligible(loans: list[_Loan], min_class: str) -> None:
    bad = []
    for loan in loans:
        if loan.sold:
            bad.append(f"loan {loan.id} is already sold")
        elif loan.status not in SELLABLE:
            bad.append(f"loan {loan.id} is {loan.status}")
        elif CLASS_RANK.get(loan.risk_class, -1) < CLASS_RANK[min_class]:
            bad.append(f"loan {loan.id} is now {loan.risk_class}")
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise ValidationError(
            "not eligible for sale: " + "; ".join(bad[:5]) + more + ". Nothing was sold; "
            "package the loans again",
            field="loans",
        )


def _allowance(conn: Connection, pid: int) -> tuple[int | None, dict[int, int]]:
    """The last posted ECL run and the allowance it holds for each of the portfolio's loans."""
    run = conn.execute(
        text("SELECT id FROM ecl_runs WHERE posted_at IS NOT NULL ORDER BY as_of DESC LIMIT 1")
    ).scalar()
    if run is None:
        return None, {}
    rows = conn.execute(
        text(
            "SELECT r.loan_id, r.ecl_fen FROM ecl_run_loans r JOIN npl_portfolio_loans pl"
            " ON pl.loan_id = r.loan_id AND pl.portfolio_id = :p WHERE r.run_id = :r"
        ),
        {"p": pid, "r": run},
    )
    return int(run), {int(lid): int(fen) for lid, fen in rows}


def _positions(conn: Connection, pid: int) -> tuple[dict[int, dict[str, int]], Sequence[Any]]:
    rows = conn.execute(
        text(
            "SELECT f.loan_id, f.funder_id, f.principal_fen, f.share_units FROM funder_positions f"
            " JOIN npl_portfolio_loans pl ON pl.loan_id = f.loan_id AND pl.portfolio_id = :p"
            " ORDER BY f.loan_id, f.funder_id"
        ),
        {"p": pid},
    ).all()
    shares: dict[int, dict[str, int]] = defaultdict(dict)
    for lid, funder_id, _, units in rows:
        shares[int(lid)][funder_id] = int(units)
    return shares, rows


def sell_portfolio(
    engine: Engine, name: str, buyer: Buyer, price: Decimal, day: date
) -> SaleResult:
    """Book the sale of portfolio `name` to `buyer` at `price` on `day`, all or nothing."""
    if price < 0:
        raise ValidationError(f"the price must not be negative, got {price}", field="price")
    price_fen = to_fen(price)
    with engine.begin() as conn:
        portfolio = get_portfolio(conn, name)
        _check(conn, portfolio, day)
        loans = _loans(conn, portfolio.id)
        _refuse_ineligible(loans, portfolio.criteria.get("min_class", "substandard"))
        run_id, allowance = _allowance(conn, portfolio.id)
        loan_prices = split_weighted(price_fen, {loan.id: loan.claim for loan in loans})
        totals = _totals(loans, sum(allowance.values()), price_fen)
        entry_id = SqlLedger(conn).post(sale_entry(totals, day, f"npl-sale:{portfolio.id}"))
        shares, positions = _positions(conn, portfolio.id)
        split = funder_split(loan_prices, shares)
        proceeds = proceeds_by_funder(split)
        sale_id = _record_sale(conn, portfolio, buyer, day, totals, run_id, proceeds, entry_id)
        _funder_flows(conn, sale_id, day, positions, split, shares)
        _mark_sold(conn, portfolio.id, sale_id, buyer.id, day, loan_prices, allowance)
    return SaleResult(sale_id, name, buyer, day, len(loans), totals, proceeds, entry_id, run_id)


def _totals(loans: list[_Loan], allowance: int, price: int) -> SaleTotals:
    sums = [sum(loan.balances[k] for loan in loans) for k in range(4)]
    suspense = sum(loan.suspense for loan in loans)
    return SaleTotals(sums[0], sums[1], sums[2], sums[3], suspense, allowance, price)


def _record_sale(
    conn: Connection,
    portfolio: StoredPortfolio,
    buyer: Buyer,
    day: date,
    totals: SaleTotals,
    run_id: int | None,
    proceeds: dict[str, int],
    entry_id: int,
) -> int:
    row = {
        "portfolio_id": portfolio.id, "buyer_id": buyer.id, "business_date": day,
        "price_fen": totals.price, "carrying_fen": totals.carrying,
        "allowance_released_fen": totals.allowance, "ecl_run_id": run_id,
        "loss_fen": totals.loss, "proceeds_json": json.dumps(proceeds, sort_keys=True),
        "entry_id": entry_id, "created_at": now(),
    }  # fmt: skip
    return inserted_ids(conn, npl_sales, [row])[0]


def _funder_flows(
    conn: Connection,
    sale_id: int,
    day: date,
    positions: Sequence[Any],
    split: dict[int, dict[str, int]],
    shares: dict[int, dict[str, int]],
) -> None:
    """Positions written off (each funder its own) and the proceeds by share, per loan."""
    rows = []

    def flow(lid: int, funder_id: str, kind: Flow, fen: int) -> None:
        rows.append({"business_date": day, "loan_id": lid, "funder_id": funder_id,
                     "flow": kind.value, "amount_fen": fen, "source": f"npl-sale:{sale_id}:{lid}"})  # fmt: skip

    for lid, funder_id, position, _ in positions:
        if int(position):
            flow(int(lid), funder_id, Flow.CHARGE_OFF, int(position))
    for lid, parts in split.items():
        if lid not in shares:
            continue  # the platform's own loan: no sub-ledger
        for funder_id, fen in parts.items():
            if fen:
                flow(lid, funder_id, Flow.SALE, fen)
    if rows:
        conn.execute(insert(funder_flows), rows)
    conn.execute(
        text(
            "UPDATE funder_positions SET principal_fen = 0 WHERE principal_fen <> 0 AND loan_id IN"
            " (SELECT loan_id FROM npl_portfolio_loans pl JOIN npl_sales s"
            " ON s.portfolio_id = pl.portfolio_id WHERE s.id = :s)"
        ),
        {"s": sale_id},
    )


def _mark_sold(
    conn: Connection,
    pid: int,
    sale_id: int,
    buyer_id: str,
    day: date,
    prices: dict[int, int],
    allowance: dict[int, int],
) -> None:
    in_portfolio = "id IN (SELECT loan_id FROM npl_portfolio_loans WHERE portfolio_id = :p)"
    conn.execute(
        text(
            "INSERT INTO loan_events (loan_id, business_date, kind, old, new)"
            f" SELECT id, :d, 'status', status, 'sold' FROM loans WHERE {in_portfolio}"
        ),
        {"p": pid, "d": day},
    )
    conn.execute(
        text(f"UPDATE loans SET closed_on = :d WHERE status = 'active' AND {in_portfolio}"),
        {"p": pid, "d": day},
    )
    # Marked written, as servicing marks every row it writes: a close that carries the
    # accrual's sums from the last close (`storage.cob.CarriedAccrual`) takes these loans off.
    conn.execute(
        text(
            "UPDATE loans SET status = 'sold', bal_principal = 0, bal_interest = 0, bal_fee = 0,"
            f" bal_penalty = 0, period_due = NULL, accrual_dirty = TRUE WHERE {in_portfolio}"
        ),
        {"p": pid},
    )
    conn.execute(
        text(
            "UPDATE npl_portfolio_loans SET sale_price_fen = :price, allowance_fen = :allow"
            " WHERE portfolio_id = :p AND loan_id = :l"
        ),
        [{"p": pid, "l": lid, "price": fen, "allow": allowance.get(lid, 0)}
         for lid, fen in prices.items()],
    )  # fmt: skip
    conn.execute(
        insert(npl_sold_loans),
        [{"loan_id": lid, "sale_id": sale_id, "buyer_id": buyer_id, "sold_on": day,
          "no_resale": True} for lid in prices],
    )  # fmt: skip
    conn.execute(update(npl_portfolios).where(npl_portfolios.c.id == pid).values(status="sold"))


__all__ = ["SaleResult", "sell_portfolio"]
