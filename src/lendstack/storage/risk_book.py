"""The ECL core's `LoanBook`, and the stress test's portfolio, read from the loan tables.

A handful of set-based queries, whatever the size of the book: the loans, the journal lines
dated after the reporting date (to take the open date's payments back out), the decisions the
loans were booked from, and the future installments of each loan's current schedule. The
exposure paths are then built with numpy, never in a loop over loans. docs/ecl.md ("From the
book") states every input and approximation; in short:

* the book is the loans open at the close of D: active, or paid off or sold after D, and
  disbursed on or before D. D must be the last closed date, because the loan rows hold the
  state of the last close (DPD, non-accrual); money that moved on the open date since is
  taken back out of the balances through the loan's own journal lines;
* EAD column 0 is the gross carrying amount at D: principal, interest, fee and penalty
  receivable, or principal alone on a non-accrual loan (the rest sits in suspense, never
  recognised as income). Column t is the t-th month-end after D on the current schedule paid
  as agreed: unpaid principal of the installments due after that month-end, plus interest of
  the period running at that month-end accrued linearly to it (as close of business accrues);
  fees are billed, not accrued, so they are not projected;
* EIR = (1 + (contract rate + 12 x per-period fee rate) / 12)^12 - 1;
* defaulted = non-accrual; with the default staging (stage 3 above 90 DPD) stage 3 is
  therefore "more than 90 DPD or non-accrual";
* PD at origination: the credit model's 12-month PD from the decision the loan was booked
  from (loans.reference = decision id), else the config's PD for the product; the current
  12-month PD is that PD raised to the floor of the loan's delinquency bucket (`pd.buckets`),
  or, with a transition matrix, the matrix's 12-month PD from the loan's bucket.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, TextClause, text

from lendstack.core.dates import add_months, is_month_end, last_day_of_month, months_between
from lendstack.core.errors import Conflict
from lendstack.core.money import FEN, from_fen
from lendstack.risk.capital import asset_class_for, risk_weighted_assets
from lendstack.risk.ecl import LoanBook
from lendstack.risk.ecl_settings import (
    EclConfig,
    bucket_adjusted_pd,
    lgd_for_products,
    pd_for_products,
)
from lendstack.risk.pd_curves import TransitionMatrix, matrix_pd_curves
from lendstack.risk.stress import CapitalBase, Portfolio, Segment
from lendstack.servicing.domain.delinquency import DEFAULT_BUCKETS
from lendstack.servicing.domain.ledger import Account
from lendstack.storage.calendar import last_closed
from lendstack.storage.mapping import from_day, to_day

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

_PARTITION = 50_000
"""Rows read from the database at a time."""

MINIMUM_CAPITAL_RATIO = Decimal("0.105")
"""Basel III minimum total capital (8 %) plus the conservation buffer (2.5 %): the capital a
stress run assumes when none is given."""

_IN_BOOK = (
    "l.disbursement_date <= :day AND (l.status = 'active'"
    " OR (l.status IN ('paid_off', 'sold') AND l.closed_on > :day))"
)
_LOANS = text(
    "SELECT l.id, l.product_id, l.annual_rate, l.fee_rate, l.bal_principal, l.bal_interest,"
    " l.bal_fee, l.bal_penalty, l.dpd, l.bucket, l.non_accrual FROM loans l"
    f" WHERE {_IN_BOOK} ORDER BY l.id"
)
_RECEIVABLES = {
    Account.PRINCIPAL_RECEIVABLE.code: 0,
    Account.INTEREST_RECEIVABLE.code: 1,
    Account.FEE_RECEIVABLE.code: 2,
    Account.PENALTY_RECEIVABLE.code: 3,
}
# From the entries dated after the day to their lines (CROSS JOIN keeps that order on SQLite):
# the few lines of the open date, not every receivable line the ledger ever wrote.
_LATER_MOVES = text(
    "SELECT jl.loan_id, jl.account, SUM(jl.debit_fen) - SUM(jl.credit_fen)"
    " FROM journal_entries je CROSS JOIN journal_lines jl"
    " WHERE jl.entry_id = je.id AND je.business_date > :day"
    " AND jl.loan_id IS NOT NULL AND jl.account IN ("
    + ", ".join(f"'{code}'" for code in _RECEIVABLES)
    + ") GROUP BY jl.loan_id, jl.account"
)
_DECISIONS_SQL = (
    "SELECT l.id, {record} FROM loans l JOIN decision_log d ON d.decision_id = l.reference"
    f" AND d.kind = 'decision' WHERE {_IN_BOOK}"
)
_WHOLE_RECORD = "d.record_json, NULL"
# SQLite (3.38+) hands back the JSON text of decision.score.pd as it stands in the record (its
# `->` copies the token, it does not reformat a number), parsed in C: a record is kilobytes,
# and Python parsing each new loan's whole record was most of reading the month's PDs. A
# record SQLite does not take as JSON comes whole, and Python judges it as ever.
_PD_TEXT = (
    "CASE WHEN json_valid(d.record_json) THEN NULL ELSE d.record_json END,"
    " CASE WHEN json_valid(d.record_json) THEN d.record_json -> '$.decision.score.pd' END"
)
_DECISIONS = text(_DECISIONS_SQL.format(record=_WHOLE_RECORD))
_DECISIONS_FROM = text(_DECISIONS_SQL.format(record=_WHOLE_RECORD) + " AND l.id >= :first")
_PD_DECISIONS = text(_DECISIONS_SQL.format(record=_PD_TEXT))
_PD_DECISIONS_FROM = text(_DECISIONS_SQL.format(record=_PD_TEXT) + " AND l.id >= :first")
_INSTALLMENTS = text(
    "SELECT i.loan_id, i.start_date, i.due_day, i.principal_fen - i.paid_principal_fen,"
    " i.interest_fen, i.paid_interest_fen FROM installments i"
    " JOIN loans l ON l.id = i.loan_id AND i.version = l.schedule_version"
    f" WHERE i.due_day > :d AND {_IN_BOOK}"
)


@dataclass(frozen=True, slots=True)
class BookInputs:
    """The ECL inputs as of a date, with the per-loan labels the service layer reports."""

    as_of: date
    book: LoanBook
    product: NDArray[np.str_]
    bucket: NDArray[np.str_]
    pd_12m: F64
    """The current 12-month PD of each loan (model path; the matrix's, with a matrix)."""
    from_decisions: int
    """How many loans take their origination PD from the decision they were booked from."""

    @property
    def loans(self) -> int:
        return int(self.book.loan_id.shape[0])


@dataclass
class DecisionPds:
    """Origination PDs already read from the decision log, by loan (None: no scored decision),
    for a caller that measures the same growing book again and again (the simulator, at each
    month-end). A loan's decision is logged before it is booked and never changes (the log is
    append-only, the loan's reference is fixed), so each record is read and parsed once, and a
    measure reads only the decisions of loans it has not seen: the newest, since ids only grow.
    Valid for one database only."""

    by_loan: dict[int, float | None] = field(default_factory=dict)


def require_closed(conn: Connection, day: date) -> date:
    """The last closed date, if `day` is closed; a Conflict naming `date` otherwise."""
    last = last_closed(conn)
    if last is None:
        raise Conflict(
            "no business date has been closed yet: run `lendstack cob run --through D` first",
            field="date",
        )
    if day > last:
        raise Conflict(
            f"{day} is not a closed business date (the last close is {last}); "
            f"run `lendstack cob run --through {day}` first",
            field="date",
        )
    return last


def current_date(conn: Connection) -> date:
    """The last closed date: the date the loan rows describe."""
    last = last_closed(conn)
    if last is None:
        return require_closed(conn, date.min)
    return last


def require_current(conn: Connection, day: date) -> None:
    """The loan rows hold the state of the last close, so only that date can be measured."""
    last = require_closed(conn, day)
    if day != last:
        raise Conflict(
            f"the book can be measured only as of the last closed date ({last}), not {day}: "
            "delinquency and balances of earlier dates are not kept loan by loan",
            field="date",
        )


def fetch_columns(
    conn: Connection, sql: Any, params: dict[str, Any], dtypes: Sequence[Any]
) -> list[NDArray[Any]]:
    """A query's columns as numpy arrays, read in partitions so that a large book never sits
    in memory as Python row objects.

    A plain SQL text on SQLite goes to the driver's own cursor (its `:name` parameters are
    sqlite3's named style): the same values SQLAlchemy hands back for an untyped text query,
    without a Row object per row, which at a month-end is most of reading the book."""
    driver = _driver_params(params) if conn.dialect.name == "sqlite" else None
    if driver is not None and isinstance(sql, TextClause):
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql.text, driver)
            return _columns(iter(lambda: cursor.fetchmany(_PARTITION), []), dtypes)
        finally:
            cursor.close()
    result = conn.execute(sql, params, execution_options={"yield_per": _PARTITION})
    return _columns(result.partitions(_PARTITION), dtypes)


