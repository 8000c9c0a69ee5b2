"""Month-end measures of a simulated book, read from the run's own database.

Every figure comes from the same tables the other commands read (loans, journal lines,
funding plans, the loan-month panel), so `lendstack risk …` or `lendstack ledger check`
pointed at the run's database agree with metrics.json. Ratios are by principal balance:
- `charged_off`: principal the close charged off in the month (from the loans, so a loan sold
  later still counts in its charge-off month);
- `npl_ratio`: substandard + doubtful + loss over all active principal (REGULATION.md §7);
- `dpd30_rate`, `dpd90_rate`: active principal 30+ / 90+ days past due over active principal;
- `net_income`: the month's interest, fee, penalty and recovery income, less the partners'
  share of income, charge-offs, the ECL provision change, losses on NPL sales and the platform's own cost of funds
  on its share of the balance (the platform partner's `funding_cost`, a twelfth a month).

ECL is measured and posted with `lendstack risk ecl`'s own code at each month-end; early
warnings are evaluated with `lendstack risk alerts`' thresholds and stored in risk_alerts.

A run's month-ends keep what does not change between them (`MonthEndReads`): the loans'
origination PDs (each decision record is parsed once, not every month) and the loan-month
panel (each month reads only its own rows), and the reconciliation's sums over the journal and
the funders' flows (`RunningReconcile`: each month sums only the rows written since), so the
month-end costs what the book holds now, not everything the run has written so far.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import Engine, text

from lendstack.core.errors import LendstackError, NotFound
from lendstack.core.money import from_fen, quantize_fen
from lendstack.funding import Policy
from lendstack.risk.alerts import Thresholds, default_thresholds, evaluate
from lendstack.risk.panel import State
from lendstack.storage.alerts import SqlAlerts
from lendstack.storage.analytics import read_panel
from lendstack.storage.ecl_runs import ecl_inputs, run_ecl
from lendstack.storage.funding import held_by_funder
from lendstack.storage.reports import reconcile
from lendstack.storage.risk_book import DecisionPds
from lendstack.storage.running_reconcile import RunningReconcile
from lendstack.underwriting.decision import GRANTED

INCOME = ("6011", "6021", "6031", "6051")
EXPENSE = ("6411", "6701", "6702", "6705")
NPL_CLASSES = ("substandard", "doubtful", "loss")
APR_BANDS = ((0.12, "<12%"), (0.18, "12-18%"), (0.20, "18-20%"), (0.24, "20-24%"), (9.9, ">24%"))


@dataclass
class MonthMetrics:
    """One month of a run: what metrics.json's `monthly` list holds (money in CNY)."""

    month: int
    month_end: str
    applications: int
    approved: int
    approval_rate: float
    booked: int
    originations_amount: float
    mean_apr: float | None
    max_apr: float | None
    apr_mix: dict[str, int]
    active_loans: int
    balance: float
    dpd30_rate: float
    dpd90_rate: float
    npl_ratio: float
    charged_off: float
    ecl: float
    income: float
    partner_share: float
    losses: float
    funding_cost: float
    net_income: float
    alerts: list[str]
    partner_exposure: dict[str, float]
    ledger_balanced: bool
    partner_limit_use: dict[str, float] = field(default_factory=dict)
    """Each bank's exposure as a share of its 2.2 limit (25% of tier-1 net capital)."""
    npl_sold_loans: int = 0
    """Loans sold to an asset-management company at this month-end (the NPL hook)."""
    npl_sale_price: float = 0.0
    funds_flags: int = 0
    """Loans the use-of-funds surveillance flagged this month (their alerts are in risk_alerts)."""
    events: list[str] = field(default_factory=list)
    contacts: int = 0
    """Collection contact attempts logged (allowed) at this month-end (the collections hook)."""
    promises: int = 0
    """Promises to pay recorded at this month-end."""
    cured: int = 0
    """Loans in default whose borrower paid everything owed during the month (cures)."""
    collections: dict[str, int] = field(default_factory=dict)
    """The collections hook's detail: queue, plan, refusals, loans reached, promises resolved."""
    model: dict[str, Any] = field(default_factory=dict)
    """The retraining hook's record (`--retrain`): AUCs, score PSI, the model in use."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MonthEndReads:
    """What a run's month-ends read again and again, kept from one to the next (one run,
    one database)."""

    pds: DecisionPds = field(default_factory=DecisionPds)
    """The loans' origination PDs from their decisions (`load_book`)."""
    panel: pl.DataFrame | None = None
    """The loan-month panel through `panel_through`, as `read_panel` returns it."""
    panel_through: date | None = None
    ledger: RunningReconcile = field(default_factory=RunningReconcile)
    """The reconciliation's sums through the journal lines and funder flows already read."""

    def read_panel(self, engine: Engine, month_end: date) -> pl.DataFrame:
        """`read_panel(engine, month_end)`, reading only the rows after the last call's.

        Rows of earlier month-ends are only ever rewritten when a reversed payoff is restated
        (`storage.month_end`): its `PO` row becomes an on-book row and the loan is back on the
        panel this month. So when a loan with a `PO` row already read has a new row, the whole
        panel is read again; otherwise the kept rows are still the database's."""
        kept, through = self.panel, self.panel_through
        if kept is None or through is None or month_end <= through:
            return self._keep(read_panel(engine, month_end), month_end)
        try:
            new = read_panel(engine, month_end, since=through + timedelta(days=1))
        except NotFound:  # no row at this month-end: the panel is what was read
            return self._keep(kept, month_end)
        paid_off = kept.filter(pl.col("state") == State.PAID_OFF.value).get_column("loan_id")
        if new.get_column("loan_id").is_in(paid_off.implode()).any():
            return self._keep(read_panel(engine, month_end), month_end)
        panel = pl.concat([kept, new]).sort("loan_id", "month_end").rechunk()
        return self._keep(panel, month_end)

    def _keep(self, panel: pl.DataFrame, through: date) -> pl.DataFrame:
        self.panel, self.panel_through = panel, through
        return panel


