"""The simulator benchmark runs at a tiny size and reports what docs/benchmarks.md records."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_benchmark_smoke(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    from benchmarks.bench_simulation import run  # the repository root: not installed

    line = run(150, 2, "baseline", 1)
    assert (line["borrowers"], line["months"]) == (150, 2)
    assert line["applications"] >= line["loans"] > 0  # type: ignore[operator]
    assert line["payments"] > 0  # type: ignore[operator]
    assert set(line["stages"]) == {"deciding", "servicing", "month-end"}  # type: ignore[call-overload]
