"""`lendstack applicants generate` end to end on a small population."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lendstack.cli.applicants import app
from lendstack.core.errors import ValidationError


def _run(*args: str) -> object:
    return CliRunner().invoke(app, ["generate", *args])


def test_generate_writes_every_file(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _run(
        "--n", "300", "--seed", "3", "--start", "2026-01-15", "--out", str(out), "--format", "json"
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    summary = json.loads(result.output)  # type: ignore[attr-defined]
    assert summary["n"] == 300
    assert 0 < summary["bad_rate"] < 0.3
    assert 0.5 < summary["latent_auc"] <= 1
    apps = (out / "applications.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(apps) == 300
    assert json.loads(apps[0])["application_date"] >= "2026-01-15"
    with (out / "outcomes.csv").open() as fh:
        outcomes = list(csv.DictReader(fh))
    assert [r["row"] for r in outcomes[:3]] == ["0", "1", "2"]
    assert sum(int(r["defaulted"]) for r in outcomes) == round(summary["bad_rate"] * 300)
    labels = json.loads((out / "labels.json").read_text())
    header = (out / "training.csv").read_text().splitlines()[0].split(",")
    assert header == [*labels, "defaulted"]


def test_table_output_prints_bad_rate_and_auc(tmp_path: Path) -> None:
    result = _run("--n", "500", "--out", str(tmp_path / "r"))
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # type: ignore[attr-defined]
    assert "bad rate" in text
    assert "latent-model AUC" in text


def test_refuses_a_non_empty_directory_and_a_bad_date(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    result = _run("--n", "10", "--out", str(tmp_path))
    assert isinstance(result.exception, ValidationError)  # type: ignore[attr-defined]
    assert (tmp_path / "keep.txt").exists()
    assert not (tmp_path / "applications.jsonl").exists()
    result = _run("--n", "10", "--out", str(tmp_path / "new"), "--start", "2026-13-01")
    assert isinstance(result.exception, ValidationError)  # type: ignore[attr-defined]


@pytest.mark.parametrize("n", ["0", "x"])
def test_bad_n_is_a_usage_error(tmp_path: Path, n: str) -> None:
    assert _run("--n", n, "--out", str(tmp_path / "o")).exit_code == 2  # type: ignore[attr-defined]
