"""`lendstack decide`, `decisions replay`, `review` through the real entry point."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from lendstack.cli.main import main
from lendstack.storage.db import make_engine
from lendstack.storage.decisions import SqlDecisionLog

EXAMPLE = Path(__file__).parents[2] / "examples" / "application.json"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LENDSTACK_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("LENDSTACK_PII_KEY", base64.b64encode(os.urandom(32)).decode())
    main(["init"])
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_decide_one_prints_the_decision(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "decide", str(EXAMPLE), "--format", "json")
    assert code == 0
    decision = json.loads(out)
    assert decision["outcome"] == "APPROVE"
    assert decision["offer"]["amount"] == "20000.00"


def test_decide_a_bad_file_names_the_field_and_writes_nothing(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = json.loads(EXAMPLE.read_text("utf-8"))
    bad["applicant"]["mobile"] = "12345"
    path = env / "bad.json"
    path.write_text(json.dumps(bad), "utf-8")
    code, _, err = cli(capsys, "decide", str(path))
    assert code == 2
    assert "applicant.mobile" in err
    code, out, _ = cli(capsys, "decisions", "verify", "--format", "json")
    assert code == 0
    assert json.loads(out)["checked"] == 0  # nothing decided, nothing recorded
    engine = make_engine(os.environ["LENDSTACK_DATABASE_URL"])
    assert SqlDecisionLog(engine).rejected_counts()["total"] == 1  # but counted
    code, _, err = cli(capsys, "decide", str(env / "missing.jsonl"))
    assert code == 2
    assert "file" in err


def test_batch_counts_invalid_rows_and_replay_agrees(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = json.loads(EXAMPLE.read_text("utf-8"))
    second = json.loads(json.dumps(good))
    second["applicant"]["resident_id"] = "11010519491231002X"
    second["loan"]["purpose"] = "speculation"
    broken = json.loads(json.dumps(good))
    broken["loan"]["amount"] = "-1"
    path = write_jsonl(env / "apps.jsonl", [good, second, broken])
    results = env / "out.jsonl"
    code, out, _ = cli(capsys, "decide", str(path), "--out", str(results), "--format", "json")
    assert code == 0
    assert json.loads(out)["outcomes"] == {"APPROVE": 1, "DECLINE": 1, "INVALID": 1}
    rows = [json.loads(line) for line in results.read_text("utf-8").splitlines()]
    assert rows[2]["errors"][0]["field"] == "loan.amount"
    code, out, _ = cli(
        capsys,
        "decisions",
        "replay",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
        "--format",
        "json",
    )
    assert code == 0
    assert json.loads(out) == {"checked": 2, "differences": 0, "details": []}
    code, out, _ = cli(
        capsys,
        "decisions",
        "replay",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
        "--rules",
        "cn-2024-07",
        "--format",
        "json",
    )
    assert code == 0
    assert json.loads(out)["applications"] == 2


def test_review_queue_round_trip(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refused = json.loads(EXAMPLE.read_text("utf-8"))
    refused["consents"]["automated_decision"] = False
    path = env / "refer.json"
    path.write_text(json.dumps(refused), "utf-8")
    _, out, _ = cli(capsys, "decide", str(path), "--format", "json")
    decision_id = json.loads(out)["decision_id"]
    _, out, _ = cli(capsys, "review", "list", "--format", "json")
    assert [r["decision_id"] for r in json.loads(out)] == [decision_id]
    code, _, err = cli(capsys, "review", "resolve", decision_id, "--outcome", "MAYBE", "--by", "x")
    assert code == 2
    assert "--outcome" in err
    code, _, _ = cli(
        capsys, "review", "resolve", decision_id, "--outcome", "DECLINE", "--by", "staff-7"
    )
    assert code == 0
    _, out, _ = cli(capsys, "review", "list", "--format", "json")
    assert json.loads(out) == []
    code, _, _ = cli(
        capsys, "review", "resolve", decision_id, "--outcome", "APPROVE", "--by", "staff-8"
    )
    assert code == 4  # already resolved: a conflict
    code, _, _ = cli(capsys, "decisions", "verify")
    assert code == 0


def _flat(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _outcomes(capsys: pytest.CaptureFixture[str], path: Path, out: Path) -> list[str]:
    code, _, err = cli(capsys, "decide", str(path), "--out", str(out))
    assert code == 0, err
    return [json.loads(line)["outcome"] for line in out.read_text("utf-8").splitlines()]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_flat_files_decide_like_jsonl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    import pandas as pd

    from lendstack.underwriting.population import PopulationConfig, generate_population

    apps = list(generate_population(PopulationConfig(seed=23, n=40)).applications())
    key = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("LENDSTACK_PII_KEY", key)
    results = {}
    for kind in ("jsonl", fmt):
        monkeypatch.setenv("LENDSTACK_DATABASE_URL", f"sqlite:///{tmp_path / kind}.db")
        main(["init"])
        path = tmp_path / f"apps.{kind}"
        if kind == "jsonl":
            write_jsonl(path, apps)
        elif kind == "csv":
            pd.DataFrame([_flat(a) for a in apps]).to_csv(path, index=False)
        else:
            pd.DataFrame([_flat(a) for a in apps]).to_parquet(path, index=False)
        results[kind] = _outcomes(capsys, path, tmp_path / f"{kind}.out.jsonl")
    assert len(results["jsonl"]) == 40
    assert results[fmt] == results["jsonl"]
    assert "INVALID" not in results[fmt]


def test_the_shipped_csv_example_decides(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = Path(__file__).parents[2] / "examples" / "applications.csv"
    outcomes = _outcomes(capsys, example, env / "out.jsonl")
    assert len(outcomes) == 10
    assert "INVALID" not in outcomes