def _columns(partitions: Iterable[Sequence[Any]], dtypes: Sequence[Any]) -> list[NDArray[Any]]:
    """Each partition's rows taken column by column: a numeric column straight into its
    array (`np.fromiter`), any other through a list. Transposing a partition first
    (`zip(*rows)`: one call with a row per argument) cost more than the rest of the read."""
    parts: list[list[NDArray[Any]]] = [[] for _ in dtypes]
    numeric = [np.dtype(dtype).kind in "biuf" for dtype in dtypes]
    for rows in partitions:
        if rows and len(rows[0]) != len(dtypes):
            raise ValueError(f"{len(rows[0])} columns read, {len(dtypes)} dtypes given")
        for k, dtype in enumerate(dtypes):
            values = map(itemgetter(k), rows)
            parts[k].append(
                np.fromiter(values, dtype=dtype, count=len(rows))
                if numeric[k]
                else np.array(list(values), dtype=dtype)
            )
    return [
        np.concatenate(p) if p else np.array([], dtype=dt)
        for p, dt in zip(parts, dtypes, strict=True)
    ]


def _driver_params(params: dict[str, Any]) -> dict[str, Any] | None:
    """The parameters as SQLAlchemy binds them on SQLite (a date as its ISO text), or None
    when one is of a type this does not cover (SQLAlchemy binds it then)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, datetime) or not isinstance(value, int | float | str | date):
            return None
        out[name] = value.isoformat() if isinstance(value, date) else value
    return out


def load_book(
    conn: Connection,
    day: date,
    config: EclConfig,
    matrix: TransitionMatrix | None = None,
    *,
    paths: bool = True,
    pds: DecisionPds | None = None,
) -> BookInputs:
    """The book at the close of `day` (the last closed date) as the ECL core's inputs;
    `paths=False` reads the exposure now only (one column), all the stress test needs;
    `pds` keeps the origination PDs read between calls on the same database."""
    require_current(conn, day)
    params = {"day": day, "d": to_day(day)}
    i8, f8 = np.int64, np.float64
    ids, product, rate, fee, p, i, f, pen, dpd, bucket_no, non_accrual = fetch_columns(
        conn, _LOANS, params, (i8, np.str_, f8, f8, i8, i8, i8, i8, i8, np.intp, bool)
    )
    balances = _balances_at(conn, ids, np.stack([p, i, f, pen], axis=1), params)
    bucket = np.array(DEFAULT_BUCKETS.labels, dtype=np.str_)[bucket_no]
    ead_now = _carrying_amount(balances, non_accrual)
    ead = _exposure_paths(conn, ids, ead_now, day, params) if paths else ead_now.reshape(-1, 1)
    model_pd, found = _decision_pds(conn, ids, params, pds)
    pd_origination = np.where(found, model_pd, pd_for_products(product, config))
    state, pd_12m, pd_now = _pd_now(pd_origination, bucket, config, matrix)
    book = LoanBook(
        loan_id=ids, ead_fen=ead, eir=_eir(rate, fee), lgd=lgd_for_products(product, config),
        dpd=dpd, defaulted=non_accrual, pd_origination=pd_origination, pd_now=pd_now,
        state=state, pd_12m=None if matrix is not None else pd_12m,
        forborne=_observed_restructures(conn, ids),
    )  # fmt: skip
    return BookInputs(day, book, product, bucket, pd_now, int(found.sum()))


def _observed_restructures(conn: Connection, ids: I64) -> NDArray[np.bool_]:
    """Which loans are restructured and still in their observation period (forborne)."""
    held = conn.execute(
        text("SELECT DISTINCT loan_id FROM loan_restructures WHERE status = 'observing'")
    ).scalars()
    return np.isin(ids, np.fromiter(held, dtype=np.int64))


def _balances_at(
    conn: Connection, ids: I64, balances: NDArray[np.int64], params: dict[str, Any]
) -> NDArray[np.int64]:
    """(loans, 4) principal, interest, fee, penalty at the close of the day: today's balances
    less what the loan's own journal lines moved on the receivables after it."""
    out = balances.reshape(ids.shape[0], 4).astype(np.int64)
    for loan_id, account, net in conn.execute(_LATER_MOVES, params):
        at = int(np.searchsorted(ids, int(loan_id)))
        if at < ids.shape[0] and ids[at] == int(loan_id):
            out[at, _RECEIVABLES[str(account)]] -= int(net or 0)
    return out


