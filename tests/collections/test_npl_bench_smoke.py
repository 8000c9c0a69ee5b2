"""A small run of benchmarks/bench_npl.py (SQLite, like the benchmark): its book packages
whole, the tape is sound, and the valuation's IRR check holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from lendstack.storage.db import make_engine, migrate


def test_bench_book_packages_every_loan_and_values_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    from benchmarks import bench_npl as bench  # the repository root: not installed

    engine = make_engine(f"sqlite:///{tmp_path / 'bench.db'}")
    migrate(engine)
    bench.build(engine, 3000)
    marks = bench.run(engine, tmp_path / "out")
    with engine.connect() as conn:
        loans = conn.execute(text("SELECT COUNT(*) FROM loans")).scalar()
        priced = conn.execute(text("SELECT SUM(principal_fen) FROM npl_portfolio_loans")).scalar()
        book = conn.execute(
            text("SELECT SUM(bal_principal) FROM loans WHERE status = 'active'")
        ).scalar()
    assert marks["loans"] == loans == 3000  # every bench loan is an unsecured 次级+ NPL
    assert int(priced or 0) > int(book or 0)  # charged-off principal is in the tape too
    assert marks["irr ok"] == "True"
    assert (tmp_path / "out" / "bench.tape.parquet").exists()
    engine.dispose()
