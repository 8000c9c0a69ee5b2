"""`lendstack risk export|vintages|rollrates|transitions|stock|fpd` over a serviced book.

The JSON each command prints must be the pure function's own result on the same panel,
whether the panel comes from the database or from an exported file; a few figures are also
worked out by hand from the book's stories (`panel_book`). Runs on SQLite and, when
configured, on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine

from lendstack.cli.main import main
from lendstack.core.jsonvalues import json_default
from lendstack.risk.rollrates import compare_powers, roll_rates
from lendstack.risk.stock import Dimension, fpd_by_cohort, stock_measures
from lendstack.risk.vintages import vintage_curves
from lendstack.storage.analytics import read_panel
from risk.panel_book import build_book, catalog_with_fast_charge_off

APR = date(2026, 4, 30)


@pytest.fixture
def booked(engine: Engine, tmp_path: Path) -> Engine:
    build_book(engine, catalog_with_fast_charge_off(tmp_path / "products"), APR)
    return engine


def cli(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str, str]:
    """Run `lendstack --database URL risk ARGV`; (exit code, stdout, stderr)."""
    try:
        main(["--database", url, "risk", *argv])
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def as_printed(payload: Any) -> Any:
    """What the CLI's JSON renderer makes of a value."""
    return json.loads(json.dumps(payload, default=json_default))


def transitions_json(panel: pl.DataFrame) -> dict[str, Any]:
    comparisons = compare_powers(panel, (1, 2, 3))
    return {
        "one_month": comparisons[0].one_month.as_json(),
        "comparisons": [c.as_json() for c in comparisons],
    }


COMMANDS: list[tuple[list[str], Callable[[pl.DataFrame], Any]]] = [
    (["vintages"], lambda p: vintage_curves(p).as_json()),
    (["rollrates"], lambda p: roll_rates(p).as_json()),
    (["transitions", "--months", "1,2,3"], transitions_json),
    (["stock"], lambda p: stock_measures(p).as_json()),
    (["stock", "--by", "province", "--by", "funder"],
     lambda p: stock_measures(p, dimensions=(Dimension.PROVINCE, Dimension.FUNDER)).as_json()),
    (["stock", "--month-end", "2026-02-28"],
     lambda p: stock_measures(p, date(2026, 2, 28)).as_json()),
    (["fpd"], lambda p: fpd_by_cohort(p).as_json()),
    (["fpd", "--seasoning", "3"], lambda p: fpd_by_cohort(p, seasoning_months=3).as_json()),
]  # fmt: skip


def test_each_command_prints_the_pure_functions_result(
    booked: Engine, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    panel = read_panel(booked)
    for argv, expected in COMMANDS:
        code, out, err = cli(capsys, database_url, *argv, "--format", "json")
        assert code == 0, (argv, err)
        assert json.loads(out) == as_printed(expected(panel)), argv
        code, table, err = cli(capsys, database_url, *argv)
        assert code == 0, (argv, err)
        assert table.strip(), argv


def test_the_figures_are_the_books(
    booked: Engine, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = cli(capsys, database_url, "vintages", "--format", "json")
    january = json.loads(out)["cohorts"][0]
    # six January loans; by MOB 2 "never", "written" (CO) and "reversed" were 30+ DPD
    assert (january["origination_month"], january["loans"]) == ("2026-01-01", 6)
    assert january["dpd30"] == [0.0, 0.0, 0.5, 0.5]
    assert january["charged_off"] == [0.0, 0.0, 1 / 6, 1 / 6]
    _, out, _ = cli(capsys, database_url, "fpd", "--format", "json")
    cohorts = {c["origination_month"]: c for c in json.loads(out)["cohorts"]}
    # all six seasoned (a row at MOB 2 or the payoff before it); FPD: never, late, written,
    # reversed
    assert (cohorts["2026-01-01"]["seasoned_loans"], cohorts["2026-01-01"]["fpd_loans"]) == (6, 4)
    assert cohorts["2026-02-01"]["fpd_rate"] == 1.0
    _, out, _ = cli(capsys, database_url, "stock", "--by", "product", "--format", "json")
    total = json.loads(out)["rows"][0]
    # April: good (current), never and reversed (M3), late (M1, 15 DPD), february (M2)
    assert (total["dimension"], total["loans"]) == ("total", 5)
    assert total["npl_ratio"] == 0.0  # nobody past 90 DPD: all 关注 at most


def test_an_exported_panel_reads_back_to_the_same_figures(
    booked: Engine, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "panel.parquet"
    code, out, err = cli(capsys, database_url, "export", "--out", str(out_file), "--format", "json")
    assert code == 0, err
    assert json.loads(out) == {
        "path": str(out_file), "rows": 24, "loans": 7,
        "first_month_end": "2026-01-31", "last_month_end": "2026-04-30",
    }  # fmt: skip
    for argv, _ in COMMANDS:
        _, from_db, _ = cli(capsys, database_url, *argv, "--format", "json")
        code, from_file, err = cli(
            capsys, database_url, *argv, "--panel", str(out_file), "--format", "json"
        )
        assert code == 0, (argv, err)
        assert json.loads(from_file) == json.loads(from_db), argv
    _, cut, _ = cli(capsys, database_url, "vintages", "--through", "2026-03-31", "--format", "json")
    _, cut_file, _ = cli(
        capsys, database_url, "vintages", "--panel", str(out_file), "--through", "2026-03-31",
        "--format", "json",
    )  # fmt: skip
    assert json.loads(cut)["as_of"] == "2026-03-31"
    assert json.loads(cut_file) == json.loads(cut)


def test_no_month_end_yet_exits_not_found_naming_date_and_writes_nothing(
    engine: Engine, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "out" / "panel.parquet"
    code, _, err = cli(capsys, database_url, "export", "--out", str(out_file))
    assert code == 3
    assert "date:" in err
    assert "no month-end" in err
    assert not out_file.parent.exists()
    for command in ("vintages", "rollrates", "transitions", "stock", "fpd"):
        code, _, err = cli(capsys, database_url, command, "--format", "json")
        assert (code, "date:" in err) == (3, True), command


def test_bad_panels_and_options_exit_non_zero_naming_the_field(
    booked: Engine, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.parquet"
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("not parquet", encoding="utf-8")
    wrong = tmp_path / "wrong.parquet"
    read_panel(booked).drop("dpd").write_parquet(wrong)
    cases = [
        (["vintages", "--panel", str(missing)], 3, "panel:"),
        (["vintages", "--panel", str(garbage)], 2, "panel:"),
        (["vintages", "--panel", str(wrong)], 2, "dpd:"),
        (["transitions", "--months", "0,3"], 2, "--months:"),
        (["transitions", "--months", "three"], 2, "--months:"),
        (["stock", "--month-end", "2026-03-15"], 3, "month_end:"),
        (["vintages", "--through", "2026-13-01"], 2, "through:"),
        (["vintages", "--through", "2025-12-31"], 3, "date:"),
    ]
    for argv, expected, field in cases:
        code, _, err = cli(capsys, database_url, *argv)
        assert (code, field in err) == (expected, True), (argv, err)
