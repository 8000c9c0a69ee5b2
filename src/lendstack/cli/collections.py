"""`lendstack collections queue|plan|record|contacts|ptp|promises` (docs/collections.md).

`queue` ranks the day's collectable loans by expected recovery; `plan` turns the strategies'
actions into the day's compliant contact plan, listing every refused contact with its reason
code and rule id. Both only read. `record` checks one contact attempt against the rule pack
and logs it for audit, allowed or refused; a refused attempt is logged and the command exits
4 with the reasons. `ptp` records a promise to pay; close of business marks it kept or
broken. Bad input (unknown or closed loan, unknown channel, party or outcome, a malformed
time or amount) exits non-zero naming the field and writes nothing.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lendstack.cli.context import app_context
from lendstack.cli.params import parse_amount, parse_date
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.collections import (
    Attempt,
    Channel,
    Outcome,
    Party,
    Plan,
    RulePack,
    StrategySet,
    default_pack,
    default_strategies,
    load_pack,
    load_strategies,
    pack_json,
    parse_enum,
    plan,
    queue_rows,
    rank,
)
from lendstack.collections import Queue as RankedQueue
from lendstack.core.errors import Conflict, ValidationError
from lendstack.core.money import from_fen
from lendstack.storage import collections as store

app = typer.Typer(
    no_args_is_help=True, help="Collections: queue, contact plan, contact log, promises."
)

FormatOpt = typer.Option(OutputFormat.TABLE, "--format", help="table for people, json for tools.")
DateOpt = typer.Option(..., "--date", help="The business date to work, YYYY-MM-DD (an open date).")
LimitOpt = typer.Option(50, "--limit", min=0, help="Rows to show (totals always cover all).")
StrategiesOpt = typer.Option(None, "--strategies", help="Strategy file (default: shipped).")
RulesOpt = typer.Option(None, "--rules", help="Collection rule pack file (default: shipped).")


def register(root: typer.Typer) -> None:
    from lendstack.cli import restructure
    from lendstack.cli.collections_settle import settle

    app.command("settle")(settle)
    restructure.register(app)
    root.add_typer(app, name="collections")


def _strategies(path: Path | None) -> StrategySet:
    return default_strategies() if path is None else load_strategies(path)


def _pack(path: Path | None) -> RulePack:
    return default_pack() if path is None else load_pack(path)


def _ranked(ctx: typer.Context, day: date, strategies: StrategySet) -> RankedQueue:
    engine = app_context(ctx).ready_engine()
    with engine.connect() as conn:
        store.check_open_date(conn, day)
        book = store.read_book(conn, day, strategies.days_before_due)
    return rank(book, strategies)


@app.command("queue")
def queue(
    ctx: typer.Context,
    on: str = DateOpt,
    limit: int = LimitOpt,
    pre_due: bool = typer.Option(
        False, "--pre-due", help="Also list current loans due soon (the reminder strategy)."
    ),
    strategies_file: Path | None = StrategiesOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Delinquent loans ranked by expected recovery = balance × p − cost of the actions."""
    day = parse_date(on)
    strategies = _strategies(strategies_file)
    ranked = _ranked(ctx, day, strategies)
    ranked = ranked if pre_due else ranked.delinquent()
    rows = queue_rows(ranked, strategies, limit)
    payload = {
        "date": day,
        "strategies": strategies.label,
        "loans": len(ranked),
        "expected_recovery_total": from_fen(int(ranked.expected_fen.sum())),
        "queue": rows,
    }
    if fmt is OutputFormat.JSON:
        print_json(payload)
        return
    table = Table(title=f"Collection queue {day} ({len(ranked)} loans, {strategies.label})")
    for name in ("rank", "loan_id", "bucket", "dpd", "strategy", "balance", "probability", "cost"):
        table.add_column(name, justify="right" if name not in ("bucket", "strategy") else "left")
    table.add_column("expected", justify="right")
    for r in rows:
        table.add_row(
            *(str(r[k]) for k in ("rank", "loan_id", "bucket", "dpd", "strategy")),
            str(r["balance"]),
            str(r["probability"]),
            str(r["cost"]),
            str(r["expected_recovery"]),
        )
    console.print(table)


