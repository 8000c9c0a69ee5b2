"""NPL benchmark: package and value a big non-performing portfolio.

    .venv/bin/python -m benchmarks.bench_npl --loans 500000

Target (issue 7): packaging and valuing a 500,000-loan portfolio in <= 60 s.

The book is written by SQL inside the database (recursive CTEs), not by the servicing
generator: `--loans` loans, 60 % on book at 91-179 DPD (次级) and 40 % charged off with a
six-installment schedule each; half co-funded (platform 30 % / big-state-bank 70 %), all with
a province; a tenth of the charged-off loans have recovery payments, so the curves come from
history where it is thick enough. The timed parts are exactly what `lendstack npl package`
(selection, portfolio rows, balances, tape, validation, completeness, CSV + Parquet) and
`lendstack npl value` (recovery history, curves, valuation, sensitivity grid) run.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, text

from benchmarks.bench_servicing import fresh_engine
from lendstack.collections.npl_eligibility import pilot
from lendstack.collections.npl_tape import completeness, validate
from lendstack.collections.npl_valuation import Terms
from lendstack.storage.funding import SqlFunding
from lendstack.storage.npl import value_portfolio
from lendstack.storage.npl_package import package_portfolio
from lendstack.storage.npl_tape import write_tape

CLOSED = date(2026, 6, 30)
_SERIES = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)"
_HASH = "((i * 2654435761) % 1000003)"
_CHARGED = f"({_HASH} % 5 < 2)"
PROVINCES = ("Guangdong", "Zhejiang", "Jiangsu", "Sichuan", "Henan", "Shandong", "Hubei")

_LOANS = (
    f"{_SERIES} INSERT INTO loans (id, product_id, currency, status, principal_fen,"
    " annual_rate, term_months, method, disbursement_date, anchor_date, day_count, rounding,"
    " grace_days, penalty_multiplier, penalty_rate_e8, year_days, waterfall, non_accrual_dpd,"
    " charge_off_dpd, fee_rate, upfront_fee_rate, prepayment_fee_rate, bal_principal,"
    " bal_interest, bal_fee, bal_penalty, dpd, bucket, risk_class, non_accrual, charged_off_fen,"
    " closed_on, created_at)"
    " SELECT i, CASE WHEN i % 4 = 0 THEN 'business-loan-interest-first'"
    " ELSE 'cash-loan-installment' END, 'CNY',"
    f" CASE WHEN {_CHARGED} THEN 'charged_off' ELSE 'active' END, 1200000, '0.18', 12,"
    " 'equal-installment', '2025-06-01', '2025-06-01', 'ACT/365F', 'half-up', 3, '1.5',"
    " 27000000, 365, 'overdue_penalty', 90, 180, '0', '0', '0',"
    f" CASE WHEN {_CHARGED} THEN 0 ELSE 100000 + ({_HASH} * 7) % 900000 END,"
    f" CASE WHEN {_CHARGED} THEN 0 ELSE {_HASH} % 50000 END, 0,"
    f" CASE WHEN {_CHARGED} THEN 0 ELSE {_HASH} % 3000 END,"
    f" CASE WHEN {_CHARGED} THEN 180 ELSE 91 + {_HASH} % 89 END, 4,"
    f" CASE WHEN {_HASH} % 7 = 0 THEN 'doubtful' ELSE 'substandard' END, TRUE,"
    f" CASE WHEN {_CHARGED} THEN 700000 + {_HASH} % 300000 ELSE 0 END,"
    f" CASE WHEN {_CHARGED} THEN DATE('2024-01-01', '+' || ({_HASH} % 880) || ' days')"
    " ELSE NULL END, '2025-06-01 00:00:00' FROM n"
)

_INSTALLMENTS = (
    f"{_SERIES} INSERT INTO installments (loan_id, version, number, start_date, due_date,"
    " due_day, principal_fen, interest_fen, fee_fen, billed, active)"
    " SELECT l.id, 1, k.k, '2025-06-01', '2025-07-01', 20270, 200000, 15000, 0, TRUE, TRUE"
    " FROM loans l JOIN (SELECT i AS k FROM n) k WHERE l.status = 'charged_off'"
)

_POSITIONS = (
    "INSERT INTO funder_positions (loan_id, funder_id, principal_fen, share_units)"
    " SELECT loans.id, f.id, CASE WHEN status = 'active' THEN bal_principal * f.u / 10000 + "
    " CASE WHEN f.id = 'platform' THEN bal_principal - bal_principal * 7000 / 10000"
    " - bal_principal * 3000 / 10000 ELSE 0 END ELSE 0 END, f.u FROM loans"
    " JOIN (SELECT 'platform' AS id, 3000 AS u UNION ALL SELECT 'big-state-bank', 7000) f"
    " WHERE loans.id % 2 = 0"
)

_PROFILES = (
    "INSERT INTO loan_profiles (loan_id, channel, province, purpose)"
    " SELECT id, 'app', CASE id % 7 "
    + " ".join(f"WHEN {k} THEN '{p}'" for k, p in enumerate(PROVINCES))
    + " END, 'consumption' FROM loans"
)

_RECOVERIES = (
    f"{_SERIES} INSERT INTO payments (loan_id, kind, value_date, amount_fen, idempotency_key,"
    " request_hash, status, applied, entry_id, schedule_version_before, created_at)"
    " SELECT l.id, 'recovery', DATE(l.closed_on, '+' || (30 * k.i) || ' days'), 5000,"
    " 'bench-' || l.id || '-' || k.i, '', 'posted', '{\"recovery\": 5000}', 1, 1,"
    " '2026-06-30 00:00:00' FROM loans l JOIN n k WHERE l.status = 'charged_off'"
    " AND l.id % 10 = 1 AND DATE(l.closed_on, '+' || (30 * k.i) || ' days') <= '2026-06-30'"
)


def build(engine: Engine, loans: int) -> float:
    started = time.perf_counter()
    SqlFunding(engine).import_builtin()
    with engine.begin() as conn:
        conn.execute(text(_LOANS), {"count": loans})
        conn.execute(text(_INSTALLMENTS), {"count": 6})
        conn.execute(text(_POSITIONS))
        conn.execute(text(_PROFILES))
        conn.execute(
            text(
                "INSERT INTO journal_entries (id, event, business_date, reference, created_at)"
                " VALUES (1, 'recovery', '2026-06-30', 'bench', '2026-06-30 00:00:00')"
            )
        )
        conn.execute(text(_RECOVERIES), {"count": 24})
        conn.execute(
            text(
                "INSERT INTO cob_steps (step, business_date, rows, completed_at)"
                " VALUES ('closed', :day, 0, '2026-06-30 23:00:00')"
            ),
            {"day": CLOSED},
        )
    return time.perf_counter() - started


def run(engine: Engine, out: Path) -> dict[str, float | int | str]:
    marks: dict[str, float | int | str] = {}
    started, cpu = time.perf_counter(), time.process_time()

    def export(portfolio: object, chosen: object, columns: dict[str, list[object]]) -> int:
        marks["select + tape"] = time.perf_counter() - started
        mark = time.perf_counter()
        problems = validate(columns)
        report = completeness(columns)
        marks["validate"] = time.perf_counter() - mark
        mark = time.perf_counter()
        write_tape(columns, out, "bench.tape")
        marks["files"] = time.perf_counter() - mark
        assert not problems, problems
        marks["missing"] = ",".join(name for name, _ in report.missing)
        return len(columns["loan_id"])

    marks["loans"] = package_portfolio(engine, "bench", CLOSED, pilot(), export)
    marks["package"] = time.perf_counter() - started
    mark = time.perf_counter()
    valuation = value_portfolio(engine, "bench", Terms(0.15))
    marks["value"] = time.perf_counter() - mark
    marks["total"] = time.perf_counter() - started
    marks["total cpu (this process)"] = time.process_time() - cpu
    marks["price % P+I"] = str(valuation.pct_pi)
    marks["irr ok"] = str(valuation.irr_ok)
    marks["curves"] = ",".join(f"{c.segment}:{c.source.value}" for c in valuation.curves)
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loans", type=int, default=500_000, help="Loans in the book.")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    with fresh_engine("sqlite") as engine, tempfile.TemporaryDirectory() as out:
        built = build(engine, args.loans)
        print(f"built {args.loans:,} loans in {built:.1f} s")
        for key, val in run(engine, Path(out)).items():
            shown = f"{val:.2f} s" if isinstance(val, float) else val
            print(f"  {key}: {shown}")


if __name__ == "__main__":
    main()
