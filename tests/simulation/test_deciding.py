"""Months decided in a side process (`RunConfig(workers=2)`, `simulation.deciding`) make the
same run as months decided first in the run's own process: every table of the database and
every monthly figure, compared by the run fingerprint (benchmarks/fingerprint.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import text

from lendstack.core.errors import ValidationError
from lendstack.simulation import deciding
from lendstack.simulation.deciding import SideProcess
from lendstack.simulation.runner import RunConfig, _noop, _Run, run_scenario
from lendstack.simulation.scenario import load_scenario

pytestmark = pytest.mark.xdist_group("side-process")  # one module-wide run, set up once


@pytest.fixture
def fp(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    import benchmarks.fingerprint  # the repository root: not installed

    return benchmarks.fingerprint


def _fingerprint(fp: ModuleType, tmp: Path, workers: int) -> dict[str, object]:
    # A clampdown that fires at the first month-end: the service (pack and policy) changes
    # mid-run, and the side process must rebuild its own to match.
    base = load_scenario("clampdown")
    scenario = replace(base, clampdown=replace(base.clampdown, npl_threshold=0.0))
    config = RunConfig(borrowers=600, months=4, seed=5, workers=workers)
    result = run_scenario(scenario, config, tmp / f"w{workers}")
    monthly = [json.loads(json.dumps(m.as_json(), default=str)) for m in result.months]
    result.engine.dispose()
    return {
        "run": "clampdown 600x4",
        "monthly": monthly,
        "tables": fp.table_digests(tmp / f"w{workers}" / "lendstack.db"),
    }


@pytest.mark.slow
def test_a_side_process_decides_the_same_run(
    fp: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 2, 4, then 7 rows: each month is many chunks, recorded as taken, day by day."""
    monkeypatch.setattr(deciding, "SIDE_CHUNK", 7)
    monkeypatch.setattr(deciding, "SIDE_FIRST_CHUNK", 2)
    first = _fingerprint(fp, tmp_path, workers=1)
    side = _fingerprint(fp, tmp_path, workers=2)
    events = [e for m in first["monthly"] for e in m["events"]]  # type: ignore[attr-defined]
    assert any(e.startswith("clampdown") for e in events), events
    assert first["tables"]["loans"][0] > 0  # type: ignore[index]
    assert first["tables"]["payments"][0] > 0  # type: ignore[index]
    assert fp.differences(first, side) == []


def test_workers_are_one_or_two() -> None:
    with pytest.raises(ValidationError) as caught:
        RunConfig(workers=3)
    assert caught.value.field == "workers"


@pytest.mark.slow
def test_a_month_with_a_repeat_borrower_is_decided_first_and_exactly(
    set_up: tuple[_Run, SideProcess],
) -> None:
    """Two applications of one borrower in a month, in two chunks: the later one must see the
    earlier in the log, which only the run's process can answer, so the month is decided
    there, in full, before its servicing could write anything (the side process would record
    nothing until its results are taken)."""
    run, side = set_up
    row = run.rendered[2] | {"application_date": "2025-10-03"}
    again = row | {"application_date": "2025-10-04"}
    before = _logged(run)
    results = side.month(run.spec, run.job, [row, again])
    logged = _logged(run) - before
    taken = list(results)
    assert logged == 2
    assert [r.number for r in taken] == [1, 2]
    second = run.service.log.get(taken[1].line["decision_id"])
    assert second is not None
    history = json.loads(second.record_json)["history"]
    assert history["duplicate_of"] == taken[0].line["decision_id"]


@pytest.mark.slow
def test_a_side_process_records_a_month_only_as_it_is_taken(
    set_up: tuple[_Run, SideProcess],
) -> None:
    """The counterpart: distinct borrowers are decided in the side process, and the log holds
    each chunk once the run takes it (so its writes follow the pinned moment)."""
    run, side = set_up
    rows = [run.rendered[i] | {"application_date": "2025-10-03"} for i in (0, 1)]
    before = _logged(run)
    results = side.month(run.spec, run.job, rows)
    counts = [_logged(run) - before]
    for _ in results:
        counts.append(_logged(run) - before)
    assert counts == [0, 1, 2]
    assert side.cpu_seconds > 0


@pytest.fixture(scope="module")
def set_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[_Run, SideProcess]]:
    """A run's database, service and PII key, and a side process deciding one row a chunk."""
    out = tmp_path_factory.mktemp("run")
    run = _Run(load_scenario("baseline"), RunConfig(borrowers=50), out, _noop, ())
    run.setup()
    side = SideProcess(run.spec, chunk_size=1)
    yield run, side
    side.close()
    run.engine.dispose()


def _logged(run: _Run) -> int:
    with run.engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM decision_log")).scalar_one())
