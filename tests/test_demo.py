"""The README's main job, small: it must run on a fresh directory and end with clean books."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from lendstack.cli.main import main


def test_demo_runs_end_to_end_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("LENDSTACK_DATABASE_URL", "LENDSTACK_PII_KEY", "LENDSTACK_PII_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    main(["demo", "--loans", "200", "--days", "5", "--applications", "60", "--seed", "3"])
    out = capsys.readouterr().out
    assert "60 applications decided" in out
    assert "loans, funders and the GL reconcile to the fen" in out
    assert "hash chain intact over 60 records" in out
    assert (tmp_path / "lendstack-demo.db").exists()
    booked = int(re.search(r"([\d,]+) approved offers booked as loans", out)[1])  # type: ignore[index]
    funded = re.search(
        r"co-lending: ([\d,]+) loans funded with partner plans, ([\d,]+) declined", out
    )
    assert funded is not None, out
    assert (int(funded[1]), int(funded[2])) == (booked, 0)  # the sample partners fund them all
    with sqlite3.connect(tmp_path / "lendstack-demo.db") as conn:
        (planned,) = conn.execute("SELECT count(DISTINCT loan_id) FROM funding_plans").fetchone()
    assert booked > 0
    assert planned == booked
    assert (tmp_path / "lendstack-pii.key").stat().st_mode & 0o077 == 0  # owner-only key
