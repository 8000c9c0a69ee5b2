"""`lendstack risk export|vintages|rollrates|transitions|stock|fpd|alerts`: portfolio analytics
over the loan-month panel that close of business writes on every month-end.

Each analytics command reads the panel from the database (every month-end row, validated) or,
with `--panel FILE`, from an exported Parquet file, calls the pure function in
`lendstack.risk` and renders its result: `--format json` prints the result's own `as_json()`
(money as decimal yuan strings, rates as floats), so the figures are the library's, unchanged.
A database with no month-end closed yet exits 3 naming `date`; a missing or unreadable panel
file exits 3 or 2 naming `panel`; nothing is written.

`risk alerts` evaluates the early-warning thresholds (`lendstack.risk.alerts`) at one
month-end and records the alerts in `risk_alerts` (idempotent by alert id); `--list` shows
the stored ones instead. It is the one command here that writes, and only after the
thresholds, the panel and the evaluation have all succeeded.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import polars as pl
import typer
from rich.table import Column, Table
from sqlalchemy import Engine

from lendstack.cli.context import app_context
from lendstack.cli.params import parse_date
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.core.errors import NotFound, ValidationError
from lendstack.funding.rules import Rule
from lendstack.risk.alerts import default_thresholds, evaluate, load_thresholds
from lendstack.risk.panel import STATES, validate_panel
from lendstack.risk.rollrates import Weight, compare_powers, roll_rates
from lendstack.risk.stock import Dimension, fpd_by_cohort, stock_measures
from lendstack.risk.vintages import vintage_curves
from lendstack.storage.alerts import SqlAlerts, StoredAlert, approval_rates
from lendstack.storage.analytics import export_panel, read_panel
from lendstack.storage.funding import SqlFunding

FormatOpt = typer.Option(OutputFormat.TABLE, "--format", help="table for people, json for tools.")
PanelOpt = typer.Option(
    None, "--panel", help="Read this exported panel (Parquet) instead of the database."
)
ThroughOpt = typer.Option(
    None, "--through", help="Only month-ends on or before this date, YYYY-MM-DD."
)


class By(StrEnum):
    PRODUCT = "product"
    FUNDER = "funder"
    PROVINCE = "province"
    CHANNEL = "channel"


_DIMENSIONS = {
    By.PRODUCT: Dimension.PRODUCT,
    By.FUNDER: Dimension.FUNDER,
    By.PROVINCE: Dimension.PROVINCE,
    By.CHANNEL: Dimension.CHANNEL,
}


def register(app: typer.Typer) -> None:
    """Add the analytics commands to the `risk` group."""
    app.command("export")(export)
    app.command("vintages")(vintages)
    app.command("rollrates")(rollrates)
    app.command("transitions")(transitions)
    app.command("stock")(stock)
    app.command("fpd")(fpd)
    app.command("alerts")(alerts)


def load_panel(ctx: typer.Context, panel: Path | None, through: str | None) -> pl.DataFrame:
    """The panel from `--panel` or the database, up to `--through`; empty is NotFound."""
    day = parse_date(through, "through") if through else None
    if panel is None:
        return read_panel(app_context(ctx).ready_engine(), day)
    frame = read_panel_file(panel)
    if day is not None:
        frame = frame.filter(pl.col("month_end") <= day)
    if frame.is_empty():
        raise NotFound(f"{panel} has no month-end rows on or before {day}", field="panel")
    return frame


def read_panel_file(path: Path) -> pl.DataFrame:
    """An exported panel, checked as the export checks it (names, dtypes and invariants)."""
    if not path.is_file():
        raise NotFound(f"no panel file {path}", field="panel")
    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ValidationError(f"cannot read {path} as Parquet: {exc}", field="panel") from exc
    return validate_panel(frame, check_values=True).collect()


def export(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="The Parquet file to write (replaced whole)."),
    through: str | None = ThroughOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Write the loan-month panel to Parquet, validated; exits 3 if no month-end is closed."""
    day = parse_date(through, "through") if through else None
    done = export_panel(app_context(ctx).ready_engine(), out, day)
    payload = {
        "path": str(done.path),
        "rows": done.rows,
        "loans": done.loans,
        "first_month_end": done.first_month_end,
        "last_month_end": done.last_month_end,
    }
    if fmt is OutputFormat.JSON:
        print_json(payload)
        return
    console.print(
        f"wrote {done.rows:,} loan-month rows of {done.loans:,} loans "
        f"({done.first_month_end} … {done.last_month_end}) to {done.path}"
    )


