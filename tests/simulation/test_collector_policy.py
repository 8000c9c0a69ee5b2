"""The run's garbage-collector policy: off during a month, one collection at its end, and the
caller's collector state given back afterwards, even when the run fails."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from lendstack.simulation import RunConfig, parse_scenario
from lendstack.simulation.metrics import MonthMetrics
from lendstack.simulation.runner import collected_monthly, run_scenario


class _Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_inside_the_block_the_collector_is_off_and_the_setup_frozen(collector_on: None) -> None:
    assert gc.get_freeze_count() == 0
    with collected_monthly() as month_end:
        assert not gc.isenabled()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        # A month's cycles wait for the month-end, which frees them and freezes what lives.
        cycles = [_Cycle() for _ in range(1_000)]
        for _ in range(10_000):
            _Cycle()
        assert gc.get_count()[0] > 10_000
        month_end()
        assert gc.get_count()[0] < 100  # collected
        # The live ones are frozen: in the permanent generation, which `get_objects` leaves
        # out. (Counting frozen objects is no test: frozen objects that other code lets go
        # meanwhile lower the count; seen in CI, 12 fewer.)
        live = {id(c) for c in cycles}
        assert not any(id(o) in live for o in gc.get_objects())
        assert gc.collect() < 1_000  # the dead ones went, the live ones are frozen
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_the_state_is_given_back_on_error_and_a_disabled_collector_stays_off() -> None:
    was = gc.isenabled()
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            with pytest.raises(RuntimeError), collected_monthly():
                raise RuntimeError("a month that fails")
            assert gc.isenabled() is enabled
            assert gc.get_freeze_count() == 0
    finally:
        (gc.enable if was else gc.disable)()


def test_a_callers_frozen_objects_stay_frozen(collector_on: None) -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        # Frozen objects still die by reference counting, which lowers the count (seen: by
        # two, in a full run); the policy must neither freeze more nor unfreeze theirs.
        with collected_monthly() as month_end:
            assert not gc.isenabled()
            month_end()
            assert 0 < gc.get_freeze_count() <= frozen
        assert 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


def test_a_run_decides_and_services_with_the_collector_off_and_gives_it_back(
    tmp_path: Path, collector_on: None
) -> None:
    seen: list[tuple[bool, bool]] = []

    def hook(engine: Engine, month_end: date, metrics: MonthMetrics) -> Any:
        seen.append((gc.isenabled(), gc.get_freeze_count() > 0))
        if len(seen) == 2:
            raise RuntimeError("month 2 fails")

    config = RunConfig(borrowers=200, months=3, npl_sale=False)
    with pytest.raises(RuntimeError, match="month 2 fails"):
        run_scenario(parse_scenario('name = "gc"'), config, tmp_path / "run", hooks=(hook,))
    assert seen == [(False, True), (False, True)]
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
