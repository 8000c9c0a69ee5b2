"""`lendstack npl buyers|package|list|value|sell`: the personal NPL batch-transfer pilot.

`package` selects the eligible loans (the pilot's rule, or `--criteria FILE`) into a named
portfolio and writes its loan tape (CSV + Parquet) with a completeness report; `value` prices a
portfolio from the lender's own recovery curves at a buyer's target IRR; `sell` books the sale
to an allowlisted AMC in one transaction. Every command takes `--format json`; bad input exits
non-zero naming the field, and writes nothing. See docs/npl-sale.md.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lendstack.cli.context import app_context
from lendstack.cli.params import parse_date
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.collections.npl_buyers import load_buyers, require_buyer
from lendstack.collections.npl_eligibility import PILOT_END, Criteria, parse_criteria, pilot
from lendstack.collections.npl_tape import completeness, validate
from lendstack.collections.npl_valuation import DEFAULT_COST, Terms, Valuation
from lendstack.core.errors import InvariantViolation, ValidationError
from lendstack.storage.npl import StoredPortfolio, get_portfolio, list_portfolios, value_portfolio
from lendstack.storage.npl_package import Selection, package_portfolio
from lendstack.storage.npl_sale import sell_portfolio
from lendstack.storage.npl_tape import write_tape
from lendstack.underwriting.pii import PiiVault

app = typer.Typer(
    help="Non-performing loan sale (个人不良贷款批量转让 pilot): package, value, sell.",
    no_args_is_help=True,
)

FormatOpt = typer.Option(OutputFormat.TABLE, "--format", help="table for people, json for tools.")
BuyersOpt = typer.Option(None, "--buyers", help="Buyer allowlist TOML (default: shipped list).")


def _read_criteria(path: Path | None, pilot_end: date) -> Criteria:
    if path is None:
        return pilot(pilot_end)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}", field="criteria") from exc
    return parse_criteria(text, str(path), pilot_end)


def _number(text: str, field: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValidationError(f"{text!r} is not a number", field=field) from None
    if not value.is_finite():
        raise ValidationError(f"{text!r} is not a finite number", field=field)
    return value


@app.command("buyers")
def buyers(buyers_file: Path | None = BuyersOpt, fmt: OutputFormat = FormatOpt) -> None:
    """The allowlisted buyers: national AMCs and qualified local AMCs."""
    found = load_buyers(buyers_file)
    if fmt is OutputFormat.JSON:
        print_json({"illustrative": found.illustrative, "source": found.source,
                    "buyers": [b.as_json() for b in found.buyers]})  # fmt: skip
        return
    table = Table("id", "name", "kind", "region", "may buy", title="NPL buyers")
    for b in found.buyers:
        table.add_row(b.id, f"{b.name}\n{b.name_en}", b.kind.value, b.region or "-",
                      "yes" if b.allowed else "no")  # fmt: skip
    console.print(table)
    if found.illustrative:
        console.print("[yellow]illustrative list: check each buyer's registration before use[/]")


def _export(out: Path) -> Any:
    def run(portfolio: StoredPortfolio, chosen: Selection, columns: dict[str, Any]) -> Any:
        problems = validate(columns)
        if problems:
            raise InvariantViolation("the loan tape is unsound: " + "; ".join(problems[:5]))
        files = write_tape(columns, out, f"{portfolio.name}.tape")
        return portfolio, chosen, completeness(columns), files

    return run


@app.command("package")
def package(
    ctx: typer.Context,
    day: str = typer.Option(..., "--date", help="Package date: the last closed or open date."),
    name: str = typer.Option(..., "--name", help="A new portfolio's unique name."),
    criteria_file: Path | None = typer.Option(None, "--criteria", help="Eligibility TOML."),
    pilot_end: str = typer.Option(PILOT_END.isoformat(), "--pilot-end", help="Pilot end date."),
    out: Path = typer.Option(Path("."), "--out", help="Directory for the tape files."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Select eligible NPLs into a named portfolio and write its loan tape (CSV + Parquet)."""
    on = parse_date(day)
    criteria = _read_criteria(criteria_file, parse_date(pilot_end, "pilot_end"))
    engine = app_context(ctx).ready_engine()
    with (
        console.status("packaging…", spinner="dots") if fmt is OutputFormat.TABLE else nullcontext()
    ):
        vault = PiiVault.for_reading(app_context(ctx).settings)  # for the age bands
        portfolio, chosen, report, files = package_portfolio(
            engine, name, on, criteria, _export(out), vault
        )
    body = {
        "portfolio": portfolio.as_json(),
        "excluded": dict(sorted(chosen.excluded.items())),
        "completeness": report.as_json(),
        "files": {"csv": str(files.csv), "parquet": str(files.parquet),
                  "csv_sha256": files.sha256_csv},
    }  # fmt: skip
    if fmt is OutputFormat.JSON:
        print_json(body)
        return
    p = portfolio
    console.print(f"[green]portfolio {p.name!r}: {p.loans:,} loans[/], principal "
                  f"{p.principal_fen / 100:,.2f}, interest {p.interest_fen / 100:,.2f}")  # fmt: skip
    for reason, n in sorted(chosen.excluded.items()):
        console.print(f"  excluded {n:,}: {reason}")
    for item in report.as_json()["missing"]:
        console.print(f"[yellow]  missing {item['field']}: {item['missing']:,} loans[/]")
    console.print(f"tape: {files.csv}, {files.parquet}")


