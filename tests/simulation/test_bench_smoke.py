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


def test_profile_smoke(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    from benchmarks.profile_simulation import STAGES, profile

    from lendstack.storage import cob

    steps = dict(cob.STEP_SQL)
    found = profile(150, 2, (100_000, 24), 180.0, calibration_reps=1)
    units = found["units"]
    assert units["applications"] >= units["loans"] > 0
    assert units["payments"] > 0
    assert units["loan_days"] > units["loans"]
    assert all(found["stages"][name]["cpu_s"] > 0 for name in STAGES)
    assert found["close_steps"]["accrual"] > 0
    months = found["months_detail"]
    assert [m["month"] for m in months] == [1, 2]
    assert all(m["wall_s"] >= m["main_cpu_s"] > 0 and m["waiting_s"] >= 0 for m in months)
    assert found["at"]["times_too_slow"] > 0
    floor = found["floor"]
    side_s = found["stages"]["side process"]["cpu_s"]
    assert floor["all_cpu_s"] == pytest.approx(found["cpu_s"] + side_s, abs=0.1)
    assert found["main_thread_cpu_s"] - 0.1 <= floor["floor_s"] <= found["wall_s"] + 0.1
    assert found["at"]["floor_s"] > 0
    assert steps == cob.STEP_SQL  # the close is left as it was
    for moment in ("before", "after"):
        timed = found["calibration"][moment]
        assert timed["domain_s"] > 0
        assert timed["sqlite_s"] > 0
        assert timed["total_s"] == pytest.approx(timed["domain_s"] + timed["sqlite_s"], abs=0.002)


def test_calibration_does_its_work() -> None:
    """The workload makes schedules and sums rows; a part that did nothing would time ~0."""
    from benchmarks.calibration import domain_work, sqlite_work

    assert domain_work() > 10_000  # installments quoted
    assert sqlite_work() == 40  # 10 x (3 kinds + 1 sum)


def test_close_steps_smoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The close timer closes the next day every repetition and leaves the database as it was."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    from benchmarks.close_steps import measure
    from benchmarks.fingerprint import table_digests

    from lendstack.servicing.cob import STEPS
    from lendstack.simulation.runner import RunConfig, run_scenario
    from lendstack.simulation.scenario import load_scenario
    from lendstack.storage import cob

    result = run_scenario(
        load_scenario("baseline"), RunConfig(borrowers=150, months=2, seed=7, workers=1), tmp_path
    )
    result.engine.dispose()
    db = tmp_path / "lendstack.db"
    before = table_digests(db)
    steps = dict(cob.STEP_SQL)

    found = measure(str(db), reps=2, statements=True)

    assert found["day"] == "2025-12-01"  # the day after the run's last close
    assert found["active_loans"] > 0
    assert list(found["steps_ms"]) == [step.value for step in STEPS]
    assert all(ms >= 0 for ms in found["steps_ms"].values())
    assert {row["step"] for row in found["statements"]} >= {"accrual", "snapshot"}
    assert table_digests(db) == before  # every close was rolled back
    assert steps == cob.STEP_SQL


def test_the_overlap_floor_is_the_longer_of_the_serial_and_the_spread_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    from benchmarks.profile_simulation import overlap_floor

    spread = overlap_floor(main_thread_s=248.0, all_cpu_s=700.0, cores=2)
    assert (spread["floor_s"], spread["bound_by"]) == (350.0, "all CPU")
    serial = overlap_floor(main_thread_s=412.6, all_cpu_s=700.0, cores=2)
    assert (serial["floor_s"], serial["bound_by"]) == (412.6, "main thread")
    assert overlap_floor(10.0, 30.0, 4)["floor_s"] == 10.0
