"""The run fingerprint (benchmarks/fingerprint.py): a seed's whole database is the same run
after run, and the digest sees a changed value but not a changed row order or timestamp."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture
def fp(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    import benchmarks.fingerprint  # the repository root: not installed

    return benchmarks.fingerprint


def _book(path: Path, rows: list[tuple[int, int, str]]) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE lines (id INTEGER, amount_fen INTEGER, created_at TEXT)")
        conn.executemany("INSERT INTO lines VALUES (?, ?, ?)", rows)
    return path


def test_digest_ignores_row_order_and_wall_clock_but_not_values(
    fp: ModuleType, tmp_path: Path
) -> None:
    rows = [(1, 100, "2026-11-29 10:00"), (2, 250, "2026-11-29 10:01")]
    base = fp.table_digests(_book(tmp_path / "a.db", rows))
    reordered = fp.table_digests(_book(tmp_path / "b.db", rows[::-1]))
    later = fp.table_digests(_book(tmp_path / "c.db", [(i, f, "2027-01-01") for i, f, _ in rows]))
    one_fen = fp.table_digests(_book(tmp_path / "d.db", [rows[0], (2, 251, rows[1][2])]))
    assert base == reordered == later
    assert base != one_fen


def test_differences_name_the_table_and_the_month(fp: ModuleType) -> None:
    run = {"scenario": "baseline", "borrowers": 10, "months": 1, "seed": 7}
    a = {"run": run, "tables": {"loans": [3, "x"]}, "monthly": [{"npl_ratio": 0.01}], "cpu_s": 1}
    b = {"run": run, "tables": {"loans": [3, "y"]}, "monthly": [{"npl_ratio": 0.02}], "cpu_s": 1}
    assert fp.differences(a, a) == []
    found = fp.differences(a, b)
    assert any(line.startswith("table loans") for line in found)
    assert any(line.startswith("month 1 npl_ratio") for line in found)


@pytest.mark.slow
def test_a_seed_gives_the_same_database_twice(fp: ModuleType) -> None:
    """Stronger than metrics.json being the same: every table's every kept value."""
    first = fp.fingerprint("gold-crash", 400, 4, seed=11)
    again = fp.fingerprint("gold-crash", 400, 4, seed=11)
    assert first["tables"]["payments"][0] > 0
    assert first["tables"]["journal_lines"][0] > 0
    assert fp.differences(first, again) == []
