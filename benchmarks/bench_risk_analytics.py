"""Risk analytics benchmarks: vintage curves and roll rates over a loan-month panel.

Run: `.venv/bin/python -m benchmarks.bench_risk_analytics [--loan-months N] [--repeat R] [--seed S]`.
Target (issue 6): vintage and roll-rate tables over 10,000,000 loan-months in <= 10 s.

A synthetic panel (lendstack.risk.synthetic_panel) of about N rows is generated, written to
Parquet in a temporary directory, and each measure is timed in memory and from a Parquet
scan (best of R runs). The same two tables in DuckDB SQL over the Parquet file are timed for
comparison and checked against the polars numbers. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from lendstack.risk.panel import validate_panel
from lendstack.risk.rollrates import compare_powers, roll_rates, transition_matrix
from lendstack.risk.stock import fpd_by_cohort, stock_history, stock_measures
from lendstack.risk.synthetic_panel import PanelSpec, generate_panel, spec_for_loan_months
from lendstack.risk.vintages import vintage_curves

DUCKDB_VINTAGE = """
WITH p AS (SELECT * FROM read_parquet($path)),
starts AS (SELECT loan_id, origination_month FROM p WHERE months_on_book = 0),
firsts AS (
  SELECT loan_id,
         min(months_on_book) FILTER (WHERE dpd >= 30 OR state = 'CO') AS mob30,
         min(months_on_book) FILTER (WHERE dpd >= 90 OR state = 'CO') AS mob90,
         min(months_on_book) FILTER (WHERE state = 'CO') AS mobco
  FROM p WHERE dpd >= 30 OR state = 'CO' GROUP BY loan_id),
events AS (
  SELECT s.origination_month, f.mob30, f.mob90, f.mobco FROM firsts f JOIN starts s USING (loan_id)),
news AS (
  SELECT origination_month, mob, count(*) FILTER (WHERE m = 30) AS n30,
         count(*) FILTER (WHERE m = 90) AS n90, count(*) FILTER (WHERE m = 0) AS nco
  FROM (SELECT origination_month, 30 AS m, mob30 AS mob FROM events WHERE mob30 IS NOT NULL
        UNION ALL SELECT origination_month, 90, mob90 FROM events WHERE mob90 IS NOT NULL
        UNION ALL SELECT origination_month, 0, mobco FROM events WHERE mobco IS NOT NULL)
  GROUP BY ALL),
sizes AS (SELECT origination_month, count(*) AS loans FROM starts GROUP BY 1),
grid AS (
  SELECT origination_month, loans, unnest(range(0, datediff('month', origination_month,
         (SELECT max(month_end) FROM p)) + 1)) AS mob FROM sizes)
SELECT g.origination_month, g.mob, g.loans,
       sum(coalesce(n.n30, 0)) OVER w AS n30, sum(coalesce(n.n90, 0)) OVER w AS n90,
       sum(coalesce(n.nco, 0)) OVER w AS nco
FROM grid g LEFT JOIN news n USING (origination_month, mob)
WINDOW w AS (PARTITION BY g.origination_month ORDER BY g.mob)
ORDER BY 1, 2
"""

DUCKDB_ROLL = """
WITH k AS (
  SELECT loan_id * 65536 + year(month_end) * 12 + month(month_end) - 1 AS key,
         year(month_end) * 12 + month(month_end) - 1 AS month, state, principal_fen
  FROM read_parquet($path))
