"""`lendstack init`, `cob`, `ledger` and `portfolio`: the books as a whole."""

from __future__ import annotations

from datetime import date
from typing import Any

import typer
from rich.table import Table

from lendstack.cli.context import app_context
from lendstack.cli.params import parse_date
from lendstack.cli.render import OutputFormat, console, err_console, print_json, progress_bar
from lendstack.core.errors import InvariantViolation
from lendstack.servicing.cob import STEPS, CobStep, close_through, dates_through
from lendstack.servicing.domain.delinquency import DEFAULT_BUCKETS, RiskClass
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.db import migrate
from lendstack.storage.reports import delinquency, reconcile, trial_balance

FormatOpt = typer.Option(OutputFormat.TABLE, "--format", help="table for people, json for tools.")

cob_app = typer.Typer(
    help="Close of business: accrue, bill, age, classify, charge off.", no_args_is_help=True
)
ledger_app = typer.Typer(
    help="The general ledger: trial balance and reconciliation.", no_args_is_help=True
)


def init(ctx: typer.Context) -> None:
    """Create or upgrade the database schema in place (safe to run again)."""
    actx = app_context(ctx)
    migrate(actx.engine)
    console.print(f"database ready: {actx.engine.url.render_as_string(hide_password=True)}")


def close_with_progress(store: SqlCloseStore, through: date, quiet: bool = False) -> int:
    """Close every business date up to `through`, with a progress bar over dates × steps."""
    days = dates_through(store, through)
    with progress_bar("{task.completed}/{task.total} steps", disable=quiet) as bar:
        task = bar.add_task("close of business", total=len(days) * len(STEPS))

        def tick(day: date, step: CobStep) -> None:
            bar.update(task, advance=1, description=f"COB {day} {step.value}")

        closed = close_through(store, through, tick)
    return sum(1 for c in closed if not c.skipped)


