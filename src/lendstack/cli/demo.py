"""`lendstack demo`: a day-in-the-life of the platform until the market simulator takes over.

It generates a book of a few thousand loans, then on the first open business date decides a
batch of generated applications through the real decision engine (rule pack, credit model,
pricing, limits, co-lending with the sample partners, hash-chained audit log) and books every
approved offer with its funding plan. Then it runs 90
business days: each morning the borrowers who pay do so through the real payment service
(most the day after the due date, some late, a few never), and each evening the real close
of business runs. It ends with the trial balance, the reconciliation check, the delinquency
and classification table, a line from the loan-month panel the month-end closes wrote, and a
verification of the decision log's hash chain.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import Engine, text

from lendstack.cli.books import print_delinquency, print_trial_balance
from lendstack.cli.context import AppContext, app_context
from lendstack.cli.params import parse_date
from lendstack.cli.render import console, err_console, progress_bar
from lendstack.core.errors import Conflict, NotFound
from lendstack.core.money import ZERO
from lendstack.funding import is_no_capacity
from lendstack.risk.vintages import vintage_curves
from lendstack.servicing.cob import close_day
from lendstack.servicing.domain.payments import owed_by_component
from lendstack.servicing.services import Payment, take_payment
from lendstack.storage.analytics import read_panel
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.db import migrate
from lendstack.storage.decisions import SqlDecisionLog
from lendstack.storage.funding import SqlFunding
from lendstack.storage.mapping import from_day
from lendstack.storage.reports import delinquency, reconcile, trial_balance
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.underwriting.application import Application
from lendstack.underwriting.funding_desk import FundingDesk
from lendstack.underwriting.origination import BOOKABLE, originate
from lendstack.underwriting.population import PopulationConfig, generate_population
from lendstack.wiring import booking_desk, underwriting_service

DEMO_DB = Path("lendstack-demo.db")


def payment_lag(loan_id: int, seed: int) -> int | None:
    """Days after the due date a borrower pays: most next day, some late, ~3% never."""
    roll = int(hashlib.sha256(f"{seed}:{loan_id}".encode()).hexdigest()[:8], 16) % 1000
    if roll < 30:
        return None
    if roll < 130:
        return 2 + roll % 40  # late payers: 2 to 41 days after the due date
    return 1


def _pay_due(engine: object, day: date, seed: int) -> int:
    """Post today's payments: each borrower whose lag has run out pays everything billed."""
    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(
            text(
                "SELECT id, oldest_due FROM loans WHERE status = 'active' AND oldest_due IS NOT NULL"
            )
        ).all()
    paid = 0
    for loan_id, oldest in rows:
        lag = payment_lag(loan_id, seed)
        if lag is None or (day - from_day(oldest)).days < lag:
            continue
        uow = SqlUnitOfWork(engine)  # type: ignore[arg-type]
        with uow:
            loan = uow.loans.get(loan_id)
        owed = sum(owed_by_component(loan, day).values(), ZERO)
        if owed > ZERO:
            take_payment(
                SqlUnitOfWork(engine), Payment(loan_id, owed, day, f"demo:{loan_id}:{day}")
            )  # type: ignore[arg-type]
            paid += 1
    return paid


def demo(
    ctx: typer.Context,
    loans: int = typer.Option(3000, help="Loans in the generated book."),
    days: int = typer.Option(90, help="Business days to service and close."),
    seed: int = typer.Option(7, help="Random seed for the book and the borrowers."),
    as_of: str = typer.Option("2026-06-30", "--as-of", help="The book's starting close date."),
    applications: int = typer.Option(
        1000, help="Generated applications decided (and booked if approved) on day one."
    ),
) -> None:
    """Decide applications, book approvals, service 90 days with daily closes, print the books."""
    from lendstack.cli.books import portfolio_generate

    actx = app_context(ctx)
    if actx.settings.database_url == "sqlite:///lendstack.db":
        # The demo never touches the default database; it starts afresh in its own file.
        for suffix in ("", "-wal", "-shm"):
            Path(f"{DEMO_DB}{suffix}").unlink(missing_ok=True)
        actx = type(actx)(actx.settings.with_database(f"sqlite:///{DEMO_DB}"))
        ctx.find_root().obj = actx
    migrate(actx.engine)
    start = parse_date(as_of, "as_of")
    portfolio_generate(ctx, count=loans, seed=seed, as_of=as_of, workers=0)
    if applications:
        underwrite(actx, start + timedelta(days=1), applications, seed)
    engine, store = actx.engine, SqlCloseStore(actx.engine)
    payments = 0
    with progress_bar("{task.completed}/{task.total} days") as bar:
        task = bar.add_task("servicing", total=days)
        for n in range(1, days + 1):
            day = start + timedelta(days=n)
            payments += _pay_due(engine, day, seed)
            close_day(store, day)
            bar.update(task, advance=1, description=f"servicing {day}")
    end = start + timedelta(days=days)
    console.print(
        f"\n[bold]{loans:,} loans serviced from {start} to {end}: "
        f"{payments:,} payments posted, {days} business dates closed[/]\n"
    )
    with engine.connect() as conn:
        print_trial_balance(trial_balance(conn))
        diffs = reconcile(conn)
        print_delinquency(end, delinquency(conn, end))
    if diffs:
        err_console.print(f"[red]{len(diffs)} reconciliation differences[/]")
        raise typer.Exit(70)
    console.print("[green]ledger check: loans, funders and the GL reconcile to the fen[/]")
    if (line := panel_summary(engine)) is not None:
        console.print(line)
    chain = SqlDecisionLog(engine).verify()
    if not chain.ok:
        err_console.print(f"[red]decision log: {len(chain.problems)} problems[/]")
        raise typer.Exit(70)
    console.print(f"[green]decision log: hash chain intact over {chain.checked:,} records[/]")
    console.print(f"database: {actx.settings.database_url}")


