"""Stress tests: shipped scenarios, severity ordering, the zero-shock identity, bad files."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate
from scipy.stats import norm

from lendstack.core.errors import NotFound, ValidationError
from lendstack.core.jsonvalues import json_default
from lendstack.risk.capital import AssetClass, correlation, vasicek_pd
from lendstack.risk.stress import CapitalBase, Portfolio, Segment, StressResult, run_stress
from lendstack.risk.stress_scenario import (
    QUARTERS,
    FactorModel,
    MacroQuarter,
    Scenario,
    builtin_scenario,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
)

BOOK = Portfolio(
    (
        Segment("cash-loan-installment", 60_000, Decimal("480000000.00"), 0.03, 0.85, grade="B"),
        Segment("cash-loan-installment", 20_000, Decimal("90000000.00"), 0.08, 0.85, grade="D"),
        Segment("huabei-installment", 150_000, Decimal("300000000.00"), 0.02, 0.90),
        Segment("consumer-loan-equal-principal", 10_000, Decimal("200000000.00"), 0.015, 0.70),
    )
)
CAPITAL = CapitalBase(Decimal("130000000.00"), pre_provision_profit_rate=0.06)


def _flat(unemployment: float, income_shock: float = 0.0) -> tuple[MacroQuarter, ...]:
    return tuple(MacroQuarter(q, unemployment, income_shock) for q in range(1, QUARTERS + 1))


def _scenario_text(quarters: list[dict[str, object]], extra: str = "") -> str:
    lines = ['id = "test"', 'name = "Test"', extra]
    for q in quarters:
        lines.append("[[quarters]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in q.items()]
    return "\n".join(lines)


def _quarters() -> list[dict[str, object]]:
    return [{"quarter": q, "unemployment": 5.5, "income_shock": 1.0} for q in range(1, 10)]


# --- the shipped scenarios ---------------------------------------------------------------


def test_three_shipped_scenarios_mildest_first() -> None:
    scenarios = builtin_scenarios()
    assert [s.id for s in scenarios] == ["base", "adverse", "severe"]
    for s in scenarios:
        assert [q.quarter for q in s.quarters] == list(range(1, QUARTERS + 1))
        assert s.sources, f"{s.id} documents no sources"
        assert isinstance(s.quarters[0].unemployment, float)


def test_shipped_macro_paths_are_ordered_quarter_by_quarter() -> None:
    base, adverse, severe = builtin_scenarios()
    for mild, harsh in ((base, adverse), (adverse, severe)):
        for a, b in zip(mild.quarters, harsh.quarters, strict=True):
            assert a.unemployment <= b.unemployment
            assert a.income_shock <= b.income_shock
        assert mild.profit_factor >= harsh.profit_factor
        assert mild.model == harsh.model


def test_base_is_the_book_itself() -> None:
    assert builtin_scenario("base").shifts() == (0.0,) * QUARTERS
    assert min(builtin_scenario("severe").shifts()) == pytest.approx(-2.3)


def test_unknown_builtin_is_not_found() -> None:
    with pytest.raises(NotFound) as err:
        builtin_scenario("apocalypse")
    assert err.value.field == "scenario"
    assert "base" in err.value.message


@pytest.fixture(scope="module")
def results() -> dict[str, StressResult]:
    return {s.id: run_stress(BOOK, s, capital=CAPITAL) for s in builtin_scenarios()}


def test_results_rise_with_severity_at_every_quarter(results: dict[str, StressResult]) -> None:
    runs = [results[i] for i in ("base", "adverse", "severe")]
    for mild, harsh in itertools.pairwise(runs):
        for a, b in zip(mild.quarters, harsh.quarters, strict=True):
            assert a.cumulative_defaults_count < b.cumulative_defaults_count
            assert a.cumulative_defaults_amount < b.cumulative_defaults_amount
            assert a.cumulative_losses < b.cumulative_losses
            assert a.ecl < b.ecl
            assert a.stressed_pd < b.stressed_pd
            assert a.capital > b.capital
            assert a.capital_ratio is not None
            assert b.capital_ratio is not None
            assert a.capital_ratio > b.capital_ratio


def test_severe_scenario_figures_are_of_a_sensible_size(results: dict[str, StressResult]) -> None:
    base, severe = results["base"], results["severe"]
    peak = max(q.stressed_pd for q in severe.quarters)
    assert 2.5 < peak / base.start.stressed_pd < 5  # cf. US cards ~2.7x in 2007-10
    assert severe.min_capital_ratio is not None
    assert severe.min_capital_ratio < 0.12
    assert severe.cumulative_losses > 2 * base.cumulative_losses


def test_every_scenario_starts_from_the_same_position(results: dict[str, StressResult]) -> None:
    starts = {r.start for r in results.values()}
    assert len(starts) == 1
    (start,) = starts
    assert start.ead == sum((s.ead for s in BOOK.segments), Decimal(0))
    assert start.capital == CAPITAL.capital
    assert start.losses == 0


# --- arithmetic that must reconcile to the fen ---------------------------------------------


def test_money_reconciles_to_the_fen(results: dict[str, StressResult]) -> None:
    for result in results.values():
        previous = result.start
        for q in result.quarters:
            assert q.capital == previous.capital - q.losses + q.pre_provision_profit
            assert q.ead == previous.ead - q.defaults_amount
            assert q.cumulative_losses == previous.cumulative_losses + q.losses
            for money in (q.losses, q.ecl, q.rwa, q.ead, q.capital, q.pre_provision_profit):
                assert money.as_tuple().exponent == -2
            previous = q


def test_totals_are_the_sums_of_the_segments(results: dict[str, StressResult]) -> None:
    result = results["severe"]
    for t, q in enumerate(result.quarters, start=1):
        rows = [p.quarters[t] for p in result.segments]
        assert q.losses == sum((r.losses for r in rows), Decimal(0))
        assert q.rwa == sum((r.rwa for r in rows), Decimal(0))
        assert q.ecl == sum((r.ecl for r in rows), Decimal(0))
        assert q.defaults_count == pytest.approx(sum(r.defaults_count for r in rows))


def test_profit_is_earned_on_the_opening_performing_book() -> None:
    result = run_stress(BOOK, builtin_scenario("adverse"), capital=CAPITAL)
    q1 = result.quarters[0]
    expected = float(result.start.ead) * 0.06 / 4 * 0.85
    assert float(q1.pre_provision_profit) == pytest.approx(expected, abs=0.01)


def test_charging_the_ecl_build_lowers_capital_by_the_build() -> None:
    severe = builtin_scenario("severe")
    plain = run_stress(BOOK, severe, capital=CAPITAL)
    ifrs9 = CapitalBase(CAPITAL.capital, CAPITAL.pre_provision_profit_rate, charge_ecl_build=True)
    charged = run_stress(BOOK, severe, capital=ifrs9)
    for a, b in zip(plain.quarters, charged.quarters, strict=True):
        assert b.capital == a.capital - (a.ecl - plain.start.ecl)


def test_result_renders_as_json_with_decimal_strings(results: dict[str, StressResult]) -> None:
    doc = json.loads(json.dumps(results["severe"].to_json(), default=json_default))
    assert doc["scenario"] == "severe"
    assert len(doc["quarters"]) == QUARTERS + 1
    q5 = doc["quarters"][5]
    assert Decimal(q5["losses"]).as_tuple().exponent == -2
    assert Decimal(q5["capital_ratio"]) < Decimal(doc["quarters"][0]["capital_ratio"])
    assert doc["quarters"][0]["factor_shift"] == "0.000000"


# --- the zero-shock identity and the model choices -------------------------------------------


def test_mean_of_the_conditional_pd_over_the_factor_is_the_pd() -> None:
    """The premise of the zero-shock check, numerically: E[PD(Z)] = PD for Z ~ N(0, 1)."""
    for pd in (0.003, 0.02, 0.08, 0.3):
        r = correlation(AssetClass.OTHER_RETAIL, pd)
        mean, _ = integrate.quad(
            lambda z, pd=pd, r=r: vasicek_pd(pd, r, z) * norm.pdf(z), -12, 12, epsabs=1e-13
        )
        assert mean == pytest.approx(pd, rel=1e-7)
        assert vasicek_pd(pd, r, 0.0, residual_sd=1.0) == pytest.approx(mean, rel=1e-7)


def test_zero_shock_reproduces_the_unconditional_expected_loss() -> None:
    calm = Scenario("calm", "No shock", _flat(FactorModel().reference_unemployment))
    result = run_stress(BOOK, calm, capital=CAPITAL)
    for path, segment in zip(result.segments, BOOK.segments, strict=True):
        assert all(q.stressed_pd == pytest.approx(segment.pd, rel=1e-12) for q in path.quarters)
        year = path.quarters[4]
        expected_loss = float(segment.ead) * segment.pd * segment.lgd
        assert float(segment.ead - year.ead) == pytest.approx(
            float(segment.ead) * segment.pd, abs=0.05
        )
        assert float(sum(q.losses for q in path.quarters[1:5])) == pytest.approx(
            expected_loss, abs=0.05
        )
        assert float(path.quarters[0].ecl) == pytest.approx(expected_loss, abs=0.01)


def test_a_point_reading_at_zero_gives_the_median_and_understates_loss() -> None:
    point = Scenario("point", "Point", _flat(5.2), FactorModel(residual_sd=0.0))
    mean = Scenario("mean", "Mean", _flat(5.2))
    assert (
        run_stress(BOOK, point, capital=CAPITAL).cumulative_losses
        < run_stress(BOOK, mean, capital=CAPITAL).cumulative_losses
    )


def test_a_scenario_correlation_overrides_the_basel_one() -> None:
    severe = builtin_scenario("severe")
    tighter = Scenario(
        "severe-tight", "Severe, higher correlation", severe.quarters, severe.model,
        severe.profit_factor, correlations=(("huabei-installment", 0.12),),
    )  # fmt: skip
    plain = run_stress(BOOK, severe, capital=CAPITAL)
    tight = run_stress(BOOK, tighter, capital=CAPITAL)
    huabei = next(p for p in tight.segments if p.product == "huabei-installment")
    assert huabei.correlation == 0.12
    assert tight.cumulative_losses > plain.cumulative_losses
    assert huabei.asset_class is AssetClass.QUALIFYING_REVOLVING


def test_a_defaulted_segment_defaults_at_once_and_holds_no_capital() -> None:
    book = Portfolio((Segment("cash-loan-installment", 10, Decimal("1000.00"), 1.0, 0.6),))
    capital = CapitalBase(Decimal("500.00"), other_rwa=Decimal("1000.00"))
    result = run_stress(book, builtin_scenario("base"), capital=capital)
    q1 = result.quarters[0]
    assert q1.defaults_amount == Decimal("1000.00")
    assert q1.losses == Decimal("600.00")
    assert result.start.rwa == 0
    assert q1.rwa == 0
    assert q1.capital_ratio == pytest.approx(-100 / 1000)


# --- property: a uniformly worse macro path never lowers losses -----------------------------

_path = st.lists(st.floats(3.0, 12.0), min_size=QUARTERS, max_size=QUARTERS)
_shocks = st.lists(st.floats(-5.0, 10.0), min_size=QUARTERS, max_size=QUARTERS)
_ups = st.lists(st.floats(0.0, 4.0), min_size=QUARTERS, max_size=QUARTERS)
_segment = st.builds(
    Segment,
    product=st.sampled_from(["cash-loan-installment", "huabei-installment", "new-product"]),
    count=st.integers(0, 100_000),
    ead=st.integers(0, 10**12).map(lambda fen: Decimal(fen) / 100),
    pd=st.floats(0.0, 0.6),
    lgd=st.floats(0.0, 1.0),
)


@given(
    unemployment=_path, shocks=_shocks, more_unemployment=_ups, more_shock=_ups,
    beta=st.floats(0.0, 1.0), gamma=st.floats(0.0, 0.5), residual=st.floats(0.0, 1.0),
    segments=st.lists(_segment, min_size=1, max_size=3),
)  # fmt: skip
def test_a_uniformly_worse_path_never_lowers_losses(
    unemployment: list[float], shocks: list[float], more_unemployment: list[float],
    more_shock: list[float], beta: float, gamma: float, residual: float, segments: list[Segment],
) -> None:  # fmt: skip
    model = FactorModel(5.2, beta, gamma, residual)
    mild = [
        MacroQuarter(i + 1, u, s) for i, (u, s) in enumerate(zip(unemployment, shocks, strict=True))
    ]
    harsh = [
        MacroQuarter(q.quarter, min(q.unemployment + du, 100.0), q.income_shock + ds)
        for q, du, ds in zip(mild, more_unemployment, more_shock, strict=True)
    ]
    book = Portfolio(tuple(segments))
    base = CapitalBase(Decimal("1000000.00"), 0.05)
    a = run_stress(book, Scenario("mild", "Mild", tuple(mild), model), capital=base)
    b = run_stress(book, Scenario("harsh", "Harsh", tuple(harsh), model), capital=base)
    for x, y in zip(a.quarters, b.quarters, strict=True):
        assert x.cumulative_losses <= y.cumulative_losses
        assert x.cumulative_defaults_amount <= y.cumulative_defaults_amount
        assert x.cumulative_defaults_count <= y.cumulative_defaults_count * (1 + 1e-12) + 1e-9
        assert x.capital >= y.capital


# --- bad input -------------------------------------------------------------------------------


def _error(text: str) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        parse_scenario(text, "bad.toml")
    assert "bad.toml" in err.value.message
    return err.value


def test_a_good_file_parses_and_numbers_become_floats() -> None:
    scenario = parse_scenario(
        _scenario_text(_quarters(), 'correlations = {"huabei-installment" = 0.1}')
    )
    assert scenario.quarters[3] == MacroQuarter(4, 5.5, 1.0)
    assert scenario.correlation_for("huabei-installment") == 0.1
    assert isinstance(scenario.model.unemployment_beta, float)


def test_integers_and_decimals_read_alike() -> None:
    quarters = _quarters()
    quarters[0]["unemployment"] = 6
    text = _scenario_text(quarters)
    as_int = parse_scenario(text).quarters[0].unemployment
    as_decimal = parse_scenario(text.replace("unemployment = 6\n", "unemployment = 6.0\n"))
    assert as_int == as_decimal.quarters[0].unemployment == 6.0


def test_quarters_in_any_order_are_sorted() -> None:
    scenario = parse_scenario(_scenario_text(list(reversed(_quarters()))))
    assert [q.quarter for q in scenario.quarters] == list(range(1, 10))


def test_a_missing_quarter_is_named() -> None:
    quarters = [q for q in _quarters() if q["quarter"] != 4]
    err = _error(_scenario_text(quarters))
    assert err.field == "quarters[4]"
    assert "missing" in err.message


def test_a_duplicated_quarter_is_named() -> None:
    quarters = _quarters()
    quarters[4]["quarter"] = 4
    err = _error(_scenario_text(quarters))
    assert err.field == "quarters[4]"
    assert "2 times" in err.message


def test_a_quarter_missing_its_unemployment_names_the_field() -> None:
    quarters = _quarters()
    del quarters[3]["unemployment"]
    assert _error(_scenario_text(quarters)).field == "quarters[4].unemployment"


@pytest.mark.parametrize("bad", ['"5.2"', "true", "[5.2]", "nan", "inf"])
def test_a_non_number_is_refused_naming_the_field(bad: str) -> None:
    quarters = _quarters()
    text = _scenario_text(quarters).replace(
        "quarter = 4\nunemployment = 5.5", f"quarter = 4\nunemployment = {bad}"
    )
    err = _error(text)
    assert err.field == "quarters[4].unemployment"
    assert "number" in err.message


def test_a_quarter_without_its_number_is_named_by_position() -> None:
    quarters = _quarters()
    del quarters[6]["quarter"]
    assert _error(_scenario_text(quarters)).field == "quarters[#7].quarter"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda q: q[2].update(quarter=10), "quarters[10].quarter"),
        (lambda q: q[2].update(unemployment=150), "quarters[3].unemployment"),
        (lambda q: q[2].update(income_shock=-250), "quarters[3].income_shock"),
        (lambda q: q[2].update(unemployment_rate=5.0), "quarters[3].unemployment_rate"),
        (lambda q: q.clear(), "quarters"),
    ],
)
def test_bad_quarter_values_name_the_field(
    change: Callable[[list[dict[str, object]]], object], field: str
) -> None:
    quarters = _quarters()
    change(quarters)
    assert _error(_scenario_text(quarters)).field == field


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("[model]\nunemployment_beta = -0.5", "model.unemployment_beta"),
        ("[model]\nresidual_sd = 2", "model.residual_sd"),
        ('[model]\nincome_gamma = "high"', "model.income_gamma"),
        ("profit_factor = -1", "profit_factor"),
        ('correlations = {"huabei-installment" = 1.5}', "correlations.huabei-installment"),
        ("colour = 1", "colour"),
    ],
)
def test_bad_parameters_name_the_field(extra: str, field: str) -> None:
    assert _error(_scenario_text(_quarters(), extra)).field == field


def test_missing_quarters_table_and_broken_toml() -> None:
    assert _error('id = "x"\nname = "X"').field == "quarters"
    assert _error('id = "x"\nname = "X"\nquarters = []').field == "quarters[1]"
    assert _error("id = ").field == "file"
    assert (
        _error(_scenario_text(_quarters()).replace('id = "test"', 'id = "Not A Slug"')).field
        == "id"
    )


def test_load_scenario_reads_a_file_and_reports_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(_scenario_text(_quarters()), encoding="utf-8")
    assert load_scenario(path).id == "test"
    assert load_scenario(str(path)).id == "test"
    with pytest.raises(NotFound) as err:
        load_scenario(tmp_path / "absent.toml")
    assert err.value.field == "scenario"


def test_a_bad_file_raises_before_anything_is_built(tmp_path: Path) -> None:
    """Validation is complete before a Scenario exists, so a caller writes nothing on error."""
    path = tmp_path / "gap.toml"
    path.write_text(_scenario_text(_quarters()[:8]), encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        load_scenario(path)
    assert err.value.field == "quarters[9]"
    assert "gap.toml" in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ead": 1000.0}, "ead"),
        ({"ead": Decimal("-1")}, "ead"),
        ({"ead": Decimal("1.001")}, "ead"),
        ({"pd": 1.2}, "pd"),
        ({"lgd": "0.5"}, "lgd"),
        ({"count": True}, "count"),
        ({"product": ""}, "product"),
        ({"asset_class": "corporate"}, "asset_class"),
    ],
)
def test_bad_segments_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {
        "product": "p",
        "count": 1,
        "ead": Decimal("1.00"),
        "pd": 0.1,
        "lgd": 0.5,
    }
    args.update(kwargs)
    with pytest.raises(ValidationError) as err:
        Segment(**args)  # type: ignore[arg-type]
    assert err.value.field == field


def test_segment_accepts_decimal_rates_and_an_explicit_class() -> None:
    """Rates from a Decimal book are accepted and held as floats, like the scenario's numbers."""
    pd, lgd = Decimal("0.02"), Decimal("0.2")
    mortgage = AssetClass("residential-mortgage")
    seg = Segment("mortgage", 1, Decimal("10.00"), pd, lgd, asset_class=mortgage)  # type: ignore[arg-type]
    assert seg.pd == 0.02
    assert isinstance(seg.pd, float)
    assert seg.irb_class is AssetClass.RESIDENTIAL_MORTGAGE


def test_empty_portfolio_and_bad_capital_are_refused() -> None:
    with pytest.raises(ValidationError) as err:
        Portfolio(())
    assert err.value.field == "segments"
    with pytest.raises(ValidationError) as err:
        CapitalBase(Decimal("1.00"), pre_provision_profit_rate=-0.1)
    assert err.value.field == "pre_provision_profit_rate"
    with pytest.raises(ValidationError) as err:
        CapitalBase(100.0)  # type: ignore[arg-type]
    assert err.value.field == "capital"