def _carrying_amount(balances: NDArray[np.int64], non_accrual: NDArray[np.bool_]) -> I64:
    """Gross carrying amount: all receivables; principal alone when interest is suspended."""
    total = balances.sum(axis=1)
    return np.maximum(np.where(non_accrual, balances[:, 0], total), 0).astype(np.int64)


def _eir(rate: F64, fee: F64) -> F64:
    """Contract rate plus the per-period fee rate x 12, compounded monthly (docs/ecl.md)."""
    return np.asarray(np.power(1.0 + (rate + 12.0 * fee) / 12.0, 12.0) - 1.0, dtype=np.float64)


def month_ends(day: date, count: int) -> list[date]:
    """The t-th month-end after `day`, t = 1..count; from a month-end, the calendar's."""
    if not is_month_end(day):
        return [add_months(day, t) for t in range(1, count + 1)]
    out = []
    for t in range(1, count + 1):
        moved = add_months(day.replace(day=1), t)
        out.append(moved.replace(day=last_day_of_month(moved.year, moved.month)))
    return out


def _exposure_paths(
    conn: Connection, ids: I64, ead_now: I64, day: date, params: dict[str, Any]
) -> I64:
    """(loans, H) exposure paths in fen: column 0 now, column t at the t-th month-end."""
    i8 = np.int64
    loan_id, start_date, due, unpaid, interest, paid_interest = fetch_columns(
        conn, _INSTALLMENTS, params, (i8, "datetime64[D]", i8, i8, i8, i8)
    )
    if not due.size or ids.shape[0] == 0:
        return ead_now.reshape(-1, 1)
    loan = np.searchsorted(ids, loan_id)
    start = start_date.astype(np.int64)
    ends = _month_end_days(day, int(due.max()))
    horizon = 1 + int(np.searchsorted(ends, due.max(), side="left"))
    path = np.zeros((ids.shape[0], horizon + 1), dtype=np.int64)
    path[:, 0] = ead_now
    # unpaid principal stays owed at every month-end before its due day: columns 1..k
    k = np.searchsorted(ends, due, side="left")
    np.add.at(path[:, 1], loan, unpaid)
    np.add.at(path, (loan, k + 1), -unpaid)
    path[:, 1:] = np.cumsum(path[:, 1:], axis=1)
    _add_accrued_interest(path, loan, start, due, interest - paid_interest, ends)
    return np.ascontiguousarray(path[:, :horizon])