def _ratio(num: float, den: float) -> float:
    return round(num / den, 6) if den else 0.0


def _band(apr: float) -> str:
    return next(label for bound, label in APR_BANDS if apr < bound)


def _book(conn: Any) -> dict[str, float]:
    row = conn.execute(
        text(
            "SELECT COUNT(*), COALESCE(SUM(bal_principal), 0),"
            " COALESCE(SUM(CASE WHEN dpd >= 30 THEN bal_principal ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN dpd >= 90 THEN bal_principal ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN risk_class IN ('substandard', 'doubtful', 'loss')"
            " THEN bal_principal ELSE 0 END), 0)"
            " FROM loans WHERE status = 'active'"
        )
    ).one()
    count, bal, d30, d90, npl = (int(v or 0) for v in row)
    return {"count": count, "balance": bal, "dpd30": d30, "dpd90": d90, "npl": npl}


def _gl(conn: Any, first: date, last: date) -> dict[str, int]:
    """Net credit (income) or debit (expense) per P&L account over the month's entries."""
    rows = conn.execute(
        text(
            "SELECT l.account, COALESCE(SUM(l.credit_fen - l.debit_fen), 0) FROM journal_lines l"
            " JOIN journal_entries e ON e.id = l.entry_id"
            " WHERE e.business_date BETWEEN :a AND :b GROUP BY l.account"
        ),
        {"a": first, "b": last},
    )
    return {str(code): int(net or 0) for code, net in rows}


def _limit_use(conn: Any, exposure: dict[str, float]) -> dict[str, float]:
    """Each bank's exposure over its rule-2.2 limit (the policy's tier-1 ratio, 25%)."""
    ratio = float(Policy().tier1_ratio)
    use: dict[str, float] = {}
    for fid, kind, defn in conn.execute(text("SELECT id, kind, definition FROM funders")):
        capital = float(json.loads(defn).get("tier1_net_capital", 0) or 0)
        if kind != "platform" and capital > 0:
            use[fid] = round(exposure.get(fid, 0.0) / (ratio * capital), 8)
    return dict(sorted(use.items()))


def headroom_of(limit_use: Mapping[str, float]) -> dict[str, float]:
    """Each bank's unused share of its rule-2.2 limit (negative once over it): the
    `partner_headroom` input of the early-warning alerts."""
    return {funder: round(1.0 - use, 8) for funder, use in limit_use.items()}


def _exposure(conn: Any) -> tuple[dict[str, float], float]:
    """Open principal by funder (CNY), from the funders' sub-ledger positions, so it is the
    figure `lendstack funding` reports to the fen; and the platform's monthly cost of funds
    on its part (its `funding_cost` over twelve, rounded half-up to the fen)."""
    costs = {
        fid: Decimal(str(json.loads(defn).get("funding_cost", 0)))
        for fid, kind, defn in conn.execute(text("SELECT id, kind, definition FROM funders"))
        if kind == "platform"
    }
    fen = held_by_funder(conn)
    cost = sum((from_fen(fen.get(fid, 0)) * rate / 12 for fid, rate in costs.items()), Decimal(0))
    return {funder: n / 100 for funder, n in fen.items()}, float(quantize_fen(cost))


def _ecl(engine: Engine, month_end: date, reads: MonthEndReads | None) -> float:
    try:
        outcome = run_ecl(
            engine, month_end, ecl_inputs(), post=True,
            pds=None if reads is None else reads.pds, explain=False,
        )  # fmt: skip
    except LendstackError:
        return 0.0  # e.g. nothing on the book yet
    return outcome.run.total_fen / 100.0


REFERENCE_BORROWERS = 100_000
"""The book size the default alert minimums (200-loan cohorts, 50 M1 loans) are set for."""