@cob_app.command("run")
def cob_run(
    ctx: typer.Context,
    on: str | None = typer.Option(None, "--date", help="Close exactly this business date."),
    through: str | None = typer.Option(None, "--through", help="Close every date up to this one."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Close one business date (--date) or catch up through one (--through)."""
    from lendstack.core.errors import ValidationError
    from lendstack.servicing.cob import close_day

    if (on is None) == (through is None):
        raise ValidationError("give exactly one of --date or --through", field="date")
    store = SqlCloseStore(app_context(ctx).ready_engine())
    if on is not None:
        closed = [close_day(store, parse_date(on))]
    else:
        target = parse_date(through or "", "through")
        close_with_progress(store, target, quiet=fmt is OutputFormat.JSON)
        closed = []
    last = store.last_closed()
    if fmt is OutputFormat.JSON:
        print_json(
            {
                "last_closed": last,
                "steps": [
                    {"date": c.day, "skipped": c.skipped, "rows": {s.value: n for s, n in c.rows}}
                    for c in closed
                ],
            }
        )
    else:
        for c in closed:
            note = (
                "already closed; nothing changed"
                if c.skipped
                else ", ".join(f"{s.value} {n}" for s, n in c.rows)
            )
            console.print(f"{c.day}: {note}")
        console.print(f"last closed business date: {last}")


def _tb_json(tb: Any) -> dict[str, Any]:
    return {
        "accounts": [
            {
                "account": line.account.value,
                "code": line.account.code,
                "debit": line.debit,
                "credit": line.credit,
            }
            for line in tb.lines
        ],
        "total_debit": tb.total_debit,
        "total_credit": tb.total_credit,
        "balanced": tb.balanced,
    }


@ledger_app.command("trial-balance")
def ledger_trial_balance(ctx: typer.Context, fmt: OutputFormat = FormatOpt) -> None:
    """Net debit or credit on every general-ledger account."""
    with app_context(ctx).ready_engine().connect() as conn:
        tb = trial_balance(conn)
    if fmt is OutputFormat.JSON:
        print_json(_tb_json(tb))
        return
    print_trial_balance(tb)


def print_trial_balance(tb: Any) -> None:
    table = Table("account", "debit", "credit", title="Trial balance (CNY)")
    for line in tb.lines:
        table.add_row(line.account.value, f"{line.debit:,}", f"{line.credit:,}")
    table.add_row("[bold]total", f"[bold]{tb.total_debit:,}", f"[bold]{tb.total_credit:,}")
    console.print(table)
    console.print("[green]balanced[/]" if tb.balanced else "[red]NOT balanced[/]")


@ledger_app.command("check")
def ledger_check(ctx: typer.Context, fmt: OutputFormat = FormatOpt) -> None:
    """Reconcile loans to the GL, loans to funders and funders to the GL; any fen off fails."""
    with app_context(ctx).ready_engine().connect() as conn:
        diffs = reconcile(conn)
    if fmt is OutputFormat.JSON:
        print_json(
            {
                "ok": not diffs,
                "differences": [
                    {"check": d.check, "expected": d.expected, "actual": d.actual} for d in diffs
                ],
            }
        )
    elif not diffs:
        console.print(
            "[green]ledger ties: every entry balances; loans, funders and the GL reconcile to the fen[/]"
        )
    for d in diffs:
        err_console.print(
            f"[red]{d.check}: expected {d.expected}, found {d.actual} (diff {d.amount})"
        )
    if diffs:
        raise typer.Exit(InvariantViolation.exit_code)


portfolio_app = typer.Typer(
    help="The loan book: synthetic books and delinquency.", no_args_is_help=True
)


@portfolio_app.command("delinquency")
def portfolio_delinquency(
    ctx: typer.Context,
    on: str | None = typer.Option(None, "--date", help="A closed business date; default the last."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Loans and principal by delinquency bucket and the five regulatory classes."""
    engine = app_context(ctx).ready_engine()
    day = parse_date(on) if on else SqlCloseStore(engine).last_closed()
    with engine.connect() as conn:
        rows = delinquency(conn, day) if day else ()
    if fmt is OutputFormat.JSON:
        print_json(
            {
                "date": day,
                "rows": [
                    {
                        "bucket": r.bucket,
                        "risk_class": r.risk_class.value,
                        "risk_class_cn": r.risk_class.chinese,
                        "loans": r.loans,
                        "principal": r.principal,
                    }
                    for r in rows
                ],
            }
        )
        return
    print_delinquency(day, rows)


def print_delinquency(day: date | None, rows: Any) -> None:
    classes = list(RiskClass)
    table = Table(
        "bucket",
        *(f"{c.chinese} {c.value}" for c in classes),
        "loans",
        "principal",
        title=f"Delinquency and classification as of {day}",
    )
    for label in DEFAULT_BUCKETS.labels:
        mine = [r for r in rows if r.bucket == label]
        counts = {r.risk_class: r.loans for r in mine}
        table.add_row(
            label,
            *(str(counts.get(c, "")) for c in classes),
            str(sum(r.loans for r in mine)),
            f"{sum(r.principal for r in mine):,}",
        )
    console.print(table)


@portfolio_app.command("generate")
def portfolio_generate(
    ctx: typer.Context,
    count: int = typer.Option(..., "--loans", min=1, help="Number of loans."),
    seed: int = typer.Option(42, help="Random seed; the same seed gives the same book."),
    as_of: str = typer.Option(..., "--as-of", help="Closed business date the book is serviced to."),
    workers: int = typer.Option(0, help="Processes generating loans; 0 = one per core."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Build a synthetic book: loans disbursed over the year before --as-of, closed through it."""
    from lendstack.servicing.synthetic import BookSpec
    from lendstack.storage.bulk import generate_into

    actx = app_context(ctx)
    engine = actx.ready_engine()
    day = parse_date(as_of, "as_of")
    products = {p.id: p for p in actx.catalog.all()}
    with progress_bar(
        "{task.completed:,}/{task.total:,} loans",
        label="[bold]generating",
        disable=fmt is OutputFormat.JSON,
    ) as bar:
        task = bar.add_task("loans", total=count)
        totals = generate_into(
            engine,
            products,
            BookSpec(count, seed, day),
            workers,
            lambda n: bar.update(task, advance=n),
        )
    summary = {
        "loans": count,
        "seed": seed,
        "as_of": day,
        "principal_outstanding": totals.principal,
        "charged_off": totals.charge_off,
    }
    if fmt is OutputFormat.JSON:
        print_json(summary)
    else:
        console.print(
            f"generated {count:,} loans closed through {day}: outstanding principal "
            f"{totals.principal:,} CNY, charged off {totals.charge_off:,} CNY"
        )