def _month_end_days(day: date, last_due: int) -> I64:
    """Epoch days of the month-ends after `day`, through the first on or after `last_due`."""
    months = max(1, months_between(day, from_day(last_due)) + 1)
    while to_day(month_ends(day, months)[-1]) < last_due:
        months += 1
    return np.array([to_day(d) for d in month_ends(day, months)], dtype=np.int64)


def _add_accrued_interest(
    path: I64, loan: I64, start: I64, due: I64, interest: I64, ends: I64
) -> None:
    """Each month-end strictly inside an installment's period carries that period's interest
    accrued linearly to it (rounded half up), less any paid ahead."""
    lo = np.searchsorted(ends, start, side="right")
    hi = np.searchsorted(ends, due, side="left")
    counts = np.maximum(hi - lo, 0)
    if not counts.any():
        return
    which = np.repeat(np.arange(counts.shape[0]), counts)
    first = np.cumsum(counts) - counts
    j = lo[which] + (np.arange(which.shape[0]) - first[which])
    span = np.maximum(due[which] - start[which], 1)
    owed = np.maximum(interest[which], 0)
    accrued = (2 * owed * (ends[j] - start[which]) + span) // (2 * span)
    np.add.at(path, (loan[which], j + 1), accrued)


def _decision_pds(
    conn: Connection, ids: I64, params: dict[str, Any], known: DecisionPds | None = None
) -> tuple[F64, NDArray[np.bool_]]:
    """The model PD each loan was approved at, where it was booked from a scored decision."""
    if known is None:
        return _read_decision_pds(conn, ids, params)
    loans = ids.tolist()
    missing = [i for i in loans if i not in known.by_loan]
    if missing:
        _learn_pds(conn, known, missing, params)
    values = [known.by_loan[i] for i in loans]
    found = np.array([v is not None for v in values], dtype=bool)
    pd = np.array([0.0 if v is None else v for v in values], dtype=np.float64)
    return pd, found


