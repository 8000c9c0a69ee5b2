"""Underwriting speed: single decisions, batch decide from a file, and a backtest.

Run: .venv/bin/python -m benchmarks.bench_underwriting [--n N] [--single N] [--workers W] [--quick]

(a) in-process single decisions on a temp SQLite DB: p50/p95/p99 for the engine alone and
    for `Underwriting.decide` (engine + history look-up + record + hash-chained append);
(b) batch `decide` of N generated applications end to end from a JSONL file, recording
    every decision (the `lendstack decide FILE` path);
(c) a backtest of the recorded decisions against the `cn-2026-tight` pack.
Prints a markdown table. Figures depend on the machine's load: run `uptime` alongside.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import tempfile
import time
from datetime import date
from functools import partial
from pathlib import Path

from lendstack.cli.underwriting import rerun_worker, worker_service
from lendstack.settings import Settings
from lendstack.storage.db import make_engine, migrate
from lendstack.storage.decisions import SqlDecisionLog, prepare_entry
from lendstack.underwriting.application import Application
from lendstack.underwriting.batch import BatchJob, decide_rows
from lendstack.underwriting.batch_input import read_rows
from lendstack.underwriting.population import PopulationConfig, generate_population
from lendstack.underwriting.rerun import backtest
from lendstack.wiring import build_engine, underwriting_service


def _settings(directory: Path, name: str) -> Settings:
    key = base64.b64encode(os.urandom(32)).decode()
    return Settings(database_url=f"sqlite:///{directory / name}", pii_key=key)


def _percentiles(samples_us: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(samples_us, n=100, method="inclusive")
    return q[49], q[94], q[98]


def bench_single(directory: Path, n: int) -> list[tuple[str, str, str]]:
    settings = _settings(directory, "single.db")
    sql = make_engine(settings.database_url)
    migrate(sql)
    service = underwriting_service(settings, sql)
    rows = generate_population(PopulationConfig(seed=101, n=n)).applications()
    apps = [Application.model_validate(r) for r in rows]
    warm = generate_population(PopulationConfig(seed=303, n=50)).applications()
    for row in warm:  # warm-up: model, rules, SQLite page cache (other borrowers)
        service.decide(Application.model_validate(row))
    engine_us, full_us = [], []
    for app in apps:
        history = service.history(app, service.vault.borrower_key(app.applicant.resident_id))
        t0 = time.perf_counter_ns()
        service.engine.decide(app, history)
        t1 = time.perf_counter_ns()
        service.decide(app)
        t2 = time.perf_counter_ns()
        engine_us.append((t1 - t0) / 1000)
        full_us.append((t2 - t1) / 1000)
    out = []
    for label, samples in (("engine only", engine_us), ("engine + audit append", full_us)):
        p50, p95, p99 = _percentiles(samples)
        out.append(
            (
                f"single decision, {label} (n={n})",
                f"{p50:.0f} / {p95:.0f} / {p99:.0f} µs",
                "p50 / p95 / p99",
            )
        )
    return out


def bench_batch(
    directory: Path, n: int, workers: int
) -> tuple[list[tuple[str, str, str]], Settings]:
    source = directory / "applications.jsonl"
    t0 = time.perf_counter()
    with source.open("w", encoding="utf-8") as handle:
        for row in generate_population(PopulationConfig(seed=202, n=n)).applications():
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    generated = time.perf_counter() - t0
    settings = _settings(directory, "batch.db")
    sql = make_engine(settings.database_url)
    migrate(sql)
    service = underwriting_service(settings, sql)
    job = BatchJob(service, prepare_entry, partial(worker_service, settings), workers)
    t0 = time.perf_counter()
    decided = sum(1 for _ in decide_rows(read_rows(source), job))
    elapsed = time.perf_counter() - t0
    rows = [
        (f"generate {n:,} applications to JSONL (not timed below)", f"{generated:.1f} s", ""),
        (
            f"batch decide {decided:,} from JSONL, recorded ({workers} workers)",
            f"{elapsed:.1f} s",
            f"{decided / elapsed:,.0f} applications/s; 1M ≈ {1e6 / (decided / elapsed):.0f} s",
        ),
    ]
    return rows, settings


def bench_backtest(settings: Settings, workers: int) -> list[tuple[str, str, str]]:
    sql = make_engine(settings.database_url)
    log = SqlDecisionLog(sql)
    challenger, _ = build_engine(settings, pack="cn-2026-tight")
    factory = partial(rerun_worker, settings, "cn-2026-tight", None)
    service = underwriting_service(settings, sql)
    t0 = time.perf_counter()
    tally = backtest(
        log, service.vault, lambda _r: challenger, date(2000, 1, 1), date(2100, 1, 1),
        workers=workers, factory=factory,
    )  # fmt: skip
    elapsed = time.perf_counter() - t0
    n = tally.total
    return [
        (
            f"backtest {n:,} recorded decisions vs cn-2026-tight ({workers} workers)",
            f"{elapsed:.1f} s",
            f"{n / elapsed:,.0f} decisions/s",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="applications for (b) and (c)")
    parser.add_argument("--single", type=int, default=2_000, help="decisions for (a)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="CI smoke sizes")
    args = parser.parse_args()
    n, single = (3_000, 200) if args.quick else (args.n, args.single)
    with tempfile.TemporaryDirectory(prefix="bench-uw-") as tmp:
        directory = Path(tmp)
        rows = bench_single(directory, single)
        batch_rows, settings = bench_batch(directory, n, args.workers)
        rows += batch_rows + bench_backtest(settings, args.workers)
    print("\n| measure | result | note |\n|---|---|---|")
    for measure, result, note in rows:
        print(f"| {measure} | {result} | {note} |")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f} (1 min), cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
