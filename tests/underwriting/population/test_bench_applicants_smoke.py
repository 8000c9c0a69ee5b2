"""benchmarks/bench_applicants.py runs at a tiny size and reports its three figures (the
targets themselves are benchmark figures, in docs/benchmarks.md, not test assertions)."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_benchmark_smoke(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[3]))
    from benchmarks.bench_applicants import run  # the repository root: not installed

    figures = run(500, batches=3)
    assert set(figures) == {"generate_s", "feature_row_us", "seal_us"}
    assert all(value > 0 for value in figures.values())
