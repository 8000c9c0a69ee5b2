"""Monthly retraining: PSI drift, a retrained model judged on held-out loans, the switch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sqlalchemy import create_engine, text

from lendstack.core.dates import add_months
from lendstack.scoring.monitor import band
from lendstack.simulation import RunConfig, parse_scenario, simulate_run
from lendstack.simulation import retrain as rt


def test_psi_of_a_distribution_against_itself_is_zero() -> None:
    scores = np.random.default_rng(1).beta(2, 30, 5_000)
    assert rt.score_psi(scores, scores) == pytest.approx(0.0, abs=1e-12)


def test_psi_by_hand_on_deciles() -> None:
    previous = np.arange(1, 101) / 100  # deciles: 10 bins of 10 values
    current = np.full(100, 0.005)  # all of it in the lowest decile
    # shares: expected 0.1 everywhere; actual 1.0 in bin 0, 0 (floored) elsewhere
    floor = 1e-4
    expected = (1.0 - 0.1) * np.log(1.0 / 0.1) + 9 * (floor - 0.1) * np.log(floor / 0.1)
    assert rt.score_psi(previous, current) == pytest.approx(expected, rel=1e-3)
    assert band(rt.score_psi(previous, current)).value == "shift"


BAD_MARKET = """
name = "bad-market"
[behaviour]
miss_scale = 20.0
cure_rate = 0.0
[collections]
enabled = false
"""


@pytest.mark.slow
def test_retraining_saves_judges_and_switches_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rt, "MATURITY_MONTHS", 3)
    monkeypatch.setattr(rt, "MIN_ROWS", 50)
    monkeypatch.setattr(rt, "MIN_BADS", 4)
    monkeypatch.setattr(rt, "PROMOTE_MARGIN", -1.0)  # always switch: the machinery under test
    out = tmp_path / "run"
    config = RunConfig(borrowers=1_500, months=8, npl_sale=False, retrain=True)
    metrics = simulate_run(parse_scenario(BAD_MARKET), config, out)
    records = [m["model"] for m in metrics["monthly"]]
    assert records[0]["score_psi"] is None  # nothing to compare the first month with
    assert all(r["score_psi"] >= 0 for r in records[1:])
    trained = [(m["month"], m["model"]) for m in metrics["monthly"] if m["model"]["retrained"]]
    assert trained, records
    first = trained[0][1]
    model_dir = out / first["model_dir"]
    assert (model_dir / "manifest.json").is_file()
    assert (model_dir / "feature_map.toml").is_file()
    for key in ("new_auc", "champion_auc", "latent_auc"):
        assert 0.0 <= first[key] <= 1.0
    assert first["train_loans"] + first["holdout_loans"] == first["matured_loans"]
    # the sha each month reports is the model the engine used in that month's decisions
    engine = create_engine(f"sqlite:///{out / 'lendstack.db'}")
    with engine.connect() as conn:
        query = "SELECT record_json FROM decision_log WHERE kind = 'decision' ORDER BY seq"
        rows = conn.execute(text(query)).all()
    engine.dispose()
    used = {json.loads(r[0])["model"]["sha256"] for r in rows}
    assert records[0]["model_sha256"] in used
    switched = [m for m, r in trained if r["switched"]]
    assert switched, trained
    assert switched[0] < config.months, trained  # so later months decide with the new model
    at = switched[0]
    new = dict(trained)[at]
    new_sha = new["new_model_sha256"]
    assert new_sha in used  # later decisions record the retrained model
    assert metrics["monthly"][at]["model"]["model_sha256"] == new_sha
    # and they replay with no difference under that model
    first_day = add_months(config.start, at)
    last_day = add_months(first_day, 1) - timedelta(days=1)
    env = {
        **os.environ,
        "LENDSTACK_DATABASE_URL": f"sqlite:///{out / 'lendstack.db'}",
        "LENDSTACK_PII_KEY_FILE": str(out / "lendstack-pii.key"),
        "LENDSTACK_MODEL_DIR": str(out / new["model_dir"]),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lendstack"), "decisions", "replay", "--from",
         str(first_day), "--to", str(last_day), "--workers", "1", "--format", "json"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["checked"] > 0
    assert report["differences"] == 0


def _month(n: int, model: dict[str, object]) -> dict[str, object]:
    zero = ("originations_amount", "approval_rate", "max_apr", "mean_apr", "dpd30_rate",
            "dpd90_rate", "npl_ratio", "ecl", "income", "partner_share", "losses",
            "funding_cost", "net_income")  # fmt: skip
    return {
        "month": n, **dict.fromkeys(zero, 0.0), "apr_mix": {}, "partner_exposure": {},
        "contacts": 3 * n, "promises": n, "cured": 1, "model": model,
    }  # fmt: skip


def test_report_charts_collections_and_retraining(tmp_path: Path) -> None:
    from lendstack.simulation.report import run_report

    summary = {"scenario": "s", "borrowers": 10, "months": 2, "start": "2025-10-01", "seed": 7,
               "alerts": [], "events": []}  # fmt: skip
    monthly = [
        _month(1, {"score_psi": None}),
        _month(2, {"score_psi": 0.3, "new_auc": 0.7, "champion_auc": 0.6, "latent_auc": 0.8}),
    ]
    html = run_report({"summary": summary, "monthly": monthly}, pl.DataFrame(), tmp_path / "r")
    text_ = html.read_text(encoding="utf-8")
    assert "Collections at each month-end" in text_
    assert "AUC on held-out matured loans" in text_
    assert "PSI of the score distribution" in text_
    plain = [_month(1, {}), _month(2, {})]
    html = run_report({"summary": summary, "monthly": plain}, pl.DataFrame(), tmp_path / "p")
    assert "Model retraining" not in html.read_text(encoding="utf-8")
