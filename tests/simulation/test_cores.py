"""A pinned run's threads (`simulation.cores`): the run's own on one core, helpers on the rest."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest

from lendstack.simulation.cores import CoreSplit, core_split, pinned
from lendstack.storage.snapshot import ReadAside

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="threads are pinned on Linux with two or more cores only",
)


@pytest.fixture
def split() -> CoreSplit:
    found = core_split()
    assert found is not None
    return found


def test_the_split_gives_the_lowest_core_to_the_run_and_the_rest_to_helpers(
    split: CoreSplit,
) -> None:
    allowed = os.sched_getaffinity(0)
    assert split.own == {min(allowed)}
    assert split.helpers == allowed - split.own


def test_the_run_thread_is_pinned_for_the_block_only(split: CoreSplit) -> None:
    was = os.sched_getaffinity(0)
    with pinned(split):
        assert os.sched_getaffinity(0) == split.own
    assert os.sched_getaffinity(0) == was
    with pytest.raises(RuntimeError), pinned(split):
        raise RuntimeError("a run that fails")
    assert os.sched_getaffinity(0) == was


def test_nothing_is_pinned_without_a_split() -> None:
    was = os.sched_getaffinity(0)
    with pinned(None):
        assert os.sched_getaffinity(0) == was


def test_a_side_process_started_from_the_pinned_thread_moves_to_the_helpers(
    split: CoreSplit,
) -> None:
    """As `SideProcess(on_start=split.pin_helper)` starts it: spawned, with an initializer."""
    with pinned(split), ProcessPoolExecutor(1, get_context("spawn"), split.pin_helper) as pool:
        assert pool.submit(os.sched_getaffinity, 0).result() == split.helpers


def test_the_reads_aside_thread_moves_to_the_helpers(split: CoreSplit, tmp_path: Path) -> None:
    db = tmp_path / "book.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x INTEGER)")
    seen: list[tuple[int, set[int]]] = []

    def on_thread() -> None:
        split.pin_helper()
        seen.append((threading.get_ident(), os.sched_getaffinity(0)))

    with pinned(split):
        aside = ReadAside(f"sqlite:///{db}", on_thread)
        try:
            aside.start([("SELECT COUNT(*) FROM t", {})])
            assert aside.take() == [[(0,)]]
            aside.release()
            assert os.sched_getaffinity(0) == split.own  # the run's thread stayed
        finally:
            aside.close()
    assert seen == [(seen[0][0], split.helpers)]
    assert seen[0][0] != threading.get_ident()


def test_one_core_or_no_affinity_call_means_no_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {3})
    assert core_split() is None
    monkeypatch.delattr(os, "sched_setaffinity")
    assert core_split() is None


_POLARS_IN_A_PINNED_RUN = """
import os
from pathlib import Path
import polars as pl
from lendstack.simulation.cores import core_split, pinned
with pinned(core_split()):
    pl.DataFrame({"x": range(10)}).select(pl.col("x").sum())
pools = [t for t in Path("/proc/self/task").iterdir() if "polars" in (t / "comm").read_text()]
print(len(pools), all(os.sched_getaffinity(int(t.name)) == os.sched_getaffinity(0) for t in pools))
"""


def test_polars_threads_keep_every_core() -> None:
    """Its pool starts before the run's thread is pinned, so a month-end's work spreads; in a
    new process, where nothing has started it yet."""
    ran = subprocess.run(
        [sys.executable, "-c", _POLARS_IN_A_PINNED_RUN], capture_output=True, text=True, check=True
    )
    started, spread = ran.stdout.split()
    assert int(started) > 0  # polars names its pool's threads polars-N
    assert spread == "True"