@app.command("list")
def list_(ctx: typer.Context, fmt: OutputFormat = FormatOpt) -> None:
    """Stored portfolios and their status."""
    with app_context(ctx).ready_engine().connect() as conn:
        found = list_portfolios(conn)
    if fmt is OutputFormat.JSON:
        print_json([p.as_json() for p in found])
        return
    table = Table("name", "date", "status", "loans", "principal", title="NPL portfolios")
    for p in found:
        table.add_row(p.name, p.business_date.isoformat(), p.status, f"{p.loans:,}",
                      f"{p.principal_fen / 100:,.2f}")  # fmt: skip
    console.print(table)


def _print_valuation(name: str, v: Valuation) -> None:
    console.print(f"[bold]{name}[/]: price {v.price:,} at IRR {v.terms.irr:.2%} "
                  f"(haircut {v.terms.haircut:.0%}, collection cost {v.terms.cost:.0%})")  # fmt: skip
    console.print(f"  {v.pct_pi}% of principal + interest, {v.pct_principal}% of principal")
    console.print(f"  {v.market_position()}")
    ok = "[green]ok[/]" if v.irr_ok else "[red]FAILED[/]"
    console.print(f"  IRR from price: {v.irr_recomputed} ({ok}, tolerance 1 bp)")
    for c in v.curves:
        console.print(f"  curve {c.segment}: {c.source.value}; {c.note}")
    irrs = sorted({i for i, _, _ in v.grid})
    cuts = sorted({h for _, h, _ in v.grid})
    table = Table("IRR \\ haircut", *(f"{h:.0%}" for h in cuts), title="price sensitivity")
    cells = {(i, h): p for i, h, p in v.grid}
    for i in irrs:
        table.add_row(f"{i:.1%}", *(f"{cells[(i, h)]:,}" for h in cuts))
    console.print(table)


@app.command("value")
def value_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Portfolio name."),
    irr: str = typer.Option(..., "--irr", help="Buyer's target annual IRR, e.g. 0.15."),
    haircut: str = typer.Option("0", "--haircut", help="Recovery haircut, e.g. 0.2."),
    cost: str = typer.Option(str(DEFAULT_COST), "--cost", help="Buyer's collection cost share."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Price a portfolio: expected collections from recovery curves, discounted at the IRR."""
    terms = Terms(float(_number(irr, "irr")), float(_number(haircut, "haircut")),
                  float(_number(cost, "cost")))  # fmt: skip
    result = value_portfolio(app_context(ctx).ready_engine(), name, terms)
    if fmt is OutputFormat.JSON:
        print_json({"portfolio": name, **result.as_json()})
        return
    _print_valuation(name, result)


@app.command("sell")
def sell(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Portfolio name."),
    buyer: str = typer.Option(..., "--buyer", help="Buyer id on the allowlist."),
    price: str = typer.Option(..., "--price", help="Price in yuan, e.g. 125000.00."),
    day: str = typer.Option(..., "--date", help="Sale date: the open business date."),
    buyers_file: Path | None = BuyersOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Book the sale: derecognise the loans, release their allowance, split the proceeds."""
    amount = _number(price, "price")
    if amount < 0:
        raise ValidationError(f"the price must not be negative, got {price}", field="price")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationError(f"{price} is finer than the fen", field="price")
    on = parse_date(day)
    who = require_buyer(load_buyers(buyers_file), buyer)
    engine = app_context(ctx).ready_engine()
    with engine.connect() as conn:
        get_portfolio(conn, name)
    result = sell_portfolio(engine, name, who, amount, on)
    body = result.as_json()
    if fmt is OutputFormat.JSON:
        print_json(body)
        return
    console.print(f"[green]sold {result.loans:,} loans of {name!r} to {who.name}[/] for "
                  f"{body['price']:,}; loss on sale {body['loss_on_sale']:,}, allowance released "
                  f"{body['allowance_released']:,}")  # fmt: skip
    for funder_id, fen in body["proceeds_by_funder"].items():
        console.print(f"  {funder_id}: {fen:,}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="npl")


__all__ = ["app", "register"]
