"""The regulator report's inputs, read from the database in a handful of set-based queries.

Everything the monthly report shows is read here and handed to the pure table builders in
`lendstack.risk.regulator` as polars frames and frozen records: the month-end panel rows
(`loan_month_ends`), the original schedules of the loans on the books (for the all-in APR),
the funding plans and funder positions, the funders' concentration from `SqlFunding.exposures`
(reused, not re-derived), the ledger's principal receivable at the month-end, the ECL run in
force, the month's alerts and, where those tables exist, NPL sales and model monitoring.

The rule pack is applied here too (the risk core does not import underwriting): each loan's
APR cap and credit-line cap are the strictest the pack sets, on the loan's disbursement date,
for the licence types of the lenders that fund it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from operator import itemgetter
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Connection, Engine, TextClause, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from lendstack.core.dates import add_months, last_day_of_month
from lendstack.core.errors import ValidationError
from lendstack.core.money import to_fen
from lendstack.funding import Funder, FunderKind, Rule
from lendstack.risk.panel import BUCKETS, validate_panel
from lendstack.risk.regulator import (
    Concentration,
    EclSnapshot,
    FunderInfo,
    Period,
    RegulatorInputs,
)
from lendstack.risk.regulator_apr import Contracts
from lendstack.servicing.domain.ledger import Account
from lendstack.storage.alerts import SqlAlerts
from lendstack.storage.calendar import CLOSED_STEP, as_date
from lendstack.storage.funding import SqlFunding
from lendstack.underwriting.funding_desk import funding_policy
from lendstack.underwriting.rules import RuleKind, RulePack

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_ON_BOOKS = "m.month_end = :d AND m.state IN (" + ", ".join(f"'{s}'" for s in BUCKETS) + ")"
_PANEL = text(
    "SELECT loan_id, state, dpd, principal_fen, risk_class, product_id, funder, province,"
    " channel, months_on_book FROM loan_month_ends WHERE month_end = :d"
)
_CONTRACTS = text(
    "SELECT l.id, l.principal_fen, l.term_months, l.upfront_fee_rate, l.rounding,"
    " l.disbursement_date FROM loans l JOIN loan_month_ends m ON m.loan_id = l.id"
    f" WHERE {_ON_BOOKS}"
)
_FLOWS = text(
    "SELECT i.loan_id, i.number, i.principal_fen + i.interest_fen + i.fee_fen"
    " FROM installments i JOIN loan_month_ends m ON m.loan_id = i.loan_id"
    f" WHERE i.version = 1 AND {_ON_BOOKS}"
)
_POSITIONS = text(
    "SELECT p.loan_id, p.funder_id, p.share_units FROM funder_positions p"
    f" JOIN loan_month_ends m ON m.loan_id = p.loan_id WHERE {_ON_BOOKS}"
)
_PLANS = text(
    "SELECT f.loan_id, f.funder_id, f.share FROM funding_plans f"
    " JOIN loan_month_ends m ON m.loan_id = f.loan_id"
    " WHERE m.month_end = :d AND (m.state IN ("
    + ", ".join(f"'{s}'" for s in BUCKETS)
    + ") OR m.months_on_book = 0)"
)
_ORIGINATIONS = text(
    "SELECT m.loan_id, l.principal_fen FROM loan_month_ends m JOIN loans l ON l.id = m.loan_id"
    " WHERE m.month_end = :d AND m.months_on_book = 0"
)
_BORROWERS = text(
    "SELECT l.id, d.borrower_key FROM loans l JOIN loan_month_ends m ON m.loan_id = l.id"
    " JOIN decision_log d ON d.decision_id = l.reference AND d.kind = 'decision'"
    f" WHERE {_ON_BOOKS}"
)
_LEDGER = text(
    "SELECT COALESCE(SUM(jl.debit_fen), 0) - COALESCE(SUM(jl.credit_fen), 0)"
    " FROM journal_lines jl JOIN journal_entries je ON je.id = jl.entry_id"
    " WHERE jl.account = :account AND je.business_date <= :d"
)
_CLOSED_IN = text(
    "SELECT COUNT(*), MAX(business_date) FROM cob_steps"
    " WHERE step = :step AND business_date >= :first AND business_date <= :last"
)
_ECL = text(
    "SELECT id, as_of, config_id, posted_at, total_fen, ead_fen, stage1_fen, stage2_fen,"
    " stage3_fen, stage1_loans, stage2_loans, stage3_loans FROM ecl_runs WHERE as_of <= :d"
    " ORDER BY as_of DESC, CASE WHEN posted_at IS NULL THEN 1 ELSE 0 END, id DESC LIMIT 1"
)
_SALES = text(
    "SELECT s.id, s.business_date, s.buyer_id, p.loans, p.principal_fen, s.carrying_fen,"
    " s.price_fen, s.allowance_released_fen, s.loss_fen FROM npl_sales s"
    " JOIN npl_portfolios p ON p.id = s.portfolio_id"
    " WHERE s.business_date >= :first AND s.business_date <= :d ORDER BY s.business_date, s.id"
)
PLATFORM_LICENCE = "online_microlender"
"""The licence the platform lends under when it funds a loan alone (a rule-pack lender type)."""


def parse_month(value: str) -> tuple[date, date]:
    """'YYYY-MM' as (first day, last day); anything else is a ValidationError naming month."""
    match = _MONTH.match(value.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValidationError(f"expected YYYY-MM, e.g. 2026-06; got {value!r}", field="month")
    year, month = int(match.group(1)), int(match.group(2))
    return date(year, month, 1), date(year, month, last_day_of_month(year, month))


def resolve_period(engine: Engine, month: str) -> Period:
    """The month to report: it must have closed business dates, its last day among them."""
    first, last = parse_month(month)
    with engine.connect() as conn:
        count, latest = conn.execute(
            _CLOSED_IN, {"step": CLOSED_STEP, "first": first, "last": last}
        ).one()
    if not count:
        raise ValidationError(
            f"{month} has no closed business dates; close it first (lendstack cob run)",
            field="month",
        )
    if as_date(latest) != last:
        raise ValidationError(
            f"{month} is closed only through {as_date(latest)}; the regulator report needs "
            f"its month-end {last} closed",
            field="month",
        )
    return Period(first, last, int(count))


HISTORY_MONTHS = 24
"""Month-ends of the panel the analytics read: two years of cohorts."""


def load_inputs(
    engine: Engine,
    period: Period,
    pack: RulePack,
    *,
    platform_licence: str = PLATFORM_LICENCE,
    monitoring: Callable[[], MonitoringResult] | None = None,
    history_months: int = HISTORY_MONTHS,
) -> RegulatorInputs:
    """Everything the report needs for `period`, read once; the analytics read the last
    `history_months` month-ends of the panel (0: none)."""
    d, params = period.month_end, {"d": period.month_end}
    funding = SqlFunding(engine)
    policy = funding_policy(pack, d)
    funders = funding.all()
    with engine.connect() as conn:
        panel = _panel(conn, params)
        contracts = _contracts(conn, params)
        positions = _frame(conn, _POSITIONS, params, {"loan_id": pl.Int64, "funder_id": pl.String,
                                                      "share_units": pl.Int64})  # fmt: skip
        plans = _frame(conn, _PLANS, params, {"loan_id": pl.Int64, "funder_id": pl.String,
                                              "share": pl.String})  # fmt: skip
        originations = _frame(conn, _ORIGINATIONS, params,
                              {"loan_id": pl.Int64, "principal_fen": pl.Int64})  # fmt: skip
        borrowers = _frame(conn, _BORROWERS, params, {"loan_id": pl.Int64, "borrower": pl.String})
        ledger = int(conn.execute(_LEDGER, {**params, "account": _PRINCIPAL}).scalar() or 0)
        ecl = _ecl(conn, params)
        sales, sales_note = _sales(conn, {**params, "first": period.month})
    caps = loan_caps(pack, contracts, plans, funders, platform_licence, borrowers)
    exposures = funding.exposures(d, policy)
    return RegulatorInputs(
        period=period, pack=f"{pack.id} {pack.version}", panel=panel, contracts=contracts,
        caps=caps, positions=positions, plans=plans, originations=originations,
        funders=tuple(_info(f) for f in funders), policy=policy,
        concentration=tuple(_concentration(p) for p in exposures.partners if not p.funder.is_platform),
        ledger_principal_fen=ledger, ecl=ecl, alerts=_alerts(engine, period),
        npl_sales=sales, npl_sales_note=sales_note, **_monitored(monitoring),
        **_history(engine, period, history_months),
    )  # fmt: skip


def _history(engine: Engine, period: Period, months: int) -> dict[str, Any]:
    if months <= 0:
        return {"history": None, "history_note": "Left out on request (--history-months 0)."}
    since = add_months(period.month, 1 - months)
    note = (
        f"Over the {months} month-ends from {since:%Y-%m} (loans booked earlier roll, but are"
        " no cohort)."
    )
    with engine.connect() as conn:
        frame = _frame(conn, _HISTORY, {"since": since, "d": period.month_end}, _HISTORY_SCHEMA)
    history = validate_panel(frame, check_values=True).collect()
    return {"history": history, "history_note": note}


_HISTORY = text(
    "SELECT loan_id, month_end, origination_month, months_on_book, state, dpd, principal_fen,"
    " risk_class, product_id, funder, province, channel, first_payment_default"
    " FROM loan_month_ends WHERE month_end >= :since AND month_end <= :d"
)
_HISTORY_SCHEMA = {
    "loan_id": pl.Int64, "month_end": pl.Date, "origination_month": pl.Date,
    "months_on_book": pl.Int64, "state": pl.String, "dpd": pl.Int64, "principal_fen": pl.Int64,
    "risk_class": pl.String, "product_id": pl.String, "funder": pl.String,
    "province": pl.String, "channel": pl.String, "first_payment_default": pl.Boolean,
}  # fmt: skip
"""The panel's columns as the driver gives them (the two enums as text)."""


