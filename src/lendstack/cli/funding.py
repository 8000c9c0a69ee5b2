"""`lendstack partners list|show|add|update|import-builtin`, `lendstack funding exposure` and
`lendstack funding plan` (a manual plan for a booked loan).

Partner files are validated by the pure parser before anything is written, so a bad file is
an error naming the field (exit 2) and the database is untouched. Errors from the error tree
are turned into a message and its exit code here, so the groups behave the same under the
root command and under a test runner.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer
from rich.table import Column, Table
from sqlalchemy import Engine, select

from lendstack.cli.context import app_context
from lendstack.cli.params import parse_date, parse_rate
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.core.errors import NotFound, ValidationError
from lendstack.core.money import from_fen
from lendstack.funding import PROVINCES, Funder, LoanRequest, Rule, parse_partner_text
from lendstack.servicing import LoanState, get_loan
from lendstack.servicing.domain.schedule import generate
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.decisions import SqlDecisionLog
from lendstack.storage.funding import (
    ExposureReport,
    FunderRecord,
    SqlFunding,
    definition,
)
from lendstack.storage.schema import loans
from lendstack.storage.settlements import SqlSettlements, write_statements
from lendstack.underwriting.funding_desk import record_request

partners_app = typer.Typer(
    help="Co-lending partners: banks and the platform.", no_args_is_help=True
)
funding_app = typer.Typer(
    help="Co-lending: exposure and limits, manual funding plans.", no_args_is_help=True
)

FormatOpt = typer.Option(OutputFormat.TABLE, "--format", help="table or json.")


def _repo(ctx: typer.Context) -> SqlFunding:
    return SqlFunding(app_context(ctx).ready_engine())


def _read_partner(path: Path) -> Funder:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NotFound(f"cannot read partner file {path}: {exc}", field="file") from exc
    return parse_partner_text(text, path.name)


def _record_json(record: FunderRecord) -> dict[str, Any]:
    return {
        **definition(record.funder),
        "version": record.version,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


@partners_app.command("list")
def list_partners(ctx: typer.Context, fmt: OutputFormat = FormatOpt) -> None:
    """Every stored partner, by id."""
    records = _repo(ctx).records()
    if fmt is OutputFormat.JSON:
        print_json({"partners": [_record_json(r) for r in records]})
        return
    table = Table(Column("id", no_wrap=True), "name", "kind", "region", "listed", "tier-1 net capital", "total loans",
                  "funding cost", "version")  # fmt: skip
    for r in records:
        f = r.funder
        table.add_row(
            f.id, f.name, f.kind.value, f.home_region or "", "yes" if f.on_platform_list else "no",
            str(f.tier1_net_capital), str(f.total_loans), str(f.funding_cost), str(r.version),
        )  # fmt: skip
    console.print(table)


@partners_app.command("show")
def show_partner(
    ctx: typer.Context,
    partner_id: str = typer.Argument(..., help="The partner's id."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """One partner's full definition (exit 3 if unknown)."""
    record = _repo(ctx).record(partner_id)
    payload = _record_json(record)
    if fmt is OutputFormat.JSON:
        print_json(payload)
        return
    table = Table("field", "value", title=f"partner {partner_id}")
    for key, value in _flatten(payload):
        table.add_row(key, value)
    console.print(table)


def _flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            yield f"{prefix}{key}", ", ".join(map(str, value)) or "any"
        else:
            yield f"{prefix}{key}", str(value)


@partners_app.command("add")
def add_partner(
    ctx: typer.Context, file: Path = typer.Argument(..., help="A partner TOML file.")
) -> None:
    """Validate a partner file and store it; an existing id is a conflict (exit 4)."""
    funder = _read_partner(file)
    _repo(ctx).add(funder)
    console.print(f"added partner {funder.id} ({funder.kind.value})")


@partners_app.command("update")
def update_partner(
    ctx: typer.Context, file: Path = typer.Argument(..., help="A partner TOML file.")
) -> None:
    """Validate a partner file and replace the stored partner of the same id (exit 3 if none)."""
    funder = _read_partner(file)
    record = _repo(ctx).update(funder)
    console.print(f"updated partner {funder.id} (version {record.version})")


@partners_app.command("import-builtin")
def import_builtin(ctx: typer.Context) -> None:
    """Add the sample partners shipped with lendstack that are not stored yet."""
    added = _repo(ctx).import_builtin()
    console.print(
        f"added {len(added)} partner(s): {', '.join(added)}" if added else "nothing to add"
    )


