"""`lendstack rules` through its typer sub-app: JSON contracts and errors from the error tree."""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from lendstack.cli.rules import app
from lendstack.core.errors import NotFound, ValidationError
from lendstack.underwriting.rules import default_pack

runner = CliRunner()


def run_json(*argv: str) -> object:
    result = runner.invoke(app, [*argv, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_list_json_names_every_pack_and_the_default():
    out = run_json("list")
    assert [p["id"] for p in out] == ["cn-2024-07", "cn-2025-10", "cn-2026-tight"]
    assert [p["id"] for p in out if p["default"]] == ["cn-2025-10"]
    assert out[1]["sha256"] == default_pack().sha256


def test_show_json_with_selection_equals_select_plus_the_colending_rules():
    out = run_json("show", "cn-2025-10", "--on", "2026-01-15", "--lender-type", "bank")
    day = date(2026, 1, 15)
    expected = [*default_pack().select(day, "bank").rules, *default_pack().funding_rules(day)]
    assert [r["id"] for r in out["rules"]] == [r.id for r in expected]
    colending = {r["id"]: r for r in out["rules"] if r["kind"].startswith("colending_")}
    assert colending["CN.COLENDING.PARTNER_SHARE_MIN"]["params"] == {"min": "0.30"}
    assert colending["CN.COLENDING.PARTNER_BALANCE_MAX.TIER1"]["source"]["section"].endswith("2.2")
    apr = next(r for r in out["rules"] if r["id"] == "CN.PRICING.MAX_COMPREHENSIVE_APR.BANK")
    assert apr["params"] == {"max": "0.24"}
    assert apr["status"] == "final"
    assert apr["effective_from"] == "2025-10-01"
    assert apr["source"]["doc_no"] == "金规〔2025〕9号"


def test_show_without_filters_lists_every_rule_including_disabled():
    out = run_json("show", "cn-2025-10")
    assert len(out["rules"]) == len(default_pack().rules)
    share = next(r for r in out["rules"] if r["kind"] == "income_share_max")
    assert share["enabled"] is False
    assert share["params"] == {"share": "1/3"}


def test_show_by_date_alone_keeps_every_lender_type():
    out = run_json("show", "cn-2025-10", "--on", "2025-10-29")
    ids = {r["id"] for r in out["rules"]}
    assert "CN.PRICING.MAX_COMPREHENSIVE_APR.BANK" in ids
    assert "CN.PRICING.MAX_COMPREHENSIVE_APR.CFC_GUIDANCE" not in ids  # from 2025-10-30


def test_show_table_and_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(default_pack().text, encoding="utf-8")
    result = runner.invoke(app, ["show", str(path)], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert "CN.POLICY.DTI_MAX" in result.output


def test_diff_json():
    out = run_json("diff", "cn-2025-10", "cn-2026-tight")
    assert out["a"]["id"] == "cn-2025-10"
    assert [(c["rule_id"], c["change"]) for c in out["changes"]] == [
        ("CN.SCENARIO.APR_MAX.TIGHT2026", "added"),
        ("CN.SCENARIO.CREDIT_LINE_MAX.TIGHT2026", "added"),
    ]
    table = runner.invoke(app, ["diff", "cn-2024-07", "cn-2025-10"], terminal_width=250)
    assert table.exit_code == 0
    assert "2024-12-31" in table.output


@pytest.mark.parametrize(
    ("argv", "error", "field"),
    [
        (["show", "cn-1999-01"], NotFound, "pack"),
        (["show", "cn-2025-10", "--lender-type", "cfc"], ValidationError, "--lender-type"),
        (["show", "cn-2025-10", "--on", "15/01/2026"], ValidationError, "--on"),
        (["diff", "cn-2025-10", "missing.toml"], NotFound, "pack"),
    ],
)
def test_errors_come_from_the_error_tree(argv, error, field):
    result = runner.invoke(app, argv)
    assert isinstance(result.exception, error)
    assert result.exception.field == field