_PRINCIPAL = Account.PRINCIPAL_RECEIVABLE.code
MonitoringResult = tuple[dict[str, list[dict[str, object]]] | None, str]
"""The monitoring tables, or None and the reason they are missing."""


def _monitored(monitoring: Callable[[], MonitoringResult] | None) -> dict[str, Any]:
    if monitoring is None:
        return {"monitoring": None, "monitoring_note": "Left out on request (--no-monitoring)."}
    tables, note = monitoring()
    return {"monitoring": tables, "monitoring_note": note}


def read_columns(
    conn: Connection, sql: TextClause, params: dict[str, Any], dtypes: Sequence[Any]
) -> list[Any]:
    """A query's columns straight from the driver's cursor: numpy arrays, or plain lists for
    a `None` dtype (text, which polars takes faster from a list than from numpy objects).

    SQLAlchemy's row objects cost microseconds each, which is most of the time on a
    million-loan book; the statement is still compiled by SQLAlchemy for the dialect, only the
    fetch bypasses it. Dates are bound as ISO text on SQLite (how its DATE columns are stored).
    """
    compiled = sql.compile(dialect=conn.dialect)
    values = compiled.construct_params(params)
    if conn.dialect.name == "sqlite":
        values = {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}
    order = compiled.positiontup
    args: Any = tuple(values[n] for n in order) if compiled.positional and order else values
    parts: list[list[Any]] = [[] for _ in dtypes]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), args)
        while rows := cursor.fetchmany(_FETCH):
            for k, dtype in enumerate(dtypes):
                column = list(map(itemgetter(k), rows))
                parts[k].append(column if dtype is None else np.array(column, dtype=dtype))
    finally:
        cursor.close()
    return [_joined(p, dt) for p, dt in zip(parts, dtypes, strict=True)]


