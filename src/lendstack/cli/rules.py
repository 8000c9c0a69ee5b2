"""`lendstack rules`: list, show and diff the regulatory rule packs underwriting applies.

Each command parses its arguments, calls the rules package and renders; errors are the
platform's error tree, which `cli/main.py` turns into a message and an exit code.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import typer
from rich.table import Table

from lendstack.cli.params import parse_date
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.underwriting.rules import (
    RuleChange,
    RulePack,
    builtin_packs,
    default_pack,
    diff_packs,
    format_param,
    load_pack,
)
from lendstack.underwriting.rules.rule import Rule, check_lender_type

app = typer.Typer(
    help="Regulatory rule packs: list the built-in regimes, show one, diff two.",
    no_args_is_help=True,
)

_FORMAT = typer.Option(OutputFormat.TABLE, "--format", help="table or json")
_PACK_HELP = "A built-in pack id (see `lendstack rules list`) or a path to a .toml file."


def _rule_json(rule: Rule) -> dict[str, Any]:
    source = rule.source
    return {
        "id": rule.id,
        "kind": rule.kind.value,
        "description": rule.description,
        "params": {k: format_param(v) for k, v in rule.params.items()},
        "effective_from": rule.effective_from,
        "effective_to": rule.effective_to,
        "status": rule.status.value,
        "enabled": rule.enabled,
        "applies_to": list(rule.applies_to),
        "confidence": rule.confidence.value,
        "source": {
            "body": source.body,
            "document": source.document,
            "doc_no": source.doc_no,
            "date": source.date,
            "section": source.section,
        },
    }


def _change_json(change: RuleChange) -> dict[str, Any]:
    fields = [{"field": f.field, "old": f.old, "new": f.new} for f in change.fields]
    return {"rule_id": change.rule_id, "change": change.change.value, "fields": fields}


@app.command("list")
def list_packs(fmt: OutputFormat = _FORMAT) -> None:
    """List the built-in rule packs; the default (newest final regime) is marked."""
    packs, default_id = builtin_packs(), default_pack().id
    if fmt is OutputFormat.JSON:
        print_json([{**p.summary(), "default": p.id == default_id} for p in packs])
        return
    table = Table(title="Built-in rule packs")
    for column in ("id", "version", "status", "from", "rules", "sha256", "title"):
        table.add_column(column)
    for p in packs:
        mark = " (default)" if p.id == default_id else ""
        start = p.effective_from.isoformat() if p.effective_from else "-"
        row = (
            p.id + mark,
            p.version,
            p.status.value,
            start,
            str(len(p.rules)),
            p.sha256[:12],
            p.title,
        )
        table.add_row(*row)
    console.print(table)


def _selected(pack: RulePack, on: date | None, lender_type: str | None) -> tuple[Rule, ...]:
    """With both filters this is `pack.select` plus the co-lending rules in force (they bind
    the funding plan, so no RuleSet holds them); with one, filter on that one alone."""
    if on is not None and lender_type is not None:
        funding = (r for r in pack.funding_rules(on) if r.covers(lender_type))
        return (*pack.select(on, lender_type).rules, *funding)
    return tuple(
        r
        for r in pack.rules
        if (on is None or r.in_force(on)) and (lender_type is None or r.covers(lender_type))
    )


@app.command()
def show(
    pack: str = typer.Argument(..., help=_PACK_HELP),
    on: str | None = typer.Option(None, "--on", help="Only rules in force on this date."),
    lender_type: str | None = typer.Option(
        None,
        "--lender-type",
        help="Only rules for bank, consumer_finance_company or online_microlender.",
    ),
    fmt: OutputFormat = _FORMAT,
) -> None:
    """Show a pack's rules with status, confidence, effective dates and source."""
    loaded = load_pack(pack)
    day = None if on is None else parse_date(on, "--on")
    if lender_type is not None:
        check_lender_type(lender_type, "--lender-type")
    rules = _selected(loaded, day, lender_type)
    if fmt is OutputFormat.JSON:
        selection = {"on": day, "lender_type": lender_type}
        print_json(
            {**loaded.summary(), "selection": selection, "rules": [_rule_json(r) for r in rules]}
        )
        return
    table = Table(title=f"{loaded.id} {loaded.version}: {loaded.title}")
    table.add_column("id", no_wrap=True)
    for column in ("kind", "params", "status", "conf", "from", "to", "on", "lenders", "source"):
        table.add_column(column, overflow="fold")
    for r in rules:
        table.add_row(
            r.id,
            r.kind.value,
            r.params_text(),
            r.status.value,
            r.confidence.value,
            r.effective_from.isoformat(),
            r.effective_to.isoformat() if r.effective_to else "-",
            "yes" if r.enabled else "no",
            ", ".join(r.applies_to) or "all",
            f"{r.source.body}: {r.source.document} ({r.source.section})",
        )
    console.print(table)
    console.print(f"{len(rules)} of {len(loaded.rules)} rules; sha256 {loaded.sha256}")


@app.command()
def diff(
    pack_a: str = typer.Argument(..., help=_PACK_HELP),
    pack_b: str = typer.Argument(..., help=_PACK_HELP),
    fmt: OutputFormat = _FORMAT,
) -> None:
    """Rules added, removed and changed from PACK_A to PACK_B, field by field."""
    a, b = load_pack(pack_a), load_pack(pack_b)
    changes = diff_packs(a, b)
    if fmt is OutputFormat.JSON:
        print_json(
            {"a": a.summary(), "b": b.summary(), "changes": [_change_json(c) for c in changes]}
        )
        return
    table = Table(title=f"{a.id} {a.version} -> {b.id} {b.version}")
    for column in ("rule", "change", "field", "old", "new"):
        table.add_column(column, overflow="fold")
    for change in changes:
        rows = change.fields or ((None),)
        for n, f in enumerate(rows):
            head = (change.rule_id, change.change.value) if n == 0 else ("", "")
            cells = ("", "", "") if f is None else (f.field, f.old or "-", f.new or "-")
            table.add_row(*head, *cells)
    console.print(table)
    console.print(f"{len(changes)} rule(s) differ")