def vintages(
    ctx: typer.Context,
    panel: Path | None = PanelOpt,
    through: str | None = ThroughOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Vintage curves: per cohort, the share ever 30+ / 90+ DPD and charged off, by MOB."""
    curves = vintage_curves(load_panel(ctx, panel, through))
    if fmt is OutputFormat.JSON:
        print_json(curves.as_json())
        return
    table = Table("cohort", "loans", "MOB", "30+ ever", "90+ ever", "charged off",
                  title=f"vintages as of {curves.as_of} (latest MOB per cohort)")  # fmt: skip
    latest = curves.table.group_by("origination_month").agg(pl.all().last())
    for row in latest.sort("origination_month").iter_rows(named=True):
        table.add_row(
            f"{row['origination_month']:%Y-%m}", f"{row['loans']:,}", str(row["months_on_book"]),
            _pct(row["dpd30_rate"]), _pct(row["dpd90_rate"]), _pct(row["charged_off_rate"]),
        )  # fmt: skip
    console.print(table)


def rollrates(
    ctx: typer.Context,
    panel: Path | None = PanelOpt,
    through: str | None = ThroughOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Month-on-month roll rates between M0 … M6+, CO and PO, pooled over all months."""
    rolls = roll_rates(load_panel(ctx, panel, through))
    if fmt is OutputFormat.JSON:
        print_json(rolls.as_json())
        return
    matrix = rolls.matrix(Weight.LOANS)
    table = Table("from", *matrix.states, "loans", title="roll rates (% of loans), pooled")
    for i, state in enumerate(matrix.states[:-2]):  # CO and PO are absorbing
        counts = int(matrix.observations[i].sum())
        cells = [f"{100 * p:.1f}" if counts else "-" for p in matrix.probabilities[i]]
        table.add_row(state, *cells, f"{counts:,}")
    console.print(table)


def transitions(
    ctx: typer.Context,
    months: str = typer.Option(
        "1,3,6,12", "--months", help="Horizons in months, comma-separated, e.g. 1,3,6,12."
    ),
    panel: Path | None = PanelOpt,
    through: str | None = ThroughOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Cohort-method transition matrices: observed h-month vs the one-month matrix to the h."""
    horizons = parse_horizons(months)
    comparisons = compare_powers(load_panel(ctx, panel, through), horizons)
    if fmt is OutputFormat.JSON:
        print_json(
            {
                "one_month": comparisons[0].one_month.as_json(),
                "comparisons": [c.as_json() for c in comparisons],
            }
        )
        return
    table = Table("months", "loans observed", "M0→D observed", "M0→D from powers",
                  "max |difference|", "max |z|", title="powers vs observed")  # fmt: skip
    for c in comparisons:
        states = c.observed.states
        m0, d = states.index(STATES[0]), states.index("D")
        table.add_row(
            str(c.horizon), f"{int(c.observed.observations.sum()):,}",
            _pct(c.observed.probabilities[m0, d]), _pct(c.from_powers[m0, d]),
            f"{c.max_abs_difference:.4f}", f"{c.max_z:.2f}",
        )  # fmt: skip
    console.print(table)


def parse_horizons(text: str) -> tuple[int, ...]:
    """`1,3,6,12` as distinct positive integers, in the order given."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValidationError(f"{text!r} is not a list like 1,3,6,12", field="--months") from None
    if not values or any(v < 1 for v in values) or len(set(values)) != len(values):
        raise ValidationError("horizons must be distinct whole months >= 1", field="--months")
    return values


def stock(
    ctx: typer.Context,
    by: list[By] | None = typer.Option(
        None, "--by", help="product, funder, province or channel; repeat for more (default all)."
    ),
    month_end: str | None = typer.Option(
        None, "--month-end", help="The month-end to measure (default the panel's last)."
    ),
    panel: Path | None = PanelOpt,
    through: str | None = ThroughOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Delinquency (1+ / 30+ / 90+ DPD) and NPL ratios on balances, in total and by dimension."""
    when = parse_date(month_end, "month_end") if month_end else None
    dimensions = tuple(_DIMENSIONS[b] for b in by) if by else tuple(Dimension)
    frame = load_panel(ctx, panel, through)
    if when is not None and frame.filter(pl.col("month_end") == when).is_empty():
        raise NotFound(f"the panel has no rows at {when}", field="month_end")
    measures = stock_measures(frame, when, dimensions=dimensions)
    if fmt is OutputFormat.JSON:
        print_json(measures.as_json())
        return
    fixed = [Column(name, no_wrap=True) for name in ("loans", "balance", "30+", "90+", "NPL")]
    title = f"stock at {measures.month_end} (ratios of balance)"
    table = Table(Column("by", no_wrap=True), Column("value", overflow="fold"), *fixed, title=title)
    for row in _stock_rows(measures.as_json()):
        table.add_row(*row)
    console.print(table)


def _stock_rows(payload: dict[str, Any]) -> list[list[str]]:
    short = {d.value: b.value for b, d in _DIMENSIONS.items()}
    return [
        [short.get(r["dimension"], r["dimension"]), str(r["value"]), f"{r['loans']:,}",
         r["balance"], _pct(r["dpd30_ratio"], 1), _pct(r["dpd90_ratio"], 1),
         _pct(r["npl_ratio"], 1)]
        for r in payload["rows"]
    ]  # fmt: skip


def fpd(
    ctx: typer.Context,
    seasoning: int = typer.Option(
        2, "--seasoning", min=1, help="Months on book before a cohort's FPD outcome is known."
    ),
    panel: Path | None = PanelOpt,
    through: str | None = ThroughOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """First-payment default (installment 1 reached 30+ DPD) by cohort, over seasoned loans."""
    result = fpd_by_cohort(load_panel(ctx, panel, through), seasoning_months=seasoning)
    if fmt is OutputFormat.JSON:
        print_json(result.as_json())
        return
    table = Table("cohort", "loans", "seasoned", "FPD", "FPD rate",
                  title=f"first-payment default (seasoned {seasoning} months)")  # fmt: skip
    for row in result.table.iter_rows(named=True):
        table.add_row(
            f"{row['origination_month']:%Y-%m}", f"{row['loans']:,}",
            f"{row['seasoned_loans']:,}", f"{row['fpd_loans']:,}", _pct(row["fpd_rate"]),
        )  # fmt: skip
    console.print(table)


class MinSeverity(StrEnum):
    WARN = "warn"
    CRITICAL = "critical"


def alerts(
    ctx: typer.Context,
    month_end: str | None = typer.Option(
        None, "--month-end", help="The month-end to evaluate (default the panel's last)."
    ),
    thresholds: Path | None = typer.Option(
        None, "--thresholds", help="A TOML thresholds file (default the shipped defaults)."
    ),
    panel: Path | None = PanelOpt,
    show_stored: bool = typer.Option(
        False, "--list", help="Show the stored alerts instead of evaluating a month-end."
    ),
    since: str | None = typer.Option(
        None, "--since", help="With --list: only periods on or after this date, YYYY-MM-DD."
    ),
    severity: MinSeverity | None = typer.Option(
        None, "--severity", help="With --list: warn (all) or critical only."
    ),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Early warning: evaluate the thresholds at a month-end, store the alerts, list them."""
    store = SqlAlerts(app_context(ctx).ready_engine())
    if show_stored:
        day = parse_date(since, "since") if since else None
        stored = store.list(day, severity.value if severity else None)
        if fmt is OutputFormat.JSON:
            print_json({"alerts": [a.as_json() for a in stored]})
            return
        _print_alerts(stored, "stored alerts")
        return
    limits = load_thresholds(thresholds) if thresholds is not None else default_thresholds()
    when = parse_date(month_end, "month_end") if month_end else None
    frame = load_panel(ctx, panel, month_end)
    when = _month_end(frame, when)
    engine = app_context(ctx).ready_engine()
    found = evaluate(
        frame,
        when,
        limits,
        partner_headroom=partner_headroom(engine, when),
        approvals=approval_rates(engine, when),
    )
    recorded = store.record(found)
    stored = store.get(a.id for a in found)
    if fmt is OutputFormat.JSON:
        print_json(
            {
                "month_end": when,
                "recorded": recorded.as_json(),
                "alerts": [a.as_json() for a in stored],
            }
        )
        return
    _print_alerts(stored, f"alerts at {when}")
    console.print(
        f"{len(recorded.new)} new, {len(recorded.raised)} raised, "
        f"{len(recorded.unchanged)} already stored"
    )


def _month_end(frame: pl.DataFrame, when: date | None) -> date:
    """`--month-end` if the panel has rows there (else NotFound), or the panel's last."""
    if when is None:
        last = frame.get_column("month_end").max()
        if not isinstance(last, date):
            raise NotFound("the panel has no month-end rows", field="panel")
        return last
    if (when + timedelta(days=1)).day != 1:
        raise ValidationError(f"{when} is not the last day of a month", field="month_end")
    if frame.filter(pl.col("month_end") == when).is_empty():
        raise NotFound(f"the panel has no rows at {when}", field="month_end")
    return when


def partner_headroom(engine: Engine, day: date) -> dict[str, float]:
    """Each bank partner's unused tier-1 concentration room (rule 2.2): headroom / limit.

    From `SqlFunding.exposures(day)`: loans disbursed by `day` at their balances after the
    last close. The platform has no tier-1 limit and is left out.
    """
    report = SqlFunding(engine).exposures(day)
    room: dict[str, float] = {}
    for partner in report.partners:
        limit, left = partner.tier1_limit, partner.headroom_for(Rule.TIER1)
        if limit is not None and left is not None and limit > 0:
            room[partner.funder.id] = float(left / limit)
    return room


def _print_alerts(stored: tuple[StoredAlert, ...], title: str) -> None:
    if not stored:
        console.print(f"{title}: none")
        return
    table = Table("id", "severity", "value", "threshold", "loans", "first raised", title=title)
    for a in stored:
        data = a.alert
        table.add_row(
            a.id, a.severity, f"{data['value']:.4g}", f"{data['threshold']:.4g}",
            f"{data['loan_count']:,}", f"{a.first_raised_at:%Y-%m-%d %H:%M}",
        )  # fmt: skip
    console.print(table)


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


__all__ = [
    "By",
    "MinSeverity",
    "load_panel",
    "parse_horizons",
    "partner_headroom",
    "read_panel_file",
    "register",
]
