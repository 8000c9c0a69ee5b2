"""The `lendstack model` commands end to end, including every bad input the issue lists."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from lendstack.cli.main import main

from .conftest import synthetic_frame


def run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "d.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _bad_inputs(tmp_path: Path) -> dict[str, list[str]]:
    good = synthetic_frame(300, seed=2)
    one_class = good.assign(defaulted=0)
    three = good.assign(defaulted=good["defaulted"].map({0: "paid", 1: "default"}))
    three.loc[:10, "defaulted"] = "late"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    return {
        "missing target": [str(_write(tmp_path, good)), "--target", "nope"],
        "one class": [str(_write(tmp_path, one_class, "one.csv")), "--target", "defaulted"],
        "empty file": [str(empty), "--target", "defaulted"],
        "unreadable": [str(tmp_path / "absent.parquet"), "--target", "defaulted"],
        "three values": [str(_write(tmp_path, three, "three.csv")), "--target", "defaulted"],
    }


@pytest.mark.parametrize(
    "case", ["missing target", "one class", "empty file", "unreadable", "three values"]
)
def test_bad_input_exits_2_and_leaves_nothing(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model"
    code = run(["model", "train", *_bad_inputs(tmp_path)[case], "--out", str(out)])
    assert code == 2
    assert "error" in capsys.readouterr().err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".model")] == []


def test_evaluate_bad_input_exits_2(tmp_path: Path) -> None:
    args = _bad_inputs(tmp_path)["three values"]
    assert run(["model", "evaluate", *args]) == 2


def test_edited_model_is_refused_by_every_command(
    trained: tuple, tmp_path: Path, synthetic_csv: Path
) -> None:
    out, _ = trained
    copy = tmp_path / "edited"
    shutil.copytree(out, copy)
    text = (copy / "logistic.json").read_text().replace('"intercept": ', '"intercept": 1 + ', 1)
    (copy / "logistic.json").write_text(text)
    row = tmp_path / "row.json"
    row.write_text("{}")
    assert run(["model", "explain", str(copy), str(row)]) == 2
    assert (
        run(["model", "score", str(copy), str(synthetic_csv), "--out", str(tmp_path / "s.csv")])
        == 2
    )
    assert not (tmp_path / "s.csv").exists()
    assert run(["model", "monitor", str(copy), "--current", str(synthetic_csv)]) == 2
    report = tmp_path / "r.html"
    assert run(["model", "report", str(copy), "--out", str(report)]) == 2
    assert not report.exists()


def test_score_explain_report_monitor(
    trained: tuple, tmp_path: Path, synthetic_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = trained
    scored = tmp_path / "scored.csv"
    assert (
        run(["model", "score", str(out), str(synthetic_csv), "--out", str(scored), "--reasons"])
        == 0
    )
    table = pd.read_csv(scored)
    assert {"loan_id", "pd", "points", "scorecard_points", "reason_1"} <= set(table.columns)
    assert table["pd"].between(0, 1).all()
    assert table["loan_id"].is_unique

    row = tmp_path / "row.json"
    row.write_text(
        json.dumps({"utilisation": 0.95, "late_payments": 4, "income": 900, "region": "B"})
    )
    capsys.readouterr()
    assert run(["model", "explain", str(out), str(row), "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert 0 < payload["pd"] < 1
    assert payload["reasons"]
    assert payload["reasons"][0]["impact"] > 0

    html = tmp_path / "r.html"
    assert run(["model", "report", str(out), "--out", str(html)]) == 0
    page = html.read_text()
    for needle in ("<svg", "Gains and lift", "Scorecard points", "Fairness", "gender"):
        assert needle in page
    assert "<script src" not in page
    assert "<link" not in page

    capsys.readouterr()
    assert (
        run(["model", "monitor", str(out), "--current", str(synthetic_csv), "--format", "json"])
        == 0
    )
    drift = json.loads(capsys.readouterr().out)
    assert drift["psi"][0]["name"].startswith("score")
    assert all(r["band"] == "stable" for r in drift["psi"])


def test_monitor_flags_a_shifted_population(
    trained: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = trained
    shifted = synthetic_frame(2000, seed=8)
    shifted["utilisation"] = shifted["utilisation"] * 0.3 + 0.7
    path = _write(tmp_path, shifted, "shifted.csv")
    capsys.readouterr()
    assert run(["model", "monitor", str(out), "--current", str(path), "--format", "json"]) == 0
    drift = {r["name"]: r for r in json.loads(capsys.readouterr().out)["psi"]}
    assert drift["utilisation"]["band"] == "shift"
    assert drift["noise"]["band"] == "stable"
    assert drift["score (PD)"]["psi"] > 0.1


@pytest.mark.slow
def test_evaluate_reports_three_models_and_fairness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write(tmp_path, synthetic_frame(800, seed=12))
    capsys.readouterr()
    argv = [
        "model",
        "evaluate",
        str(data),
        "--target",
        "defaulted",
        "--folds",
        "3",
        "--inner-folds",
        "2",
        "--protected",
        "gender",
        "--format",
        "json",
    ]
    assert run(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["rows"] == 800
    assert set(payload["models"]) == {"champion", "scorecard", "logistic"}
    for model in payload["models"].values():
        assert {"auc", "gini", "ks", "brier", "log_loss", "ece"} <= set(model)
        assert model["auc"]["mean"] > 0.6
        assert model["gini"]["mean"] == pytest.approx(2 * model["auc"]["mean"] - 1)
    groups = {row["group"]: row for row in payload["fairness"]}
    assert set(groups) == {"f", "m"}
    assert max(row["air"] for row in groups.values()) == pytest.approx(1.0)
    for row in groups.values():
        assert row["air_low"] <= row["air"] <= row["air_high"]