@funding_app.command("exposure")
def exposure(
    ctx: typer.Context,
    as_of: str | None = typer.Option(
        None, "--as-of", help="Loans disbursed on or before this date; default the last close."
    ),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Per partner: co-lent balance, the 2.2 / 2.3 limits and headroom, loans and DPD mix."""
    engine = app_context(ctx).ready_engine()
    day = parse_date(as_of, "as_of") if as_of else SqlCloseStore(engine).last_closed()
    report = SqlFunding(engine).exposures(day)
    if fmt is OutputFormat.JSON:
        print_json(exposure_json(report))
        return
    _print_exposure(report)


@funding_app.command("plan")
def plan(
    ctx: typer.Context,
    loan_id: int = typer.Argument(..., help="A booked loan that has no funding plan yet."),
    share: list[str] = typer.Option(
        ..., "--share", help="FUNDER=SHARE, e.g. platform=0.3; once per funder, summing to 1."
    ),
    pd: float | None = typer.Option(None, "--pd", help="PD (default: the decision's score)."),
    province: str | None = typer.Option(
        None, "--province", help="Borrower's province (default: the decision's application)."
    ),
    purpose: str | None = typer.Option(
        None, "--purpose", help="Loan purpose (default: the decision's application)."
    ),
    apr: str | None = typer.Option(
        None, "--apr", help="All-in APR (default: the decision's offer, else the loan's IRR)."
    ),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Record a funding plan for a booked loan, checked against every co-lending rule.

    The loan's PD, province and purpose come from the decision it was booked from (its
    reference); a loan booked without one needs --pd, --province and --purpose. A breach,
    an unknown partner or shares not summing to 1 exit non-zero naming the field, and
    nothing is written.
    """
    from lendstack.wiring import booking_desk

    shares = parse_shares(share)
    actx = app_context(ctx)
    engine = actx.ready_engine()
    loan = get_loan(actx.uow(), loan_id)
    overrides = {"pd": pd, "province": province, "purpose": purpose, "apr": apr}
    request = plan_request(engine, loan, overrides)
    policy = booking_desk(actx.settings, engine).check(request, shares)
    SqlFunding(engine).record_plan(engine, loan_id, shares, policy)
    if fmt is OutputFormat.JSON:
        print_json(
            {
                "loan_id": loan_id,
                "shares": [{"funder_id": k, "share": v} for k, v in sorted(shares.items())],
            }
        )
        return
    parts = ", ".join(f"{k} {v}" for k, v in sorted(shares.items()))
    console.print(f"recorded the funding plan of loan {loan_id}: {parts}")


def parse_shares(items: list[str]) -> dict[str, Decimal]:
    """`FUNDER=SHARE` options as exact decimals; a malformed or repeated one names --share."""
    shares: dict[str, Decimal] = {}
    for item in items:
        funder_id, sep, text = item.partition("=")
        funder_id = funder_id.strip()
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            value = Decimal("NaN")
        if not sep or not funder_id or not value.is_finite():
            raise ValidationError(
                f"{item!r} is not FUNDER=SHARE, e.g. platform=0.3", field="--share"
            )
        if funder_id in shares:
            raise ValidationError(f"partner {funder_id!r} is given twice", field="--share")
        shares[funder_id] = value
    return shares


def plan_request(engine: Engine, loan: LoanState, overrides: dict[str, Any]) -> LoanRequest:
    """What the rules need to know about a booked loan: its decision's facts, or the options."""
    contract = loan.contract
    facts: dict[str, Any] = {}
    record = _decision_record(engine, loan.id)
    if record is None:
        facts["apr"] = generate(contract.terms()).apr().apr_irr  # the IRR of the booked terms
    else:
        booked = record_request(record)
        facts = {"pd": booked.pd, "province": booked.province, "purpose": booked.purpose,
                 "apr": booked.apr}  # fmt: skip
    given = {k: v for k, v in overrides.items() if v is not None}
    if "apr" in given:
        given["apr"] = parse_rate(given["apr"], "--apr")
    facts.update(given)
    for name in ("pd", "province", "purpose"):
        if name not in facts:
            raise ValidationError(
                f"loan {loan.id} was not booked from a decision: give --{name}", field=f"--{name}"
            )
    if facts["province"] not in PROVINCES:
        raise ValidationError(f"unknown province {facts['province']!r}", field="--province")
    return LoanRequest(
        str(loan.id), contract.principal, float(facts["pd"]), facts["apr"], facts["province"],
        contract.product_id, contract.term_months, facts["purpose"], contract.disbursement_date,
    )  # fmt: skip


def _decision_record(engine: Engine, loan_id: int) -> dict[str, Any] | None:
    """The decision a loan was booked from (its reference is the decision id), if any."""
    with engine.connect() as conn:
        reference = conn.execute(select(loans.c.reference).where(loans.c.id == loan_id)).scalar()
    entry = None if reference is None else SqlDecisionLog(engine).get(str(reference))
    if entry is None:
        return None
    record: dict[str, Any] = json.loads(entry.record_json)
    return record


def exposure_json(report: ExposureReport) -> dict[str, Any]:
    """The machine shape: money as decimal strings; bank-only limits are null for the platform."""
    return {
        "as_of": report.as_of,
        "total_balance": report.total_balance,
        "partners": [p.as_json() for p in report.partners],
    }


def _money(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _print_exposure(report: ExposureReport) -> None:
    title = f"co-lending exposure as of {report.as_of or 'all loans'}"
    table = Table(Column("partner", no_wrap=True), "kind", "balance", "tier-1 limit", "headroom", "total-loans limit",
                  "headroom", "loans", "DPD mix", title=title)  # fmt: skip
    for p in report.partners:
        mix = " ".join(f"{b.label}:{b.loans}" for b in p.dpd_mix if b.loans)
        table.add_row(
            p.funder.id, p.funder.kind.value, _money(p.exposure.balance), _money(p.tier1_limit),
            _money(p.headroom_for(Rule.TIER1)), _money(p.total_loans_limit),
            _money(p.headroom_for(Rule.TOTAL_LOANS)), str(p.loans), mix or "-",
        )  # fmt: skip
    console.print(table)
    console.print(f"total co-lent balance {_money(report.total_balance)}")


# --- settlement -------------------------------------------------------------------------


@funding_app.command("settle")
def settle(
    ctx: typer.Context,
    on: str = typer.Option(..., "--date", help="A closed business date, YYYY-MM-DD."),
    out: Path | None = typer.Option(
        None, "--out", help="Directory for the files; default settlements/<date>/."
    ),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Write each bank's settlement statement for a closed date: CSV, .sha256 and JSON.

    One statement per bank with flows that day or loans still open at its end (a nil
    statement says nothing is due). Re-running a date rewrites byte-identical files. A date
    not closed yet exits 4 and writes nothing.
    """
    day = parse_date(on, "date")
    statements = SqlSettlements(app_context(ctx).ready_engine()).statements(day)
    out_dir = out if out is not None else Path("settlements") / day.isoformat()
    try:
        written = write_statements(statements, out_dir)
    except OSError as exc:
        raise ValidationError(f"cannot write to {out_dir}: {exc}", field="--out") from exc
    rows = [
        {
            "funder_id": w.statement.funder_id,
            "loans": len(w.statement.lines),
            "net": from_fen(w.statement.net),
            "closing_position": from_fen(w.statement.closing_position),
            "csv": str(w.csv),
            "json": str(w.json),
            "sha256": w.statement.checksum,
            "csv_sha256": w.csv_sha256,
        }
        for w in written
    ]
    if fmt is OutputFormat.JSON:
        print_json({"business_date": day, "out_dir": str(out_dir), "statements": rows})
        return
    table = Table(Column("partner", no_wrap=True), "loans", "net due to partner",
                  "closing position", "csv sha256", title=f"settlement {day} -> {out_dir}")  # fmt: skip
    for r in rows:
        table.add_row(r["funder_id"], str(r["loans"]), _money(r["net"]),
                      _money(r["closing_position"]), str(r["csv_sha256"])[:16])  # fmt: skip
    console.print(table if rows else f"no partner had flows or open loans on {day}")


@funding_app.command("buyback")
def buyback(
    ctx: typer.Context,
    loan_id: int = typer.Argument(..., help="An open co-funded loan."),
    funder: str = typer.Option(..., "--funder", help="The bank whose whole stake is bought."),
    on: str = typer.Option(..., "--date", help="The open business date, YYYY-MM-DD."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """The platform buys a bank's whole stake in a loan at its principal position.

    The bank is owed the price in its settlement file for the date; its share of the loan's
    later cash flows passes to the platform. The GL side is posted at that date's close.
    """
    day = parse_date(on, "date")
    price = _repo(ctx).buyback(loan_id, funder, day)
    result = {"loan_id": loan_id, "funder_id": funder, "business_date": day, "price": price}
    if fmt is OutputFormat.JSON:
        print_json(result)
        return
    console.print(f"loan {loan_id}: {funder}'s stake bought back for {_money(price)} on {day}")


__all__ = [
    "buyback",
    "exposure_json",
    "funding_app",
    "parse_shares",
    "partners_app",
    "plan_request",
    "settle",
]