def panel_summary(engine: Engine) -> str | None:
    """One line from the loan-month panel the month-end closes wrote, if any month-end was."""
    try:
        panel = read_panel(engine)
    except NotFound:
        return None
    table = vintage_curves(panel).table
    if table.is_empty():  # only loans observed from part-way through their lives
        return None
    row = table.sort("origination_month", "months_on_book").row(-1, named=True)
    return (
        f"risk panel: {panel.height:,} loan-month rows; the {row['origination_month']:%Y-%m} "
        f"cohort ({row['loans']:,} loans) is {row['dpd30_rate']:.1%} ever 30+ DPD at "
        f"MOB {row['months_on_book']} (lendstack risk vintages)"
    )


def underwrite(actx: AppContext, day: date, count: int, seed: int) -> None:
    """Decide `count` generated applications dated `day` and book what is approved.

    The sample co-lending partners are imported first, so every granted offer is funded at
    decision time and booked with its plan (or declined for no funding capacity).
    """
    population = generate_population(PopulationConfig(seed=seed, n=count, start=day, months=1))
    SqlFunding(actx.engine).import_builtin()
    service = underwriting_service(actx.settings, actx.engine)
    desk = service.desk
    if not isinstance(desk, FundingDesk):  # the same desk, so a re-allocation updates its view
        desk = booking_desk(actx.settings, actx.engine)
    outcomes: Counter[str] = Counter()
    funding: Counter[str] = Counter()
    booked = 0
    with progress_bar() as bar:
        task = bar.add_task("underwriting", total=count)
        for raw in population.applications():
            recorded = service.decide(Application.model_validate({**raw, "application_date": day}))
            outcomes[recorded.outcome] += 1
            funding[_funding_outcome(recorded.record)] += 1
            if recorded.outcome in BOOKABLE:
                booked += _book(actx, recorded.record, desk, funding)
            bar.advance(task)
    shares = ", ".join(f"{k} {v:,} ({v / count:.1%})" for k, v in sorted(outcomes.items()))
    console.print(f"\n[bold]{count:,} applications decided on {day}:[/] {shares}")
    console.print(f"[bold]{booked:,} approved offers booked as loans[/]")
    console.print(
        f"co-lending: {funding['funded']:,} loans funded with partner plans, "
        f"{funding['unfunded'] + funding['refused at booking']:,} declined for no funding capacity "
        f"({funding['refused at booking']:,} of them at booking)\n"
    )


def _funding_outcome(record: dict[str, Any]) -> str:
    """'funded', 'unfunded' (declined for no capacity) or 'none' (no funding was sought)."""
    plan = record["decision"].get("funding")
    return "none" if plan is None else str(plan["outcome"])


def _book(actx: AppContext, record: dict[str, Any], desk: FundingDesk, tally: Counter[str]) -> int:
    """Book one granted decision with its plan; 0 if the plan no longer fits and none does."""
    try:
        originate(
            SqlUnitOfWork(actx.engine, plan_policy=desk.policy_on), actx.catalog, record, desk
        )
    except Conflict as exc:
        if not is_no_capacity(exc):
            raise
        tally["funded"] -= 1
        tally["refused at booking"] += 1
        return 0
    return 1
