"""ECL benchmark: loan-level IFRS 9 expected credit loss over a synthetic book.

Run: `.venv/bin/python -m benchmarks.bench_ecl --loans 1000000 --months 60 --scenarios 3`
(`--quick`: 20,000 loans, a smoke run in seconds). Target (issue 6): 1,000,000 loans over 60
months and 3 scenarios in <= 30 s. Times both PD sources (model 12-month PD; transition
matrix), staging included, and the IFRS 7 roll-forward between two 1M-loan runs. Prints a
markdown table; record it, with the machine and load, in docs/ecl.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import TypeVar

import numpy as np

from lendstack.risk.ecl import EclResult, LoanBook, compute_ecl
from lendstack.risk.ecl_settings import EclConfig, Scenario, default_config, lgd_for_products
from lendstack.risk.pd_curves import TransitionMatrix
from lendstack.risk.rollforward import Movement, RollForward, roll_forward

T = TypeVar("T")
STATES = ("M0", "M1", "M2", "M3", "M4", "M5", "M6+", "paid", "D")
PRODUCTS = np.array(["cash-loan-installment", "huabei-installment", "guaranteed-installment"])
TERMS = np.array([3, 6, 12, 24, 36, 60])
TERM_WEIGHTS = np.array([0.15, 0.2, 0.35, 0.15, 0.1, 0.05])
DPD_CHOICES = np.array([0, 10, 25, 45, 75, 105, 150, 200])
DPD_WEIGHTS = np.array([0.93, 0.02, 0.01, 0.015, 0.01, 0.006, 0.005, 0.004])


def synthetic_matrix() -> TransitionMatrix:
    """Monthly roll rates of a consumer book: M0 -> M1 3 %, then 35-90 % rolls, some cures."""
    k = len(STATES)
    p = np.zeros((k, k))
    p[0, [0, 1, 7]] = [0.95, 0.03, 0.02]
    for i, roll in enumerate((0.35, 0.55, 0.7, 0.8, 0.85, 0.9), start=1):
        p[i, i + 1 if i < 6 else 8] = roll
        p[i, 0] = 0.25 if i < 3 else 0.08
        p[i, i] = 1 - p[i].sum()
    p[7, 7] = p[8, 8] = 1.0
    return TransitionMatrix(STATES, p, "D")


def equal_installment_paths(
    amount: np.ndarray, rate: np.ndarray, term: np.ndarray, age: np.ndarray, months: int
) -> np.ndarray:
    """EAD paths in fen: balance after `age + t` payments plus a month's interest, 0 once paid."""
    r = (rate / 12)[:, None]
    k = age[:, None] + np.arange(months)[None, :]
    growth_n = (1 + r) ** term[:, None]
    balance = amount[:, None] * (growth_n - (1 + r) ** k) / (growth_n - 1)
    ead = np.where(k < term[:, None], balance * (1 + r), 0.0)
    return np.rint(ead).astype(np.int64)