def _learn_pds(
    conn: Connection, known: DecisionPds, missing: list[int], params: dict[str, Any]
) -> None:
    """Read the decisions of the `missing` loans into `known`, as `_read_decision_pds` would:
    the loans from the lowest missing id up are read, those already known are skipped."""
    wanted = set(missing)
    learned: dict[int, float | None] = {}
    for loan_id, value in _scored(conn, params, first=min(missing)):
        if loan_id not in wanted:
            continue
        if value is not None:
            learned[loan_id] = value
        else:  # a decision without a usable PD never hides one with it
            learned.setdefault(loan_id, None)
    for loan_id in missing:
        known.by_loan[loan_id] = learned.get(loan_id)


def _read_decision_pds(
    conn: Connection, ids: I64, params: dict[str, Any]
) -> tuple[F64, NDArray[np.bool_]]:
    pd = np.zeros(ids.shape[0], dtype=np.float64)
    found = np.zeros(ids.shape[0], dtype=bool)
    for loan_id, value in _scored(conn, params):
        at = int(np.searchsorted(ids, loan_id))
        if value is not None and at < ids.shape[0] and ids[at] == loan_id:
            pd[at], found[at] = value, True
    return pd, found


def _scored(
    conn: Connection, params: dict[str, Any], first: int | None = None
) -> Iterator[tuple[int, float | None]]:
    """(loan, `model_pd` of its decision record) for each decision of the book's loans (from
    loan id `first` up, if given), in the query's order."""
    sqlite = conn.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 38)
    if first is None:
        query = _PD_DECISIONS if sqlite else _DECISIONS
    else:
        query = _PD_DECISIONS_FROM if sqlite else _DECISIONS_FROM
        params = {**params, "first": first}
    result = conn.execute(query, params, execution_options={"yield_per": _PARTITION})
    for rows in result.partitions(_PARTITION):
        for loan_id, record_json, pd_json in rows:
            yield int(loan_id), pd_of(record_json, pd_json)


