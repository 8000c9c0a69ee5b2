"""The regulator's feedback loop: past the NPL threshold, tighter rules bind from next month."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lendstack.simulation import RunConfig, parse_scenario, simulate_run

CLAMP_AT_ONCE = """
name = "clamp-now"
[clampdown]
npl_threshold = 0.0   # any NPL ratio, even zero, triggers it at the first month-end
apr_max = "0.15"
amount_max = 20000
"""


def test_clampdown_tightens_from_the_next_month(tmp_path: Path) -> None:
    config = RunConfig(borrowers=400, months=3, seed=5)
    metrics = simulate_run(parse_scenario(CLAMP_AT_ONCE), config, tmp_path / "run")
    events = metrics["summary"]["events"]
    assert [e["month"] for e in events] == [1]
    assert "month 2" in events[0]["event"]
    decisions = pl.read_parquet(tmp_path / "run" / "decisions.parquet")
    granted = decisions.filter(pl.col("outcome").is_in(["APPROVE", "COUNTER_OFFER"]))
    later = granted.filter(pl.col("month") >= 2)
    assert later.height > 0
    assert later["apr_irr"].cast(pl.Float64).max() <= 0.15
    assert later["offer_amount"].cast(pl.Float64).max() <= 20_000
    first = granted.filter(pl.col("month") == 1)
    assert first["apr_irr"].cast(pl.Float64).max() > 0.15  # it did bind: month 1 went higher
    assert (tmp_path / "run" / "rule-pack-clamp-now-1.toml").exists()
