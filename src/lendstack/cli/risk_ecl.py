"""`lendstack risk ecl` and `lendstack risk stress`: the IFRS 9 allowance and the macro stress
test over the real book.

Files (config, matrix, scenario) and numbers are validated before the database is touched,
so a bad input is an error naming the field (exit 2) and nothing is written. `risk ecl
--post` is the only command of the risk group that writes to the ledger.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from sqlalchemy import Engine

from lendstack.cli.context import app_context
from lendstack.cli.params import parse_amount, parse_date, parse_rate
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.risk.ecl_settings import EclConfig
from lendstack.risk.stress import Portfolio, StressResult, run_stress
from lendstack.risk.stress_scenario import Scenario, builtin_scenario, load_scenario
from lendstack.storage.ecl_runs import EclOutcome, ecl_inputs, run_ecl
from lendstack.storage.risk_book import (
    capital_base,
    current_date,
    load_book,
    segments_json,
    stress_portfolio,
)

FormatOpt = typer.Option(OutputFormat.TABLE, "--format", help="table or json.")
ConfigOpt = typer.Option(
    None, "--config", help="An ECL config TOML file (default: the shipped default.toml)."
)


def register(app: typer.Typer) -> None:
    app.command("ecl")(ecl)
    app.command("stress")(stress)


def ecl(
    ctx: typer.Context,
    day: str = typer.Option(..., "--date", help="A closed business date, YYYY-MM-DD."),
    post: bool = typer.Option(
        False, "--post", help="Post the allowance change since the last posted run to the GL."
    ),
    config: Path | None = ConfigOpt,
    matrix: Path | None = typer.Option(
        None,
        "--matrix",
        help='A monthly transition matrix JSON: {"states": [...], "matrix": [[...]], '
        '"default_state": "D"}; states include the bucket labels M0, M1, ...',
    ),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """The IFRS 9 / CAS 22 loss allowance of the book at a closed date.

    By stage, with causes, scenarios and the roll-forward from the previous run. The run is
    kept: the same date and files give the same run again. --post posts the change in the
    allowance once per date (Dr 6702 / Cr 1309, reference ecl:DATE); posting a date again is
    a no-op, or a conflict (exit 4) if the figures differ.
    """
    as_of = parse_date(day)
    inputs = ecl_inputs(config, matrix)
    outcome = run_ecl(app_context(ctx).ready_engine(), as_of, inputs, post=post)
    if fmt is OutputFormat.JSON:
        print_json(outcome.as_json())
        return
    _print_ecl(outcome)


def stress(
    ctx: typer.Context,
    scenario: str = typer.Option(
        ..., "--scenario", help="A built-in scenario (base, adverse, severe) or a scenario file."
    ),
    capital: str | None = typer.Option(
        None, "--capital", help="Starting capital in CNY (default: 10.5 % of the book's RWA)."
    ),
    profit_rate: str | None = typer.Option(
        None, "--profit-rate", help="Annual pre-provision profit / performing EAD, e.g. 0.06."
    ),
    config: Path | None = ConfigOpt,
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Stress the book at the last closed date through a nine-quarter macro scenario.

    Defaults, losses, ECL and the capital ratio, quarter by quarter. Writes nothing."""
    chosen = _scenario(scenario)
    amount = None if capital is None else parse_amount(capital, "capital")
    rate = parse_rate(profit_rate, "profit_rate") or Decimal(0)
    cfg = ecl_inputs(config).config
    engine = app_context(ctx).ready_engine()
    as_of, portfolio = _portfolio(engine, cfg)
    base = capital_base(portfolio, amount, float(rate))
    result = run_stress(portfolio, chosen, capital=base)
    payload = _stress_json(as_of.isoformat(), chosen, portfolio, base.capital, amount, result)
    payload["pre_provision_profit_rate"] = str(rate)
    if fmt is OutputFormat.JSON:
        print_json(payload)
        return
    _print_stress(payload, result)


def _scenario(name: str) -> Scenario:
    """A scenario file if NAME is one (or looks like a path), else a built-in id."""
    path = Path(name)
    if path.exists() or name.endswith(".toml") or "/" in name:
        return load_scenario(path)
    return builtin_scenario(name)


def _portfolio(engine: Engine, cfg: EclConfig) -> tuple[date, Portfolio]:
    with engine.connect() as conn:
        as_of = current_date(conn)
        return as_of, stress_portfolio(load_book(conn, as_of, cfg, paths=False), cfg)