@app.command("plan")
def plan_cmd(
    ctx: typer.Context,
    on: str = DateOpt,
    limit: int = LimitOpt,
    out: Path | None = typer.Option(
        None, "--out", help="Also write the whole plan: OUT.planned.parquet, OUT.refused.parquet."
    ),
    strategies_file: Path | None = StrategiesOpt,
    rules_file: Path | None = RulesOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """The day's compliant contact plan: wanted contacts filtered by the rule pack."""
    day = parse_date(on)
    strategies, pack = _strategies(strategies_file), _pack(rules_file)
    engine = app_context(ctx).ready_engine()
    quiet = fmt is OutputFormat.JSON
    status = nullcontext() if quiet else console.status("reading the book and the contact log…")
    with status, engine.connect() as conn:
        store.check_open_date(conn, day)
        book = store.read_book(conn, day, strategies.days_before_due)
        facts = store.log_facts(conn, day, pack)
    result = plan(rank(book, strategies), strategies, pack, facts)
    files = _write_plan(result, out) if out is not None else None
    payload = {
        "date": day,
        "strategies": strategies.label,
        "rule_pack": pack_json(pack),
        **result.summary(),
        "files": files,
        "planned": result.planned.head(limit).to_dicts(),
        "refused": result.refused.head(limit).to_dicts(),
    }
    if fmt is OutputFormat.JSON:
        print_json(payload)
        return
    _print_plan(payload)


def _write_plan(result: Plan, out: Path) -> list[str]:
    paths = [out.with_suffix(".planned.parquet"), out.with_suffix(".refused.parquet")]
    try:
        result.planned.write_parquet(paths[0])
        result.refused.write_parquet(paths[1])
    except OSError as exc:
        raise ValidationError(f"cannot write {out}: {exc}", field="out") from exc
    return [str(p) for p in paths]


def _print_plan(payload: dict[str, Any]) -> None:
    console.print(
        f"Contact plan {payload['date']} ({payload['strategies']},"
        f" rules {payload['rule_pack']['id']}@{payload['rule_pack']['version']}):"
        f" {payload['planned_contacts']} contacts, {payload['planned_attempts']} attempts planned"
        f" {payload['planned_attempts_by_channel']}; {payload['refused_contacts']} refused"
        f" {payload['refused_attempts_by_reason']}"
    )
    for title, key, extra in (
        ("planned", "planned", ()),
        ("refused", "refused", ("reason", "rule_id")),
    ):
        rows = payload[key]
        if not rows:
            continue
        table = Table(title=title)
        names = ("rank", "loan_id", "strategy", "channel", "party", "at", "attempts", *extra)
        for name in names:
            table.add_column(name)
        for row in rows:
            table.add_row(*(str(row[n]) for n in names))
        console.print(table)


def _parse_at(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"{text!r} is not a date-time (YYYY-MM-DDTHH:MM, local time or with offset)",
            field="at",
        ) from None


@app.command("record")
def record(
    ctx: typer.Context,
    loan: int = typer.Argument(..., help="The loan id."),
    channel: str = typer.Option(..., "--channel", help=f"One of: {', '.join(Channel)}."),
    at: str = typer.Option(
        ..., "--at", help="When: YYYY-MM-DDTHH:MM (debtor local time) or with offset."
    ),
    party: str = typer.Option(..., "--party", help="debtor, emergency or third_party."),
    outcome: str = typer.Option(..., "--outcome", help=f"One of: {', '.join(Outcome)}."),
    consent: bool = typer.Option(
        False, "--consent", help="The debtor consented to this contact (logged)."
    ),
    number: str | None = typer.Option(
        None, "--number", help="The number or address contacted (default: the party's)."
    ),
    message: str = typer.Option(
        "", "--message", help="The text or script used; checked for banned wording."
    ),
    rules_file: Path | None = RulesOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Record a contact attempt for audit; a contact the rules forbid exits 4 with its reasons."""
    attempt = Attempt(
        loan,
        parse_enum(Channel, channel, "channel"),
        parse_enum(Party, party, "party"),
        _parse_at(at),
        number or party,
        consent,
        message,
    )
    result = parse_enum(Outcome, outcome, "outcome")
    done = store.record_contact(app_context(ctx).ready_engine(), attempt, result, _pack(rules_file))
    payload = {
        "id": done.id,
        "loan_id": loan,
        "local_time": done.local.isoformat(),
        "allowed": done.verdict.allowed,
        "refusals": [r.as_json() for r in done.verdict.refusals],
        "rule_pack": done.rule_pack,
    }
    if fmt is OutputFormat.JSON:
        print_json(payload)
    elif done.verdict.allowed:
        console.print(f"contact {done.id} recorded for loan {loan} ({done.rule_pack})")
    if not done.verdict.allowed:
        reasons = "; ".join(
            f"{r.reason.value} ({r.rule_id}): {r.detail}" for r in done.verdict.refusals
        )
        raise Conflict(f"refused and logged as contact {done.id}: {reasons}", field="contact")


@app.command("contacts")
def contacts(
    ctx: typer.Context,
    loan: int = typer.Argument(..., help="The loan id."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """A loan's contact log (every attempt, allowed or refused), oldest first."""
    rows = store.contacts(app_context(ctx).ready_engine(), loan)
    if fmt is OutputFormat.JSON:
        print_json(rows)
        return
    table = Table(title=f"Contact log, loan {loan}")
    names = ("id", "local_day", "local_time", "channel", "party", "outcome", "allowed")
    for name in names:
        table.add_column(name)
    table.add_column("reasons")
    for row in rows:
        reasons = ", ".join(r["reason"] for r in row["reasons"])  # type: ignore[attr-defined]
        table.add_row(*(str(row[n]) for n in names), reasons)
    console.print(table)


@app.command("ptp")
def ptp(
    ctx: typer.Context,
    loan: int = typer.Argument(..., help="The loan id."),
    amount: str = typer.Option(..., "--amount", help="The promised amount, e.g. 500.00."),
    by: str = typer.Option(..., "--date", help="The date it is promised by, YYYY-MM-DD."),
    on: str | None = typer.Option(
        None, "--on", help="When the promise was made (default: the open business date)."
    ),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Record a promise to pay; close of business marks it kept or broken."""
    value = parse_amount(amount, "amount")
    due = parse_date(by, "date")
    start = parse_date(on, "on") if on else None
    promise = store.record_promise(app_context(ctx).ready_engine(), loan, value, due, start)
    if fmt is OutputFormat.JSON:
        print_json(promise.as_json())
        return
    console.print(
        f"promise {promise.id}: loan {loan} to pay {value} by {due} (from {promise.promised_on})"
    )


@app.command("promises")
def promises(
    ctx: typer.Context,
    loan: int | None = typer.Option(None, "--loan", help="Only this loan."),
    status: str | None = typer.Option(None, "--status", help="open, kept or broken."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Promises to pay and what became of them."""
    if status is not None and status not in ("open", "kept", "broken"):
        raise ValidationError(f"{status!r} is not one of: open, kept, broken", field="status")
    rows = [p.as_json() for p in store.promises(app_context(ctx).ready_engine(), loan, status)]
    if fmt is OutputFormat.JSON:
        print_json(rows)
        return
    table = Table(title="Promises to pay")
    names = ("id", "loan_id", "amount", "promised_on", "due_date", "status", "paid", "resolved_on")
    for name in names:
        table.add_column(name)
    for row in rows:
        table.add_row(*(str(row[n]) for n in names))
    console.print(table)