SELECT a.month, a.state, n.state AS to_state, count(*) AS loans, sum(a.principal_fen) AS fen
FROM k a JOIN k n ON n.key = a.key + 1
WHERE a.state NOT IN ('CO', 'PO')
GROUP BY ALL
"""


def best(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of `repeat` runs, in seconds, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loan-months", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    load_before = os.getloadavg()
    spec = spec_for_loan_months(args.loan_months, PanelSpec(seed=args.seed))
    seconds, panel = best(1, lambda: generate_panel(spec))
    rows: list[tuple[str, float]] = [("generate the panel (numpy)", seconds)]
    with tempfile.TemporaryDirectory() as folder:
        path, strings = Path(folder) / "panel.parquet", Path(folder) / "strings.parquet"
        rows.append(("write Parquet (zstd)", best(1, lambda: panel.write_parquet(path))[0]))
        panel.with_columns(pl.col(pl.Enum).cast(pl.String)).write_parquet(strings)
        rows += _polars_rows(panel, path, args.repeat)
        rows.append(_exported(strings, args.repeat))
        rows += _duckdb_rows(panel, path, args.repeat)
        size = path.stat().st_size
    _report(args, spec, panel.height, size, rows, load_before)


def _polars_rows(panel: pl.DataFrame, path: Path, repeat: int) -> list[tuple[str, float]]:
    scan = lambda: pl.scan_parquet(path)  # noqa: E731 - a fresh scan per run
    timed = [
        ("vintage curves, in memory", lambda: vintage_curves(panel)),
        ("vintage curves, from Parquet", lambda: vintage_curves(scan())),
        ("roll rates, in memory", lambda: roll_rates(panel)),
        ("roll rates, from Parquet", lambda: roll_rates(scan())),
        ("**vintage + roll rates, from Parquet (target ≤ 10 s)**",
         lambda: (vintage_curves(scan()), roll_rates(scan()))),
        ("transition matrix, 1 month (cohort method), in memory", lambda: transition_matrix(panel)),
        ("powers vs observed, 3/6/12 months, in memory", lambda: compare_powers(panel)),
        ("stock measures, 4 dimensions, last month-end", lambda: stock_measures(panel)),
        ("stock history, every month-end", lambda: stock_history(panel)),
        ("FPD by cohort", lambda: fpd_by_cohort(panel)),
        ("validate_panel(check_values=True), full scan", lambda: validate_panel(panel, check_values=True)),
    ]  # fmt: skip
    return [(name, best(repeat, run)[0]) for name, run in timed]


def _exported(path: Path, repeat: int) -> tuple[str, float]:
    """The target again on a file as a plain SQL export writes it: labels as strings."""
    seconds, _ = best(
        repeat, lambda: (vintage_curves(pl.scan_parquet(path)), roll_rates(pl.scan_parquet(path)))
    )
    return ("vintage + roll rates, from Parquet with string columns (a SQL export)", seconds)


def _duckdb_rows(panel: pl.DataFrame, path: Path, repeat: int) -> list[tuple[str, float]]:
    """The same two tables in DuckDB SQL over the Parquet file, checked against polars."""
    con = duckdb.connect()
    params = {"path": str(path)}
    vintage_s, vintage = best(repeat, lambda: _fetch(con, DUCKDB_VINTAGE, params))
    roll_s, roll = best(repeat, lambda: _fetch(con, DUCKDB_ROLL, params))
    ours = vintage_curves(panel).table
    for sql, polars in (
        ("n30", "dpd30_loans"),
        ("n90", "dpd90_loans"),
        ("nco", "charged_off_loans"),
    ):
        if vintage[sql].to_list() != ours[polars].to_list():
            raise SystemExit(f"DuckDB and polars vintage curves differ ({polars})")
    if roll["loans"].sum() != roll_rates(panel).flows["loans"].sum():
        raise SystemExit("DuckDB and polars roll-rate flows differ")
    return [
        ("DuckDB SQL: vintage curves (30+, 90+, CO), from Parquet", vintage_s),
        ("DuckDB SQL: roll-rate flows (self-join), from Parquet", roll_s),
    ]


def _fetch(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, str]) -> pl.DataFrame:
    relation = con.sql(query, params=params)
    assert relation is not None
    return relation.pl()


def _report(
    args: argparse.Namespace,
    spec: PanelSpec,
    height: int,
    parquet_bytes: int,
    rows: list[tuple[str, float]],
    load_before: tuple[float, float, float],
) -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"polars {pl.__version__}, duckdb {duckdb.__version__}"
    )
    load_after = os.getloadavg()
    print(f"load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f}")
    print(
        f"panel: {height:,} loan-months, {spec.cohorts * spec.loans_per_cohort:,} loans in "
        f"{spec.cohorts} cohorts over {spec.months} month-ends, term {spec.term_months} months, "
        f"Parquet {parquet_bytes / 1e6:.0f} MB; best of {args.repeat} runs"
    )
    print("\n| measure | seconds |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
