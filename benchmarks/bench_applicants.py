"""Applicant-side hot paths: generating a population, one feature-map row, sealing PII.

Run: `.venv/bin/python -m benchmarks.bench_applicants [--n 50000]`. Figures go to stdout;
record them, with the machine and its load, in docs/benchmarks.md. Targets:
- a 50,000-applicant population in ≤ 5 s (the simulator builds one per run);
- one feature-map row (`FeatureMap.row`, done per decision) in ≤ 20 µs;
- sealing one PII field (`PiiVault.seal`, three per decision) in ≤ 200 µs.

Each figure is the best (generation) or the median (rows, seals) of several repeats, since
other work may share the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from lendstack.underwriting.application import Application
from lendstack.underwriting.features import FeatureMap, default_feature_map_path
from lendstack.underwriting.pii import KEY_BYTES, PiiVault
from lendstack.underwriting.population import PopulationConfig, generate_population

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "application.json"


def generation_seconds(n: int, repeats: int = 3) -> float:
    """Best of `repeats` wall-clock seconds to generate `n` applicants."""
    best = float("inf")
    for seed in range(repeats):
        began = time.perf_counter()
        generate_population(PopulationConfig(seed=seed, n=n, start=date(2025, 10, 1)))
        best = min(best, time.perf_counter() - began)
    return best


def median_micros(call: Callable[[], object], batches: int = 50, per_batch: int = 100) -> float:
    """Median over `batches` of the mean µs per call in a batch of `per_batch` calls."""
    times = []
    for _ in range(batches):
        began = time.perf_counter()
        for _ in range(per_batch):
            call()
        times.append((time.perf_counter() - began) / per_batch * 1e6)
    return statistics.median(times)


def run(n: int, batches: int = 50) -> dict[str, float]:
    """The three figures, as `figure -> value` (seconds for generation, µs for the rest)."""
    example = Application.model_validate(json.loads(EXAMPLE.read_text(encoding="utf-8")))
    fmap = FeatureMap.load(default_feature_map_path())
    vault = PiiVault(os.urandom(KEY_BYTES))
    resident_id = example.applicant.resident_id
    return {
        "generate_s": generation_seconds(n),
        "feature_row_us": median_micros(lambda: fmap.row(example), batches),
        "seal_us": median_micros(
            lambda: vault.seal(resident_id, context="bench:resident_id"), batches
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="applicants to generate")
    args = parser.parse_args()
    figures = run(args.n)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"generate {args.n:,} applicants: {figures['generate_s']:.2f} s (target ≤ 5 s at 50k)")
    print(f"feature-map row: {figures['feature_row_us']:.1f} µs (target ≤ 20 µs)")
    print(f"seal one PII field: {figures['seal_us']:.1f} µs (target ≤ 200 µs)")


if __name__ == "__main__":
    main()