def scaled_thresholds(borrowers: int) -> Thresholds:
    """The default early-warning thresholds, with the minimum cohort sizes scaled to the
    population (never below 20 loans a cohort, 10 M1 loans): a 2,000-borrower run has no
    200-loan cohorts, and would otherwise never judge a spike. The levels are unchanged."""
    t = default_thresholds()
    scale = min(1.0, borrowers / REFERENCE_BORROWERS)
    return replace(
        t,
        vintage=replace(
            t.vintage, min_cohort_loans=max(20, round(t.vintage.min_cohort_loans * scale))
        ),
        fpd=replace(t.fpd, min_cohort_loans=max(20, round(t.fpd.min_cohort_loans * scale))),
        roll_m1_m2=replace(t.roll_m1_m2, min_loans=max(10, round(t.roll_m1_m2.min_loans * scale))),
    )


def _alerts(
    engine: Engine,
    month_end: date,
    approvals: dict[date, float],
    thresholds: Thresholds,
    reads: MonthEndReads | None,
    headroom: Mapping[str, float] | None = None,
) -> list[str]:
    """The month's early-warning alerts (also stored in risk_alerts), as `metric:severity`;
    `headroom` is each bank's unused share of its concentration limit."""
    try:
        panel = (
            read_panel(engine, month_end) if reads is None else reads.read_panel(engine, month_end)
        )
    except LendstackError:
        return []
    found = evaluate(panel, month_end, thresholds, approvals=approvals, partner_headroom=headroom)
    if found:
        SqlAlerts(engine).record(found)
    return sorted({f"{a.metric.value}:{a.severity.value}" for a in found})


def _with_funds(alerts: list[str], flagged: int) -> list[str]:
    """The surveillance records its own alerts on ingest; the month lists them too."""
    return sorted([*alerts, "use_of_funds:flagged"]) if flagged else alerts


def measure_month(
    engine: Engine,
    month: int,
    month_end: date,
    decided: Sequence[dict[str, Any]],
    booked: Sequence[dict[str, Any]],
    earlier: Sequence[MonthMetrics],
    thresholds: Thresholds,
    funds_flags: int = 0,
    reads: MonthEndReads | None = None,
) -> MonthMetrics:
    """Everything metrics.json records for the month that ended on `month_end`; `reads`
    carries what a run's earlier month-ends read (the same figures, read for less)."""
    first = month_end.replace(day=1)
    approved = sum(1 for d in decided if d["outcome"] in GRANTED)
    aprs = [float(b["apr_irr"]) for b in booked]
    mix: dict[str, int] = {label: 0 for _, label in APR_BANDS}
    for apr in aprs:
        mix[_band(apr)] += 1
    ecl = _ecl(engine, month_end, reads)
    with engine.connect() as conn:
        book, gl = _book(conn), _gl(conn, first, month_end)
        exposure, funding_cost = _exposure(conn)
        limit_use = _limit_use(conn, exposure)
        balanced = not (reconcile(conn) if reads is None else reads.ledger.check(conn))
        charged = conn.execute(
            # principal the close charged off this month (a loan sold later keeps its date)
            text("SELECT COALESCE(SUM(charged_off_fen), 0) FROM loans"
                 " WHERE charged_off_fen > 0 AND closed_on BETWEEN :a AND :b"),
            {"a": first, "b": month_end},
        ).scalar()  # fmt: skip
    income = sum(gl.get(c, 0) for c in INCOME) / 100.0
    partner = -gl.get("6411", 0) / 100.0
    losses = -(gl.get("6701", 0) + gl.get("6702", 0) + gl.get("6705", 0)) / 100.0
    approvals = {
        date.fromisoformat(m.month_end): m.approval_rate for m in earlier if m.applications
    }
    if decided:
        approvals[month_end] = _ratio(approved, len(decided))
    return MonthMetrics(
        month=month, month_end=month_end.isoformat(), applications=len(decided),
        approved=approved, approval_rate=_ratio(approved, len(decided)), booked=len(booked),
        originations_amount=round(sum(float(b["amount"]) for b in booked), 2),
        mean_apr=round(sum(aprs) / len(aprs), 6) if aprs else None,
        max_apr=round(max(aprs), 6) if aprs else None, apr_mix=mix,
        active_loans=int(book["count"]), balance=book["balance"] / 100.0,
        dpd30_rate=_ratio(book["dpd30"], book["balance"]),
        dpd90_rate=_ratio(book["dpd90"], book["balance"]),
        npl_ratio=_ratio(book["npl"], book["balance"]), charged_off=int(charged or 0) / 100.0,
        ecl=ecl, income=round(income, 2), partner_share=round(partner, 2), losses=round(losses, 2),
        funding_cost=round(funding_cost, 2),
        net_income=round(income - partner - losses - funding_cost, 2),
        alerts=_with_funds(
            _alerts(engine, month_end, approvals, thresholds, reads, headroom_of(limit_use)),
            funds_flags,
        ),
        partner_exposure=exposure, partner_limit_use=limit_use,
        ledger_balanced=balanced, funds_flags=funds_flags,
    )  # fmt: skip