def pd_of(record_json: str | None, pd_json: str | None) -> float | None:
    """`model_pd` of a decision row as the query read it: the whole record, or (SQLite)
    the JSON text of its decision.score.pd alone (None: the record has none)."""
    if record_json is not None:
        return model_pd(record_json)
    return None if pd_json is None else _pd_value(pd_json)


def model_pd(record_json: str) -> float | None:
    """decision.score.pd of a decision record, if it was scored (and is a probability)."""
    try:
        score = json.loads(record_json).get("decision", {}).get("score")
    except (ValueError, AttributeError):
        return None
    return _as_pd(score.get("pd") if isinstance(score, dict) else None)


def _pd_value(pd_json: str) -> float | None:
    """`model_pd` of a record whose decision.score.pd is the JSON text `pd_json`."""
    try:
        return _as_pd(json.loads(pd_json))
    except ValueError:
        return None


def _as_pd(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        pd = float(value)
    except ValueError:
        return None
    return pd if 0.0 <= pd <= 1.0 else None


def _pd_now(
    pd_origination: F64,
    bucket: NDArray[np.str_],
    config: EclConfig,
    matrix: TransitionMatrix | None,
) -> tuple[NDArray[np.int16] | None, F64, F64]:
    """(matrix state, model 12-month PD now, PD now for the staging ratio test).

    Both staging PDs are 12-month figures, so the ratio test compares like with like."""
    pd_12m = bucket_adjusted_pd(pd_origination, bucket, config)
    if matrix is None:
        return None, pd_12m, pd_12m
    state = matrix.index_of(bucket)
    curves = matrix_pd_curves(matrix, config, 12)
    by_state = np.einsum("s,sj->j", config.weights, curves.sum(axis=1))
    pd_matrix = np.clip(by_state[state.astype(np.intp)], 0.0, 1.0)
    return state, pd_12m, np.asarray(pd_matrix, dtype=np.float64)


# --- the stress test's portfolio ---------------------------------------------------------


def stress_portfolio(inputs: BookInputs, config: EclConfig) -> Portfolio:
    """One segment per product over the performing loans (not past the default DPD, not
    non-accrual): count, exposure now, EAD-weighted current 12-month PD, the config's LGD."""
    book = inputs.book
    performing = ~book.defaulted & (book.dpd <= config.staging.default_dpd_over)
    ead = book.ead_fen[:, 0].astype(np.int64)
    segments = []
    for product in sorted(set(inputs.product[performing].tolist())):
        mine = performing & (inputs.product == product)
        segments.append(_segment(product, ead[mine], inputs.pd_12m[mine], book.lgd[mine]))
    if not segments:
        raise Conflict(f"the book has no performing loans on {inputs.as_of}", field="date")
    return Portfolio(tuple(segments))


def _segment(product: str, ead: I64, pd: F64, lgd: F64) -> Segment:
    total = int(ead.sum(dtype=np.int64))
    weights = ead if total > 0 else np.ones_like(ead)
    return Segment(
        product=product,
        count=int(ead.shape[0]),
        ead=from_fen(total),
        pd=float(np.average(pd, weights=weights)),
        lgd=float(lgd[0]),
    )


def default_capital(portfolio: Portfolio) -> Decimal:
    """10.5 % of the book's starting RWA: the minimum plus the conservation buffer."""
    rwa = sum(
        risk_weighted_assets(float(s.ead), s.pd, s.lgd, s.asset_class or asset_class_for(s.product))
        for s in portfolio.segments
    )
    return (Decimal(rwa) * MINIMUM_CAPITAL_RATIO).quantize(FEN)


def capital_base(portfolio: Portfolio, capital: Decimal | None, profit_rate: float) -> CapitalBase:
    amount = default_capital(portfolio) if capital is None else capital
    return CapitalBase(amount, pre_provision_profit_rate=profit_rate)


def segments_json(portfolio: Portfolio) -> list[dict[str, Any]]:
    return [
        {"product": s.product, "count": s.count, "ead": s.ead, "pd": round(s.pd, 6), "lgd": s.lgd}
        for s in portfolio.segments
    ]
