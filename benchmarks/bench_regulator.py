"""Regulator report benchmark: `report regulator` over a synthetic month-end book.

Run: `.venv/bin/python -m benchmarks.bench_regulator --loans 1000000` (`--quick`: 20,000
loans). Target (issue 6): the report for a 1,000,000-loan book in <= 60 s.

Generating a real book through `portfolio generate` and a month-end close costs minutes per
million loans, so the book is written straight into the tables the report reads, with numpy
and the driver's executemany on SQLite: the loans (contract columns and month-end state),
their original schedules (equal-installment, 3/6/12 months), the month-end panel rows, the
built-in partners with funding plans and positions for half the book (platform 30 % + one
bank 70 %), one opening ledger entry for the principal receivable, the month's closed dates
and one ECL run. The build is not timed; the report is timed phase by phase, exactly as the
CLI runs it (model monitoring included, over a log with no decisions).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from lendstack.cli.report import write_directory
from lendstack.risk.regulator import build_report
from lendstack.risk.regulator_page import render_files
from lendstack.settings import Settings
from lendstack.storage.db import make_engine, migrate
from lendstack.storage.funding import SqlFunding
from lendstack.storage.regulator import load_inputs, resolve_period
from lendstack.underwriting.rules import default_pack

MONTH_END = date(2026, 6, 30)
PRODUCTS = np.array(["cash-loan-installment", "huabei-installment", "guaranteed-installment"])
PROVINCES = np.array(["Guangdong", "Zhejiang", "Jiangsu", "Shandong", "Henan", "Sichuan",
                      "Hubei", "Beijing", "Shanghai"])  # fmt: skip
CHANNELS = np.array(["alipay", "wechat", "jd", "meituan", "app"])
TERMS = np.array([3, 6, 12])
BANKS = ("big-state-bank", "harbour-joint-stock")
CLASSES = np.array(["normal", "special_mention", "substandard", "doubtful", "loss"])
_CHUNK = 200_000


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _schedule(principal: np.ndarray, rate: np.ndarray, term: np.ndarray) -> np.ndarray:
    """(loans, 12) equal-installment (principal, interest) parts in fen, principal exact."""
    r = rate / 12
    months = np.arange(1, 13)
    growth = (1 + r[:, None]) ** term[:, None]
    payment = principal[:, None] * r[:, None] * growth / (growth - 1)
    balance_before = principal[:, None] * (growth - (1 + r[:, None]) ** (months - 1)) / (growth - 1)
    interest = np.rint(balance_before * r[:, None])
    princ = np.rint(payment - interest)
    live = months[None, :] <= term[:, None]
    princ = np.where(live, princ, 0)
    interest = np.where(live, interest, 0)
    last = term - 1
    rows = np.arange(principal.shape[0])
    princ[rows, last] += principal - princ.sum(axis=1)
    return np.stack([princ, interest], axis=2).astype(np.int64)


def _book(n: int, seed: int) -> dict[str, Any]:
    g = _rng(seed)
    term = g.choice(TERMS, n, p=[0.2, 0.4, 0.4])
    age = np.minimum(g.integers(0, 12, n), term - 1)
    principal = g.integers(30, 201, n) * 10_000  # 3,000-20,000 CNY in 100 steps
    rate = g.choice(np.array([0.072, 0.108, 0.144, 0.18, 0.216, 0.2376]), n)
    parts = _schedule(principal.astype(np.float64), rate, term)
    paid = np.where(np.arange(12)[None, :] < age[:, None], parts[:, :, 0], 0).sum(axis=1)
    dpd = g.choice(np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 45, 100, 200, 300, 400]), n)
    klass = np.select([dpd > 360, dpd > 270, dpd > 90, dpd > 0], CLASSES[[4, 3, 2, 1]], "normal")
    offset = age * 30 + g.integers(0, 29, n)
    disbursed = np.datetime64(MONTH_END) - offset.astype("timedelta64[D]")
    return {
        "n": n, "term": term, "age": age, "principal": principal, "rate": rate, "parts": parts,
        "balance": principal - paid, "dpd": dpd, "class": klass, "disbursed": disbursed,
        "product": g.choice(PRODUCTS, n), "province": g.choice(PROVINCES, n),
        "channel": g.choice(CHANNELS, n), "bank": g.choice(np.array(BANKS), n),
        "cofunded": g.random(n) < 0.5,
    }  # fmt: skip


def _insert(engine: Engine, table: str, columns: tuple[str, ...], rows: Any) -> None:
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    with engine.begin() as conn:
        conn.connection.driver_connection.executemany(sql, rows)  # type: ignore[union-attr]


_LOAN_COLUMNS = (
    "id", "product_id", "currency", "status", "principal_fen", "annual_rate", "term_months",
    "method", "disbursement_date", "anchor_date", "day_count", "rounding", "grace_days",
    "penalty_multiplier", "penalty_rate_e8", "year_days", "waterfall", "non_accrual_dpd",
    "charge_off_dpd", "fee_rate", "upfront_fee_rate", "prepayment_fee_rate", "bal_principal",
    "dpd", "bucket", "risk_class", "non_accrual", "created_at",
)  # fmt: skip


def _rows(*columns: Any) -> Any:
    """Row tuples from column arrays (or scalars), built by zip over plain Python lists."""
    n = max(len(c) for c in columns if isinstance(c, np.ndarray))
    lists = [c.tolist() if isinstance(c, np.ndarray) else [c] * n for c in columns]
    return zip(*lists, strict=True)


def _loan_rows(b: dict[str, Any], lo: int, hi: int, created: str) -> Any:
    s = slice(lo, hi)
    dpd = b["dpd"][s]
    day = b["disbursed"][s].astype(str)
    return _rows(
        np.arange(lo + 1, hi + 1), b["product"][s], "CNY", "active", b["principal"][s],
        b["rate"][s].astype(str), b["term"][s], "equal-installment", day, day, "ACT/365F",
        "half-up", 3, "1.5", 0, 365, "penalty,fee,interest,principal", 90, 180, "0", "0", "0",
        b["balance"][s], dpd, np.minimum(-(-dpd // 30), 7), b["class"][s], dpd > 90, created,
    )  # fmt: skip


_INSTALLMENT_COLUMNS = (
    "loan_id", "version", "number", "start_date", "due_date", "due_day", "principal_fen",
    "interest_fen", "fee_fen", "paid_principal_fen", "paid_interest_fen", "billed", "active",
)  # fmt: skip


def _installment_rows(b: dict[str, Any], lo: int, hi: int) -> Any:
    term, age = b["term"][lo:hi], b["age"][lo:hi]
    loan = np.repeat(np.arange(lo, hi), term)
    m = np.arange(loan.shape[0]) - np.repeat(np.cumsum(term) - term, term)
    start = b["disbursed"][loan] + (30 * m).astype("timedelta64[D]")
    due = start + np.timedelta64(30, "D")
    p, i = b["parts"][loan, m, 0], b["parts"][loan, m, 1]
    paid = m < np.repeat(age, term)
    return _rows(
        loan + 1, 1, m + 1, start.astype(str), due.astype(str), due.astype(np.int64), p, i, 0,
        np.where(paid, p, 0), np.where(paid, i, 0), paid, True,
    )  # fmt: skip


_PANEL_COLUMNS = (
    "loan_id", "month_end", "origination_month", "months_on_book", "state", "dpd",
    "principal_fen", "risk_class", "product_id", "funder", "province", "channel",
    "first_payment_default",
)  # fmt: skip
_STATES = np.array(["M0", "M1", "M2", "M3", "M4", "M5", "M6+"])


def _panel_rows(b: dict[str, Any], lo: int, hi: int) -> Any:
    s = slice(lo, hi)
    dpd = b["dpd"][s]
    state = _STATES[np.minimum(-(-dpd // 30), 6)]
    months = b["disbursed"][s].astype("datetime64[M]")
    month = months.astype("datetime64[D]").astype(str)
    # months on book is calendar months from the origination month (the panel's invariant)
    mob = (np.datetime64(MONTH_END, "M") - months).astype(np.int64)
    funder = np.where(b["cofunded"][s], b["bank"][s], "platform")
    return _rows(
        np.arange(lo + 1, hi + 1), MONTH_END.isoformat(), month, mob, state, dpd,
        b["balance"][s], b["class"][s], b["product"][s], funder, b["province"][s],
        b["channel"][s], False,
    )  # fmt: skip


def _funding_rows(b: dict[str, Any], lo: int, hi: int) -> tuple[Any, Any]:
    k = np.flatnonzero(b["cofunded"][lo:hi]) + lo
    bal, bank = b["balance"][k], b["bank"][k]
    bank_fen = (bal * 7000 + 5000) // 10000
    ids = np.repeat(k + 1, 2)
    funder = np.stack([np.full(k.shape[0], "platform"), bank], axis=1).ravel()
    plans = _rows(ids, funder, np.tile(np.array(["0.3000", "0.7000"]), k.shape[0]))
    fen = np.stack([bal - bank_fen, bank_fen], axis=1).ravel()
    positions = _rows(ids, funder, fen, np.tile(np.array([3000, 7000]), k.shape[0]))
    return plans, positions


def build_book(engine: Engine, n: int, seed: int = 7) -> float:
    """Write the synthetic month-end book; returns seconds taken."""
    started = time.perf_counter()
    b = _book(n, seed)
    created = datetime.now(UTC).isoformat()
    SqlFunding(engine).import_builtin()
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        _insert(engine, "loans", _LOAN_COLUMNS, _loan_rows(b, lo, hi, created))
        _insert(engine, "installments", _INSTALLMENT_COLUMNS, _installment_rows(b, lo, hi))
        _insert(engine, "loan_month_ends", _PANEL_COLUMNS, _panel_rows(b, lo, hi))
        plans, positions = _funding_rows(b, lo, hi)
        _insert(engine, "funding_plans", ("loan_id", "funder_id", "share"), plans)
        _insert(engine, "funder_positions", ("loan_id", "funder_id", "principal_fen",
                                             "share_units"), positions)  # fmt: skip
    _ledger_and_calendar(engine, int(b["balance"].sum()), created)
    return time.perf_counter() - started


def _ledger_and_calendar(engine: Engine, principal_fen: int, created: str) -> None:
    opening = MONTH_END.replace(day=1) - timedelta(days=1)
    _insert(engine, "journal_entries", ("id", "event", "business_date", "reference",
                                        "created_at"),
            [(1, "opening", opening.isoformat(), "opening:bench", created)])  # fmt: skip
    _insert(engine, "journal_lines", ("entry_id", "account", "debit_fen", "credit_fen"),
            [(1, "1301", principal_fen, 0), (1, "1001", 0, principal_fen)])  # fmt: skip
    days = [(MONTH_END.replace(day=d).isoformat(),) for d in range(1, MONTH_END.day + 1)]
    _insert(engine, "cob_steps", ("step", "business_date", "rows", "completed_at"),
            [("closed", d, 0, created) for (d,) in days])  # fmt: skip
    stages = (int(principal_fen * 0.004), int(principal_fen * 0.002), int(principal_fen * 0.01))
    _insert(engine, "ecl_runs", (
        "as_of", "config_id", "config_sha256", "matrix_sha256", "result_sha256", "loans",
        "ead_fen", "total_fen", "stage1_fen", "stage2_fen", "stage3_fen", "stage1_loans",
        "stage2_loans", "stage3_loans", "summary_json", "created_at"), [(
        MONTH_END.isoformat(), "bench", "0" * 64, "", "0" * 64, 0, principal_fen, sum(stages),
        *stages, 0, 0, 0, "{}", created)])  # fmt: skip


def time_report(engine: Engine, out: Path, settings: Settings) -> dict[str, float]:
    """The CLI's steps, timed: period, inputs (SQL), tables, files."""
    from lendstack.storage.model_monitoring import monitoring_tables

    marks = {"start": time.perf_counter()}
    period = resolve_period(engine, MONTH_END.strftime("%Y-%m"))
    inputs = load_inputs(
        engine, period, default_pack(),
        monitoring=lambda: (monitoring_tables(engine, period.month, period.month_end,
                                              settings=settings), ""),
    )  # fmt: skip
    marks["read"] = time.perf_counter()
    report = build_report(inputs)
    marks["tables"] = time.perf_counter()
    write_directory(out, render_files(report))
    marks["files"] = time.perf_counter()
    t = list(marks.values())
    return {
        "read inputs (SQL + monitoring)": t[1] - t[0], "build tables (APR included)": t[2] - t[1],
        "render + write HTML/CSV/XLSX": t[3] - t[2], "total": t[3] - t[0],
        "loans_on_books": float(report.summary["loans_on_books"]),  # type: ignore[arg-type]
        "reconciled": float(bool(report.summary["reconciled"])),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 loans")
    parser.add_argument("--dir", type=Path, default=None, help="Work directory (default: temp)")
    parser.add_argument(
        "--db", type=Path, default=None,
        help="Keep the book in this SQLite file; an existing file is reused, not rebuilt.",
    )  # fmt: skip
    args = parser.parse_args(argv)
    n = 20_000 if args.quick else args.loans
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        path = args.db or Path(work) / "bench.db"
        url = f"sqlite:///{path}"
        reuse = path.exists()
        engine = make_engine(url)
        migrate(engine)
        built = 0.0 if reuse else build_book(engine, n)
        settings = Settings.from_env().with_database(url)
        result = {"build (not timed)": built, **time_report(engine, Path(work) / "out", settings)}
        engine.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"# {n:,} loans, {platform.machine()} {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, peak RSS {rss:.0f} MiB")  # fmt: skip
    print("| step | seconds |\n|---|---|")
    for key, value in result.items():
        print(f"| {key} | {value:.2f} |")
    print(json.dumps({"loans": n, **result}))
    return result


if __name__ == "__main__":
    main()