def _joined(parts: list[Any], dtype: Any) -> Any:
    if dtype is None:
        return [v for part in parts for v in part]
    return np.concatenate(parts) if parts else np.array([], dtype=dtype)


_FETCH = 200_000


_NUMPY: dict[Any, Any] = {pl.Int64: np.int64, pl.Date: "datetime64[D]", pl.Boolean: np.bool_}
"""Column dtypes fetched as numpy arrays; the rest (text) as lists."""


def _frame(
    conn: Connection, sql: TextClause, params: dict[str, Any], schema: dict[str, Any]
) -> pl.DataFrame:
    dtypes = [_NUMPY.get(t) for t in schema.values()]
    columns = read_columns(conn, sql, params, dtypes)
    return pl.DataFrame(
        [pl.Series(n, c, dtype=t) for (n, t), c in zip(schema.items(), columns, strict=True)]
    )


_PANEL_SCHEMA = {
    "loan_id": pl.Int64, "state": pl.String, "dpd": pl.Int64, "principal_fen": pl.Int64,
    "risk_class": pl.String, "product_id": pl.String, "funder": pl.String,
    "province": pl.String, "channel": pl.String, "months_on_book": pl.Int64,
}  # fmt: skip


def _panel(conn: Connection, params: dict[str, Any]) -> pl.DataFrame:
    return _frame(conn, _PANEL, params, _PANEL_SCHEMA)


