"""`lendstack partners list|show|add|update|import-builtin` and `lendstack funding exposure`.

Partner files are validated by the pure parser before anything is written, so a bad file is
an error naming the field (exit 2) and the database is untouched. Errors from the error tree
are turned into a message and its exit code here, so the groups behave the same under the
root command and under a test runner.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.table import Column, Table

from lendstack.cli.context import app_context
from lendstack.cli.params import parse_date
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.core.errors import NotFound
from lendstack.funding import Funder, Rule, parse_partner_text
from lendstack.storage.cob import SqlCloseStore
from lendstack.storage.funding import (
    ExposureReport,
    FunderExposure,
    FunderRecord,
    SqlFunding,
    definition,
)

partners_app = typer.Typer(
    help="Co-lending partners: banks and the platform.", no_args_is_help=True
)
funding_app = typer.Typer(help="Co-lending: exposure and limits.", no_args_is_help=True)

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


def _partner_json(p: FunderExposure) -> dict[str, Any]:
    return {
        "id": p.funder.id,
        "name": p.funder.name,
        "kind": p.funder.kind.value,
        "balance": p.exposure.balance,
        "tier1_limit": p.tier1_limit,
        "tier1_headroom": p.headroom_for(Rule.TIER1),
        "total_loans_limit": p.total_loans_limit,
        "total_loans_headroom": p.headroom_for(Rule.TOTAL_LOANS),
        "today": p.exposure.today,
        "daily_quota_headroom": p.headroom_for(Rule.DAILY_QUOTA),
        "total_allocated": p.exposure.total_allocated,
        "total_quota_headroom": p.headroom_for(Rule.TOTAL_QUOTA),
        "loans": p.loans,
        "dpd_mix": [{"bucket": b.label, "loans": b.loans, "balance": b.balance} for b in p.dpd_mix],
    }


def exposure_json(report: ExposureReport) -> dict[str, Any]:
    """The machine shape: money as decimal strings; bank-only limits are null for the platform."""
    return {
        "as_of": report.as_of,
        "total_balance": report.total_balance,
        "partners": [_partner_json(p) for p in report.partners],
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


__all__ = ["exposure_json", "funding_app", "partners_app"]
