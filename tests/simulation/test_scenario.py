"""Scenario files: every built-in parses, and bad input names the offending field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from lendstack.core.errors import NotFound, ValidationError
from lendstack.simulation import builtin_names, load_scenario, parse_scenario

SHIPPED = {"baseline", "easy-approvals", "income-shock", "tighter-caps", "gold-crash", "clampdown"}


def test_every_shipped_scenario_parses() -> None:
    assert set(builtin_names()) >= SHIPPED
    for name in SHIPPED:
        assert load_scenario(name).name == name


def test_shipped_scenarios_say_what_the_issue_asks() -> None:
    caps = load_scenario("tighter-caps").caps
    assert [(c.from_month, c.apr_max, c.amount_max) for c in caps] == [
        (6, Decimal("0.20"), 100_000)
    ]
    shock = load_scenario("income-shock")
    assert shock.income_factor(5, 4) == 1.0
    assert shock.income_factor(6, 4) == pytest.approx(0.85)
    assert shock.income_factor(6, 1) == 1.0  # tier 1 unaffected
    gold = load_scenario("gold-crash")
    assert gold.gold_index(8) == 1.0
    assert gold.gold_index(9) == pytest.approx(0.75)
    assert load_scenario("clampdown").clampdown is not None
    easy = load_scenario("easy-approvals").policy
    assert easy.max_pd is not None
    assert easy.max_pd > Decimal("0.15")
    assert easy.limit_scale > 1


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('description = "no name"', "name"),
        ('name = "x"\ncolour = "red"', "colour"),
        ('name = "x"\n[demand]\nbase_rte = 0.1', "demand.base_rte"),
        ('name = "x"\n[demand]\nbase_rate = 1.5', "demand.base_rate"),
        ('name = "x"\n[demand]\nbase_rate = "lots"', "demand.base_rate"),
        ('name = "x"\n[policy]\nmax_pd = "abc"', "policy.max_pd"),
        ('name = "x"\n[[caps]]\napr_max = "0.2"', "caps[0].from_month"),
        ('name = "x"\n[[caps]]\nfrom_month = 3', "caps[0].apr_max"),
        ('name = "x"\n[[caps]]\nfrom_month = 0\napr_max = "0.2"', "caps[0].from_month"),
        ('name = "x"\n[[caps]]\nfrom_month = 2\napr_max = "0.9"', "caps[0].apr_max"),
        (
            'name = "x"\n[[income_shocks]]\nfrom_month = 2\nchange = -0.1\ntiers = [5]',
            "income_shocks[0].tiers",
        ),
        ('name = "x"\n[[gold]]\nmonth = 2', "gold[0].change"),
        ('name = "x"\n[clampdown]\napr_max = "0.2"', "clampdown.npl_threshold"),
        ('name = "x"\n[clampdown]\nnpl_threshold = 0.03', "clampdown.apr_max"),
        ('name = "x"\ncaps = 3', "caps"),
        ("name = ", "scenario"),
    ],
)
def test_bad_scenarios_name_the_field(text: str, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_scenario(text, "my.toml")
    assert err.value.field == field
    assert "my.toml" in err.value.message


def test_unknown_scenario_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as err:
        load_scenario("no-such-scenario")
    assert err.value.field == "scenario"
    assert "baseline" in err.value.message
    with pytest.raises(NotFound):
        load_scenario(tmp_path / "missing.toml")


def test_scenario_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\n[behaviour]\nmiss_scale = 2.0\n', encoding="utf-8")
    assert load_scenario(path).behaviour.miss_scale == 2.0