def _contracts(conn: Connection, params: dict[str, Any]) -> Contracts:
    i8 = np.int64
    ids, principal, term, upfront, rounding, disbursed = read_columns(
        conn, _CONTRACTS, params, (i8, i8, i8, None, None, "datetime64[D]")
    )
    flow_loan, number, fen = read_columns(conn, _FLOWS, params, (i8, i8, i8))
    order = np.argsort(ids, kind="stable")  # sorted here: cheaper than ORDER BY in SQL
    return Contracts(
        loan_id=ids[order], principal_fen=principal[order],
        upfront_fee_rate=tuple(str(upfront[k]) for k in order.tolist()),
        rounding=tuple(str(rounding[k]) for k in order.tolist()), term_months=term[order],
        flow_loan=flow_loan, flow_number=number, flow_fen=fen, disbursed=disbursed[order],
    )  # fmt: skip


def licence_of(funder: Funder, platform_licence: str) -> str:
    """The rule-pack lender type a funder lends under."""
    if funder.kind is FunderKind.PLATFORM:
        return platform_licence
    if funder.kind is FunderKind.CONSUMER_FINANCE_COMPANY:
        return "consumer_finance_company"
    return "bank"


def loan_caps(
    pack: RulePack,
    contracts: Contracts,
    plans: pl.DataFrame,
    funders: Sequence[Funder],
    platform_licence: str,
    borrowers: pl.DataFrame,
) -> pl.DataFrame:
    """Per on-book loan: the strictest APR and credit-line caps of every licence funding it,
    on its disbursement date (a loan with no plan: the platform's licence), and its borrower.

    Columns: loan_id, apr_cap (Float64, null: none), apr_rule, line_cap_fen, line_rule,
    borrower ("loan:<id>" where the loan was not booked from a logged decision).
    """
    licence = {f.id: licence_of(f, platform_licence) for f in funders}
    lenders = (
        plans.with_columns(pl.col("funder_id").replace_strict(licence, default=platform_licence))
        .group_by("loan_id")
        .agg(pl.col("funder_id").unique().sort().str.join("|").alias("licences"))
    )
    loans = pl.DataFrame({"loan_id": contracts.loan_id, "disbursed": contracts.disbursed})
    loans = loans.join(lenders, on="loan_id", how="left").with_columns(
        pl.col("licences").fill_null(platform_licence)
    )
    keys = loans.select("disbursed", "licences").unique()
    rows = [_caps_for(pack, day, lic) for day, lic in keys.iter_rows()]
    table = pl.DataFrame(rows, schema=_CAP_SCHEMA, orient="row")
    out = loans.join(table, on=["disbursed", "licences"], how="left")
    return out.join(borrowers, on="loan_id", how="left").with_columns(
        pl.col("borrower").fill_null(pl.format("loan:{}", pl.col("loan_id")))
    )


