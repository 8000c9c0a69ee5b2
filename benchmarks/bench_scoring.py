"""Scoring benchmarks: training and evaluation time, single-row latency, batch throughput.

Run: `.venv/bin/python -m benchmarks.bench_scoring [--quick]`. Figures go to stdout; record
them, with the machine, in docs/benchmarks.md. `--quick` shrinks the training table and skips
the Taiwan cross-validation, for a smoke run in a minute or two.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lendstack.scoring import (
    PipelineConfig,
    TrainRequest,
    encode_target,
    evaluate_pipeline,
    load_table,
    train_model,
)

TAIWAN = Path(__file__).resolve().parents[1] / "examples" / "data" / "taiwan_credit_default.csv"
TAIWAN_TARGET = "default.payment.next.month"


def synthetic_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """12 feature columns (10 numeric with missing values, 2 categorical) and a target.

    Risk is mostly additive with a step, a kink and one mild interaction, the way credit
    attributes tend to behave; three numeric columns carry no signal.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 10))
    X[rng.uniform(size=X.shape) < 0.03] = np.nan
    channel = rng.choice(["app", "web", "partner", "store"], rows)
    region = rng.choice([f"r{i}" for i in range(12)], rows)
    filled = np.nan_to_num(X)
    z = (
        -1.5
        + filled[:, 0]
        - 0.7 * filled[:, 1]
        + 0.5 * filled[:, 2] * filled[:, 3]
        + 0.4 * np.abs(filled[:, 4])
        + 0.6 * (channel == "partner")
    )
    y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-z))).astype(int)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)])
    frame["channel"], frame["region"], frame["bad"] = channel, region, y
    return frame


def bench_train(rows: int, workdir: Path) -> None:
    data = workdir / "train.parquet"
    synthetic_table(rows).to_parquet(data)
    start = time.perf_counter()
    train_model(TrainRequest(data, "bad", workdir / "synthetic-model"))
    print(f"train {rows:,} rows x 12 columns: {time.perf_counter() - start:.1f} s (target <= 60 s)")


def bench_evaluate() -> None:
    start = time.perf_counter()
    frame = load_table(TAIWAN)
    y = encode_target(frame, TAIWAN_TARGET).y
    result = evaluate_pipeline(frame, y, TAIWAN_TARGET, PipelineConfig(), folds=5)
    took = time.perf_counter() - start
    auc = {k: v["auc"]["mean"] for k, v in result.to_json()["models"].items()}  # type: ignore[index]
    print(f"evaluate Taiwan 5-fold: {took:.1f} s (target <= 120 s); AUC {auc}")


def _latencies(call, rows: list[dict], repeat: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    for row in rows[:200]:
        call(row)
    out = []
    for _ in range(repeat):
        for row in rows:
            start = time.perf_counter_ns()
            call(row)
            out.append(time.perf_counter_ns() - start)
    return np.asarray(out) / 1e6


def bench_single_row(model, frame: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    rows = frame.drop(columns=[TAIWAN_TARGET]).head(2000).to_dict("records")
    for label, reasons in (("with reasons", True), ("without reasons", False)):
        ms = _latencies(lambda r, rs=reasons: model.score_row(r, reasons=rs), rows, 3)
        print(
            f"single row {label}: p50 {np.percentile(ms, 50):.3f} ms, "
            f"p99 {np.percentile(ms, 99):.3f} ms, max {ms.max():.2f} ms (target p99 <= 2 ms)"
        )


def bench_batch(model, frame: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    X = np.vstack([model.spec.encode_frame(frame)] * 5)
    booster = model.champion.booster

    def once(fn) -> float:  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    # Interleaved, best of 7 each: other load on the machine hits both sides alike.
    raw_times, our_times = [], []
    for _ in range(7):
        raw_times.append(once(lambda: booster.predict(X, raw_score=True)))
        our_times.append(once(lambda: model.score_matrix(X)))
    raw, ours = len(X) / min(raw_times), len(X) / min(our_times)
    print(
        f"batch {len(X):,} rows: raw Booster.predict {raw:,.0f} rows/s, "
        f"lendstack score_matrix {ours:,.0f} rows/s = {ours / raw:.0%} (target >= 80%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small table, no Taiwan CV")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bench_train(30_000 if args.quick else 150_000, work)
        if not args.quick:
            bench_evaluate()
        frame = load_table(TAIWAN)
        model = train_model(TrainRequest(TAIWAN, TAIWAN_TARGET, work / "taiwan-model"))
        bench_single_row(model, frame)
        bench_batch(model, frame)


if __name__ == "__main__":
    main()