def synthetic_book(n: int, months: int, seed: int = 0, block: int = 100_000) -> LoanBook:
    """A consumer book: CNY 1k-30k, APR 7-24 %, 3-60 month terms, ~3 % 12-month PD."""
    rng = np.random.default_rng(seed)
    amount = rng.integers(1_000, 30_000, n) * 100.0
    rate = rng.uniform(0.07, 0.24, n)
    term = rng.choice(TERMS, n, p=TERM_WEIGHTS)
    age = (rng.random(n) * term).astype(np.int64)
    ead = np.empty((n, months), dtype=np.int64)
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        ead[lo:hi] = equal_installment_paths(
            amount[lo:hi], rate[lo:hi], term[lo:hi], age[lo:hi], months
        )
    dpd = rng.choice(DPD_CHOICES, n, p=DPD_WEIGHTS)
    pd_12m = np.clip(0.03 * rng.lognormal(0.0, 0.8, n), 0.001, 0.99)
    pd12_origination = np.clip(pd_12m * rng.lognormal(0.0, 0.5, n), 0.0005, 0.99)
    return LoanBook(
        loan_id=np.arange(1, n + 1, dtype=np.int64),
        ead_fen=ead,
        eir=rate,
        lgd=lgd_for_products(rng.choice(PRODUCTS, n), default_config()),
        dpd=dpd,
        defaulted=rng.random(n) < 0.002,
        pd_origination=1 - (1 - pd12_origination) ** (term / 12),
        state=np.minimum(-(-dpd // 30), 6).astype(np.int16),
        pd_12m=pd_12m,
    )


def scenario_config(count: int) -> EclConfig:
    """The shipped three scenarios, or `count` scenarios from z = 0 to -2 with equal weights."""
    cfg = default_config()
    if count == 3:
        return cfg
    step = Decimal(1) / count
    weights = [step.quantize(Decimal("0.0001"))] * count
    weights[0] += Decimal(1) - sum(weights)
    zs = np.linspace(0.0, -2.0, count) if count > 1 else [0.0]
    scenarios = tuple(
        Scenario(f"s{i}", w, z=float(z)) for i, (w, z) in enumerate(zip(weights, zs, strict=True))
    )
    return replace(cfg, scenarios=scenarios)


def timed(label: str, fn: Callable[[], T], rows: list[tuple[str, str]]) -> T:
    """Run `fn` once, append its wall time and the load average around it to `rows`."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    rows.append((label, f"{seconds:.2f} s (load {load:.1f} -> {os.getloadavg()[0]:.1f})"))
    return out


def moved_on(result: EclResult, turnover: float, seed: int) -> tuple[EclResult, np.ndarray]:
    """An 'opening' run a month earlier: ids shifted so `turnover` of the book is new or gone,
    stages reshuffled for 5 % of loans, allowances perturbed; and the ids written off."""
    rng = np.random.default_rng(seed)
    n = result.loan_id.shape[0]
    shift = int(n * turnover)
    stage = result.stage.copy()
    moved = rng.random(n) < 0.05
    stage[moved] = rng.integers(1, 4, np.count_nonzero(moved))
    fen = (result.ecl_fen * rng.uniform(0.8, 1.2, n)).astype(np.int64)
    opening = replace(result, loan_id=result.loan_id - shift, stage=stage, ecl_fen=fen)
    gone = opening.loan_id[opening.loan_id < 1]
    return opening, gone[: gone.shape[0] // 3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=60)
    parser.add_argument("--scenarios", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--chunk", type=int, default=None, help="loans per chunk (default: the library's)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke size: 20,000 loans")
    args = parser.parse_args()
    n = 20_000 if args.quick else args.loans
    cfg = scenario_config(args.scenarios)
    chunk = {"chunk": args.chunk} if args.chunk else {}
    rows: list[tuple[str, str]] = []
    book = timed(
        "generate the book (not part of the target)",
        lambda: synthetic_book(n, args.months, args.seed),
        rows,
    )
    rss_inputs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model = timed(
        "ECL, model 12-month PD (staging included)", lambda: compute_ecl(book, cfg, **chunk), rows
    )
    matrix = synthetic_matrix()
    by_matrix = timed(
        "ECL, transition matrix (staging included)",
        lambda: compute_ecl(replace(book, pd_12m=None), cfg, matrix, **chunk),
        rows,
    )
    opening, written_off = moved_on(by_matrix, 0.05, args.seed)
    rf = timed(
        "IFRS 7 roll-forward, two runs (5 % turnover)",
        lambda: roll_forward(opening, by_matrix, written_off),
        rows,
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"\n| {n:,} loans × {args.months} months × {len(cfg.scenarios)} scenarios | value |\n|---|---|"
    )
    for label, value in rows:
        print(f"| {label} | {value} |")
    _report(rss_inputs, book, {"model PD": model, "matrix": by_matrix}, rf)


def _report(
    rss_inputs: float, book: LoanBook, results: dict[str, EclResult], rf: RollForward
) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| EAD input (int64) | {book.ead_fen.nbytes / 2**20:,.0f} MiB |")
    print(f"| peak RSS after generating / at the end | {rss_inputs:,.0f} / {peak:,.0f} MiB |")
    for name, result in results.items():
        stages = ", ".join(
            f"S{int(s)} {fen / 100:,.2f} ({count:,})"
            for s, (fen, count) in result.by_stage().items()
        )
        print(f"| allowance, {name} | CNY {result.total:,} = {stages} |")
    closes = rf.row(Movement.CLOSING).total_fen == results["matrix"].total_fen
    print(f"| roll-forward closes to the closing run | {closes} |")


if __name__ == "__main__":
    main()