_CAP_SCHEMA = {
    "disbursed": pl.Date, "licences": pl.String, "apr_cap": pl.Float64, "apr_rule": pl.String,
    "line_cap_fen": pl.Int64, "line_rule": pl.String,
}  # fmt: skip


def _caps_for(pack: RulePack, day: date, licences: str) -> tuple[Any, ...]:
    """The strictest caps over the licences (each licence's own strictest first)."""
    apr: list[tuple[Decimal, str]] = []
    line: list[tuple[Decimal, str]] = []
    for lender_type in licences.split("|"):
        rules = pack.select(day, lender_type)
        if (b := rules.max_apr()) is not None:
            apr.append((b.value, b.rule_id))
        caps = [(Decimal(r.params["max"]), r.id) for r in rules.enabled(RuleKind.CREDIT_LINE_MAX)]
        line.extend(caps)
    a = min(apr, default=None)
    m = min(line, default=None)
    return (
        day, licences,
        None if a is None else float(a[0]), None if a is None else a[1],
        None if m is None else to_fen(m[0]), None if m is None else m[1],
    )  # fmt: skip


def _info(funder: Funder) -> FunderInfo:
    return FunderInfo(funder.id, funder.name, funder.kind.value)


def _concentration(position: Any) -> Concentration:
    f = position.funder
    return Concentration(
        funder_id=f.id, name=f.name, kind=f.kind.value, loans=position.loans,
        balance_fen=to_fen(position.exposure.balance),
        tier1_capital_fen=to_fen(f.tier1_net_capital), total_loans_fen=to_fen(f.total_loans),
        tier1_limit_fen=_fen_or_none(position.tier1_limit),
        total_loans_limit_fen=_fen_or_none(position.total_loans_limit),
        tier1_headroom_fen=_fen_or_none(position.headroom_for(Rule.TIER1)),
        total_loans_headroom_fen=_fen_or_none(position.headroom_for(Rule.TOTAL_LOANS)),
    )  # fmt: skip


def _fen_or_none(value: Decimal | None) -> int | None:
    return None if value is None else to_fen(value)


def _ecl(conn: Connection, params: dict[str, Any]) -> EclSnapshot | None:
    row = conn.execute(_ECL, params).first()
    if row is None:
        return None
    stages = tuple(
        (k, int(getattr(row, f"stage{k}_fen")), int(getattr(row, f"stage{k}_loans")))
        for k in (1, 2, 3)
    )
    as_of = as_date(row.as_of)
    assert as_of is not None
    return EclSnapshot(
        run_id=int(row.id), as_of=as_of, config_id=row.config_id, posted=row.posted_at is not None,
        total_fen=int(row.total_fen), ead_fen=int(row.ead_fen), stages=stages,
    )  # fmt: skip


def _sales(
    conn: Connection, params: dict[str, Any]
) -> tuple[tuple[dict[str, object], ...] | None, str]:
    """NPL sales in the month, or None with the reason when the tables do not exist (yet)."""
    if not inspect(conn).has_table("npl_sales"):
        return None, "no NPL sale tables in this database: no sales recorded"
    try:
        rows = conn.execute(_SALES, params).mappings().all()
    except SQLAlchemyError as exc:
        return None, f"NPL sales could not be read: {type(exc).__name__}"
    return tuple(dict(r) for r in rows), ""


def _alerts(engine: Engine, period: Period) -> tuple[dict[str, object], ...]:
    stored = SqlAlerts(engine).list(since=period.month)
    return tuple(
        {
            "id": a.id,
            "severity": a.severity,
            "period": a.period,
            "metric": a.alert.get("metric"),
            "subject": a.alert.get("subject"),
            "value": a.alert.get("value"),
            "threshold": a.alert.get("threshold"),
            "loans": a.alert.get("loan_count"),
            "cohorts": ", ".join(str(c) for c in a.alert.get("cohorts", [])),
        }
        for a in stored
        if a.period <= period.month_end
    )
