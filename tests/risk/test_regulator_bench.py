"""Smoke run of the regulator-report benchmark on a tiny synthetic book."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_benchmark_runs_and_its_book_reconciles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    from benchmarks import bench_regulator  # the repository root: not installed

    result = bench_regulator.main(["--loans", "2000", "--dir", str(tmp_path)])
    assert result["loans_on_books"] == 2000
    assert result["reconciled"] == 1.0
    assert result["total"] > 0