def _stress_json(
    as_of: str,
    scenario: Scenario,
    portfolio: Portfolio,
    capital: Decimal,
    given: Decimal | None,
    result: StressResult,
) -> dict[str, Any]:
    return {
        "as_of": as_of,
        "scenario_name": scenario.name,
        "capital": capital,
        "capital_source": "given" if given is not None else "10.5 % of the starting RWA",
        "segments": segments_json(portfolio),
        **result.to_json(),
    }


# --- tables --------------------------------------------------------------------------------


def _money(value: str | Decimal) -> str:
    return f"{Decimal(value):,.2f}"


def _print_ecl(outcome: EclOutcome) -> None:
    data = outcome.as_json()
    run = data["run"]
    state = "posted" if run["posted"] else "not posted"
    console.print(
        f"[bold]ECL as of {data['as_of']}[/] config {data['config']}, run {run['id']}"
        f"{' (stored earlier)' if run['reused'] else ''}, {state}: {data['loans']} loans, "
        f"EAD {_money(data['ead'])}, allowance [bold]{_money(data['total'])}[/] CNY"
    )
    table = Table("stage", "loans", "EAD", "allowance", "coverage", title="by stage")
    for stage, row in data["by_stage"].items():
        ead, amount = Decimal(row["ead"]), Decimal(row["amount"])
        cover = f"{amount / ead:.2%}" if ead else "-"
        table.add_row(stage, str(row["loans"]), _money(ead), _money(amount), cover)
    console.print(table)
    causes = ", ".join(f"{k} {v}" for k, v in data["causes"].items())
    console.print(f"causes: {causes}")
    scenarios = Table("scenario", "weight", "z", "allowance alone", title="scenarios")
    for s in data["scenarios"]:
        scenarios.add_row(s["name"], s["weight"], f"{s['z']:g}", _money(s["total"]))
    console.print(scenarios)
    if data["roll_forward"] is not None:
        _print_roll_forward(data["roll_forward"])
    if data["posting"] is not None:
        p = data["posting"]
        console.print(
            f"posting {p['reference']}: {p['status']}; change {_money(p['change'])} "
            f"(Dr {p['debit']} / Cr {p['credit']}), previous {_money(p['previous_total'])}"
        )


def _print_roll_forward(movement: dict[str, Any]) -> None:
    title = f"roll-forward {movement['opening_date']} -> {movement['closing_date']}"
    table = Table("movement", "stage 1", "stage 2", "stage 3", "total", "loans", title=title)
    for name, row in movement["movements"].items():
        cells = [_money(row[k]) for k in ("1", "2", "3", "total")]
        table.add_row(name, *cells, str(row["loans"]))
    console.print(table)


def _print_stress(payload: dict[str, Any], result: StressResult) -> None:
    console.print(
        f"[bold]stress {payload['scenario']}[/] ({payload['scenario_name']}) on the book at "
        f"{payload['as_of']}: capital {_money(payload['capital'])} ({payload['capital_source']})"
    )
    segments = Table("product", "loans", "EAD", "PD 12m", "LGD", title="segments")
    for s in payload["segments"]:
        segments.add_row(s["product"], str(s["count"]), _money(s["ead"]), f"{s['pd']:.2%}",
                         f"{s['lgd']:.0%}")  # fmt: skip
    console.print(segments)
    # whole yuan, or millions with two decimals for a large book, so the path fits 80 columns
    big = result.start.ead >= 10**7
    unit, scale, places = ("CNY m", Decimal(10**6), 2) if big else ("CNY", Decimal(1), 0)
    table = Table("q", "PD", "defaults", "losses", "cum. losses", "ECL", "capital", "ratio",
                  title=f"quarter path ({unit})")  # fmt: skip
    for q in (result.start, *result.quarters):
        ratio = "-" if q.capital_ratio is None else f"{q.capital_ratio:.2%}"
        amounts = (q.defaults_amount, q.losses, q.cumulative_losses, q.ecl, q.capital)
        table.add_row(
            str(q.quarter),
            f"{q.stressed_pd:.2%}",
            *(f"{a / scale:,.{places}f}" for a in amounts),
            ratio,
        )
    console.print(table)
    low = result.min_capital_ratio
    console.print(
        f"cumulative losses {_money(result.cumulative_losses)}, peak ECL "
        f"{_money(result.peak_ecl)}, lowest capital ratio "
        f"{'-' if low is None else f'{low:.2%}'}"
    )


__all__ = ["ecl", "register", "stress"]
