"""NPL portfolios in SQL: stored portfolios, the package date, recovery history and valuation.

The pure rules live in `lendstack.collections.npl_*`; packaging is `storage/npl_package.py`,
the sale `storage/npl_sale.py`. Reads are set-wise into numpy columns (one statement per
concern, never a query per loan, since packages run to 500,000 loans).

Facts are as of the last close: DPD and class are what close of business left on the loan, and
the package date may be that closed date or the open date after it (DPD is moved on by the
days in between). Money is integer fen throughout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, select

from lendstack.collections.npl_recovery import History, build_curve, months_between, pool
from lendstack.collections.npl_valuation import Package, Terms, Valuation, value
from lendstack.core.errors import Conflict, NotFound
from lendstack.storage.calendar import as_date, last_closed
from lendstack.storage.driver_sql import driver_rows
from lendstack.storage.schema import npl_portfolios

NPL_DPD = 90
"""Default, for the curves and the tape, is the first day past 90 DPD (次级)."""


def fetch_raw(
    conn: Connection, sql: str, params: dict[str, Any], dtypes: tuple[Any, ...]
) -> list[NDArray[Any]]:
    """A query's columns as numpy arrays, fetched through the DBAPI cursor of `conn`'s own
    transaction: SQLAlchemy compiles the text for the dialect (so the same SQL and `:name`
    parameters run on SQLite and PostgreSQL), but builds no Row objects for 500,000 rows."""
    rows = driver_rows(conn, sql, params)
    if not rows:
        return [np.array([], dtype=d) for d in dtypes]
    return [np.array(col, dtype=d) for col, d in zip(zip(*rows, strict=True), dtypes, strict=True)]


@dataclass(frozen=True, slots=True)
class StoredPortfolio:
    id: int
    name: str
    business_date: date
    status: str
    criteria: dict[str, Any]
    loans: int
    principal_fen: int
    interest_fen: int
    fee_fen: int
    penalty_fen: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "date": self.business_date.isoformat(),
            "status": self.status,
            "loans": self.loans,
            "principal_fen": self.principal_fen,
            "interest_fen": self.interest_fen,
            "fee_fen": self.fee_fen,
            "penalty_fen": self.penalty_fen,
            "criteria": self.criteria,
        }


def _portfolio(row: Any) -> StoredPortfolio:
    return StoredPortfolio(
        int(row.id), row.name, as_date(row.business_date) or date.min, row.status,
        json.loads(row.criteria_json), int(row.loans), int(row.principal_fen),
        int(row.interest_fen), int(row.fee_fen), int(row.penalty_fen),
    )  # fmt: skip


def get_portfolio(conn: Connection, name: str) -> StoredPortfolio:
    row = conn.execute(select(npl_portfolios).where(npl_portfolios.c.name == name)).first()
    if row is None:
        raise NotFound(f"no NPL portfolio named {name!r}", field="name")
    return _portfolio(row)


def list_portfolios(conn: Connection) -> list[StoredPortfolio]:
    rows = conn.execute(select(npl_portfolios).order_by(npl_portfolios.c.id))
    return [_portfolio(r) for r in rows]


# --- the package date -----------------------------------------------------------------------


def facts_date(conn: Connection, day: date) -> date:
    """The last close, checked against the package date: `day` is it or the open date after."""
    closed = last_closed(conn)
    if closed is None:
        raise Conflict("no business date is closed yet; run `lendstack cob run`", field="date")
    if not closed <= day <= closed + timedelta(days=1):
        raise Conflict(
            f"{day} is not the last closed date ({closed}) or the open date after it",
            field="date",
        )
    return closed


# --- valuation inputs --------------------------------------------------------------------------


def package_of(conn: Connection, portfolio: StoredPortfolio) -> tuple[Package, list[str]]:
    """The portfolio as the valuation needs it, and the segments (products) its loans are in."""
    product, months, claim, principal, interest = fetch_raw(
        conn,
        (
            "SELECT l.product_id, pl.months_since_default, pl.principal_fen + pl.interest_fen"
            " + pl.fee_fen + pl.penalty_fen, pl.principal_fen, pl.interest_fen"
            " FROM npl_portfolio_loans pl JOIN loans l ON l.id = pl.loan_id"
            " WHERE pl.portfolio_id = :p ORDER BY pl.loan_id"
        ),
        {"p": portfolio.id},
        (object, np.int64, np.int64, np.int64, np.int64),
    )
    names, index = np.unique(product.astype(str), return_inverse=True)
    package = Package(index.astype(np.int64), months, claim, principal, interest)
    return package, [str(n) for n in names]


def _days(values: Any) -> NDArray[np.int64]:
    """DATE values (SQLite text or dates) as epoch days; a missing one is -1."""
    dates = np.array([None if v is None else str(v)[:10] for v in values], dtype="datetime64[D]")
    return np.where(np.isnat(dates), -1, dates.astype(np.int64))


def recovery_history(conn: Connection, as_of: date) -> dict[str, History]:
    """Every charged-off loan's exposure, months observed and recoveries, by product.

    Default is 90 DPD; a charge-off at D DPD happened (D - 90) days after it. A loan is
    observed until `as_of`, or until it was sold (its later cash is the buyer's). The cash is
    the recovery part of each posted payment on it (the funders' `recovery` flows split the
    same cash, so they are not counted again).
    """
    ids, product, exposure, dpd, closed_on, sold_on = fetch_raw(
        conn,
        (
            "SELECT l.id, l.product_id, l.charged_off_fen, l.dpd, l.closed_on, s.sold_on"
            " FROM loans l LEFT JOIN npl_sold_loans s ON s.loan_id = l.id"
            " WHERE l.charged_off_fen > 0 ORDER BY l.id"
        ),
        {},
        (np.int64, object, np.int64, np.int64, object, object),
    )
    end_day = (np.datetime64(as_of, "D") - np.datetime64("1970-01-01", "D")).astype(np.int64)
    default = _days(closed_on) - np.maximum(dpd - NPL_DPD, 0)
    sold = _days(sold_on)
    end = np.where(sold >= 0, np.minimum(sold, end_day), end_day)
    observed = months_between(end - default)
    loan_ids, value_dates, applied = fetch_raw(
        conn,
        (
            "SELECT y.loan_id, y.value_date, y.applied FROM payments y JOIN loans l"
            " ON l.id = y.loan_id WHERE l.charged_off_fen > 0 AND y.kind = 'recovery'"
            " AND y.status = 'posted' ORDER BY y.loan_id"
        ),
        {},
        (np.int64, object, object),
    )
    rec_fen = np.array([int(json.loads(a).get("recovery", 0)) for a in applied], dtype=np.int64)
    at = np.searchsorted(ids, loan_ids)
    rec_month = months_between(_days(value_dates) - default[at])
    return _by_segment(product, exposure, observed, at, rec_month, rec_fen)


def _by_segment(
    product: NDArray[Any],
    exposure: NDArray[np.int64],
    observed: NDArray[np.int64],
    at: NDArray[np.intp],
    rec_month: NDArray[np.int64],
    rec_fen: NDArray[np.int64],
) -> dict[str, History]:
    out = {}
    names: list[str] = sorted({str(p) for p in product.tolist()})
    for name in names:
        rows = np.nonzero(product == name)[0]
        local = np.full(len(product), -1, dtype=np.int64)
        local[rows] = np.arange(len(rows))
        mine = (local[at] >= 0) & (rec_fen > 0) if len(at) else np.zeros(0, dtype=bool)
        out[name] = History(exposure[rows], observed[rows], local[at][mine],
                                 rec_month[mine], rec_fen[mine])  # fmt: skip
    return out


def value_portfolio(engine: Engine, name: str, terms: Terms) -> Valuation:
    """Value a stored portfolio from the lender's recovery history as of its package date."""
    with engine.connect() as conn:
        portfolio = get_portfolio(conn, name)
        package, segments = package_of(conn, portfolio)
        histories = recovery_history(conn, portfolio.business_date)
    pooled = pool(list(histories.values()))
    curves = [build_curve(s, histories.get(s, pool([])), pooled) for s in segments]
    return value(package, curves, terms)


__all__ = [
    "NPL_DPD",
    "StoredPortfolio",
    "facts_date",
    "get_portfolio",
    "list_portfolios",
    "package_of",
    "recovery_history",
    "value_portfolio",
]
