"""Expected credit loss: hand-checked figures, PD term structures, scenarios, exact totals."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr, ndtri

from lendstack.core.errors import NotFound, ValidationError
from lendstack.core.money import Rounding, from_fen
from lendstack.risk import ecl
from lendstack.risk.ecl import LoanBook, compute_ecl
from lendstack.risk.ecl_settings import (
    DiscountBasis,
    EclConfig,
    Scenario,
    default_config,
    lgd_for_products,
    lgd_from_recoveries,
    lgd_from_sale_price,
    load_config,
    parse_config,
)
from lendstack.risk.pd_curves import TransitionMatrix, matrix_pd_curves, monthly_hazard
from lendstack.risk.rollforward import roll_forward
from lendstack.risk.staging import Stage, StagingConfig

BASE_ONLY = EclConfig(scenarios=(Scenario("base", Decimal(1)),), discount=DiscountBasis.NONE)
STATES = ("M0", "M1", "M2", "M3", "M4", "M5", "M6+", "paid", "D")


def delinquency_matrix() -> TransitionMatrix:
    """M0..M6+ rolling forward, some cures, a prepayment exit and an absorbing default."""
    k = len(STATES)
    p = np.zeros((k, k))
    p[0, [0, 1, 7]] = [0.95, 0.03, 0.02]
    rolls = [0.35, 0.55, 0.7, 0.8, 0.85, 0.9]
    for i in range(1, 7):
        p[i, i + 1 if i < 6 else 8] = rolls[i - 1]
        p[i, 0] = 0.25 if i < 3 else 0.08
        p[i, i] = 1 - p[i].sum()
    p[7, 7] = p[8, 8] = 1.0
    return TransitionMatrix(STATES, p, "D")


def amortising_ead(rng: np.random.Generator, n: int, months: int) -> np.ndarray:
    """Padded exposure paths: a balance that falls to 0 at a random remaining term."""
    remaining = rng.integers(1, months + 1, n)
    start = rng.integers(1, 3_000_000, n)
    t = np.arange(months)
    share = np.clip(1.0 - t[None, :] / remaining[:, None], 0.0, 1.0)
    return np.round(start[:, None] * share).astype(np.int64)


def random_book(seed: int, n: int, months: int, *, matrix: bool) -> LoanBook:
    rng = np.random.default_rng(seed)
    dpd = rng.choice([0, 0, 0, 5, 31, 61, 95, 200], n)
    state = np.minimum(-(-dpd // 30), 6).astype(np.int16)
    return LoanBook(
        loan_id=rng.permutation(10 * n + 1)[:n].astype(np.int64),
        ead_fen=amortising_ead(rng, n, months),
        eir=rng.uniform(0.0, 0.3, n),
        lgd=rng.uniform(0.0, 1.0, n),
        dpd=dpd,
        defaulted=rng.random(n) < 0.05,
        pd_origination=rng.uniform(0.0, 0.4, n),
        state=state if matrix else None,
        pd_12m=None if matrix else rng.uniform(0.0, 1.0, n) ** 3,
    )


def one_loan(ead: list[int], **kw) -> LoanBook:
    fields = {
        "loan_id": np.array([1]),
        "ead_fen": np.array([ead], dtype=np.int64),
        "eir": np.array([0.0]),
        "lgd": np.array([0.5]),
        "dpd": np.array([0]),
        "defaulted": np.array([False]),
        "pd_origination": np.array([0.5]),
        "pd_12m": np.array([0.12]),
    }
    fields.update({k: np.array([v]) for k, v in kw.items()})
    return LoanBook(**fields)


# --- configuration -----------------------------------------------------------------------


def test_default_config_is_the_shipped_file() -> None:
    cfg = default_config()
    assert [(s.name, s.weight) for s in cfg.scenarios] == [
        ("base", Decimal("0.6")),
        ("adverse", Decimal("0.3")),
        ("severe", Decimal("0.1")),
    ]
    assert cfg.staging == StagingConfig()
    assert cfg.rounding is Rounding.HALF_UP
    assert cfg.discount is DiscountBasis.EIR
    assert dict(cfg.lgd_by_product)["cash-loan-installment"] == 0.85
    assert math.isclose(cfg.weights.sum(), 1.0)


def test_weights_not_summing_to_one_name_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        EclConfig(scenarios=(Scenario("a", Decimal("0.6")), Scenario("b", Decimal("0.3"))))
    assert err.value.field == "scenarios.weight"
    assert "sum to 1" in err.value.message


def toml_data(**overrides) -> dict:
    data = {
        "id": "t",
        "correlation": Decimal("0.05"),
        "stress_months": 24,
        "scenarios": [
            {"name": "base", "weight": Decimal("0.7")},
            {"name": "down", "weight": Decimal("0.3"), "z": Decimal("-1")},
        ],
        "lgd": {"default": Decimal("0.9")},
    }
    data.update(overrides)
    return data


def test_parse_config_from_toml_data() -> None:
    cfg = parse_config(toml_data(staging={"pd_ratio": Decimal("3")}), "t.toml")
    assert cfg.id == "t"
    assert cfg.scenarios[1] == Scenario("down", Decimal("0.3"), z=-1.0)
    assert cfg.staging.pd_ratio == 3.0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"scenarios": [{"name": "base", "weight": Decimal("0.9")}]}, "scenarios.weight"),
        ({"scenarios": [{"name": "base", "weight": Decimal(1), "zz": 1}]}, "scenarios.0.zz"),
        ({"correlation": Decimal(1)}, "correlation"),
        ({"stress_months": 6}, "stress_months"),
        ({"lgd": {"default": Decimal("1.2")}}, "lgd.default"),
        ({"lgd": {"default": 1, "products": {"x": Decimal(-1)}}}, "lgd.products.x"),
        ({"staging": {"pd_ratio": Decimal("0.5")}}, "staging.pd_ratio"),
        ({"rounding": "sideways"}, "rounding"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_config_errors_name_the_field(overrides, field) -> None:
    with pytest.raises(ValidationError) as err:
        parse_config(toml_data(**overrides), "t.toml")
    assert err.value.field == field


def test_scenario_validation() -> None:
    with pytest.raises(ValidationError, match="pd_multiplier"):
        Scenario("x", Decimal(1), pd_multiplier=0)
    with pytest.raises(ValidationError, match="weight"):
        Scenario("x", Decimal("1.5"))
    with pytest.raises(ValidationError, match="name"):
        EclConfig(scenarios=(Scenario("a", Decimal("0.5")), Scenario("a", Decimal("0.5"))))


# --- scenario shift and PD term structures ----------------------------------------------


def test_vasicek_shift() -> None:
    p = np.array([0.0, 0.01, 0.03, 0.5, 1.0])
    assert np.array_equal(Scenario("base", Decimal(1)).shift(p, 0.05), p)
    k = math.sqrt(0.05 / 0.95)
    expected = ndtr(ndtri(p) + k)
    assert np.allclose(Scenario("adv", Decimal(1), z=-1).shift(p, 0.05), expected)
    assert Scenario("adv", Decimal(1), z=-1).shift(np.array([0.03]), 0.05)[0] == pytest.approx(
        0.0493, abs=1e-4
    )
    doubled = Scenario("x2", Decimal(1), pd_multiplier=2.0).shift(p, 0.05)
    assert np.allclose(doubled, [0.0, 0.02, 0.06, 1.0, 1.0])


def test_monthly_hazard_round_trip() -> None:
    pd12 = np.array([0.0, 0.05, 0.5, 1.0])
    h = monthly_hazard(pd12)
    assert np.allclose(1 - (1 - h) ** 12, pd12)
    assert h[-1] == 1.0


def test_matrix_curves_are_matrix_powers_in_the_base_scenario() -> None:
    tm = delinquency_matrix()
    curves = matrix_pd_curves(tm, BASE_ONLY, 24)
    cum = np.cumsum(curves[0], axis=0)
    for t in (1, 7, 12, 24):
        power = np.linalg.matrix_power(tm.matrix, t)[:, tm.default_index].copy()
        power[tm.default_index] = 0.0  # already in default: nothing more to lose
        assert np.allclose(cum[t - 1], power)
    assert curves[0, :6, 0].sum() == 0.0  # from M0 default takes seven months
    assert np.all(curves[0][:, STATES.index("paid")] == 0.0)


def test_scenario_scales_hazards_to_hit_the_shifted_12_month_pd() -> None:
    tm = delinquency_matrix()
    cfg = default_config()
    curves = matrix_pd_curves(tm, cfg, 60)
    pd12 = curves[:, :12].sum(axis=1)
    for si, sc in enumerate(cfg.scenarios):
        assert np.allclose(pd12[si], sc.shift(pd12[0], cfg.correlation), atol=1e-12)
    assert np.all(np.diff(curves.sum(axis=1)[:, :7], axis=0) > 0)  # worse scenario, higher PD
    assert np.all(curves >= 0)
    assert np.all(curves.sum(axis=1) <= 1 + 1e-12)


def test_matrix_and_model_paths_agree_on_a_constant_hazard() -> None:
    """A two-state matrix with a constant monthly default probability is the model path."""
    h = 0.01
    tm = TransitionMatrix(("M0", "D"), np.array([[1 - h, h], [0.0, 1.0]]), "D")
    rng = np.random.default_rng(3)
    n = 200
    common = {
        "loan_id": np.arange(n),
        "ead_fen": amortising_ead(rng, n, 48),
        "eir": rng.uniform(0, 0.24, n),
        "lgd": np.full(n, 0.8),
        "dpd": np.zeros(n, dtype=np.int64),
        "defaulted": np.zeros(n, dtype=bool),
        "pd_origination": np.full(n, 1e-4),  # every loan lands in stage 2: lifetime figures
    }
    by_matrix = compute_ecl(LoanBook(**common, state=np.zeros(n, dtype=np.int16)), matrix=tm)
    model = LoanBook(**common, pd_12m=np.full(n, 1 - (1 - h) ** 12))
    by_model = compute_ecl(model)
    assert np.all(by_matrix.stage == 2)
    assert np.abs(by_matrix.ecl_fen - by_model.ecl_fen).max() <= 1
    assert np.allclose(by_matrix.lifetime_pd, by_model.lifetime_pd)


# --- figures checked by hand -------------------------------------------------------------


def test_stage_1_twelve_month_ecl_by_hand() -> None:
    ead = [100_000 - 5_000 * t for t in range(18)]
    book = one_loan(ead, pd_origination=0.5)
    result = compute_ecl(book, BASE_ONLY)
    h = 1 - (1 - 0.12) ** (1 / 12)
    marginal = [(1 - h) ** t * h for t in range(18)]
    twelve = 0.5 * sum(marginal[t] * ead[t] for t in range(12))
    life = 0.5 * sum(marginal[t] * ead[t] for t in range(18))
    assert result.stage[0] == 1
    assert result.ecl_12m_fen[0] == math.floor(twelve + 0.5)
    assert result.ecl_lifetime_fen[0] == math.floor(life + 0.5)
    assert result.ecl_fen[0] == result.ecl_12m_fen[0]


def test_eir_discounting_by_hand() -> None:
    ead = [100_000] * 6
    cfg = replace(BASE_ONLY, discount=DiscountBasis.EIR)
    result = compute_ecl(one_loan(ead, eir=0.18, pd_origination=0.01), cfg)
    h = 1 - (1 - 0.12) ** (1 / 12)
    expected = 0.5 * sum((1 - h) ** t * h * 100_000 * 1.18 ** (-(t + 1) / 12) for t in range(6))
    assert result.stage[0] == 2  # lifetime PD 6.2 % >= 2 x 1 %
    assert result.ecl_fen[0] == math.floor(expected + 0.5)


def test_stage_3_is_lgd_times_exposure_now() -> None:
    result = compute_ecl(one_loan([77_777, 50_000, 0], dpd=120, lgd=0.45), default_config())
    assert result.stage[0] == 3
    assert result.ecl_fen[0] == round(0.45 * 77_777)  # 34999.65 -> 35000
    assert result.ecl_12m_fen[0] == result.ecl_lifetime_fen[0] == result.ecl_fen[0]
    assert set(result.scenario_fen[0]) == {35_000}


def test_default_state_of_the_matrix_means_stage_3() -> None:
    tm = delinquency_matrix()
    book = one_loan([10_000, 9_000], state=tm.default_index)
    result = compute_ecl(replace(book, pd_12m=None), matrix=tm)
    assert (result.stage[0], result.causes[0]) == (3, 16)


@pytest.mark.parametrize(
    ("rounding", "fen"),
    [(Rounding.HALF_UP, 1), (Rounding.HALF_EVEN, 0), (Rounding.DOWN, 0), (Rounding.UP, 1)],
)
def test_rounding_mode_is_explicit(rounding, fen) -> None:
    cfg = replace(BASE_ONLY, rounding=rounding)
    result = compute_ecl(one_loan([1, 1], dpd=100, lgd=0.5), cfg)  # 0.5 fen exactly
    assert result.ecl_fen[0] == fen


def test_computed_lifetime_pd_drives_the_ratio_test() -> None:
    book = one_loan([10_000] * 24, pd_origination=0.2)
    result = compute_ecl(book, BASE_ONLY)
    assert result.lifetime_pd[0] == pytest.approx(1 - 0.88**2)
    assert result.stage[0] == 1
    result = compute_ecl(replace(book, pd_origination=np.array([0.1])), BASE_ONLY)
    assert (result.stage[0], result.causes[0]) == (2, 4)  # S2_PD_RATIO
    given_pd = replace(book, pd_origination=np.array([0.1]), pd_now=np.array([0.15]))
    assert compute_ecl(given_pd, BASE_ONLY).stage[0] == 1


# --- properties --------------------------------------------------------------------------


@settings(max_examples=60)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    months=st.integers(1, 30),
    matrix=st.booleans(),
    rounding=st.sampled_from(list(Rounding)),
)
def test_ecl_properties(seed, n, months, matrix, rounding) -> None:
    book = random_book(seed, n, months, matrix=matrix)
    cfg = replace(default_config(), rounding=rounding)
    result = compute_ecl(book, cfg, delinquency_matrix() if matrix else None)
    assert np.all(result.ecl_lifetime_fen >= result.ecl_12m_fen)
    assert np.all(result.ecl_fen >= 0)
    assert np.all(result.ecl_fen <= book.ead_fen.max(axis=1))
    stage1 = result.stage == 1
    assert np.array_equal(result.ecl_fen[stage1], result.ecl_12m_fen[stage1])
    assert np.array_equal(result.ecl_fen[~stage1], result.ecl_lifetime_fen[~stage1])
    # loan level sums exactly to the portfolio, by an independent summation in Decimal
    assert sum((from_fen(int(v)) for v in result.ecl_fen), Decimal(0)) == result.total
    by_stage = result.by_stage()
    assert sum(fen for fen, _ in by_stage.values()) == result.total_fen
    assert sum(count for _, count in by_stage.values()) == n
    assert np.all((result.lifetime_pd >= 0) & (result.lifetime_pd <= 1 + 1e-12))


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), matrix=st.booleans())
def test_worse_scenarios_never_lower_an_amortising_loan(seed, matrix) -> None:
    book = random_book(seed, 50, 36, matrix=matrix)
    result = compute_ecl(book, default_config(), delinquency_matrix() if matrix else None)
    assert np.all(np.diff(result.scenario_fen, axis=1) >= 0)
    w = default_config().weights
    weighted = result.scenario_fen @ w
    assert np.all(np.abs(weighted - result.ecl_fen) <= 1.0)


@pytest.mark.parametrize("matrix", [False, True])
def test_figures_do_not_depend_on_the_chunk_size(matrix) -> None:
    book = random_book(11, 1_001, 60, matrix=matrix)
    tm = delinquency_matrix() if matrix else None
    runs = [compute_ecl(book, matrix=tm, chunk=c) for c in (7, 64, 1_000, 100_000)]
    for other in runs[1:]:
        assert np.array_equal(other.ecl_fen, runs[0].ecl_fen)
        assert np.array_equal(other.scenario_fen, runs[0].scenario_fen)
        assert np.array_equal(other.lifetime_pd, runs[0].lifetime_pd)


# --- output ------------------------------------------------------------------------------


def test_as_json_has_totals_by_stage_and_roll_forward() -> None:
    book = random_book(5, 500, 24, matrix=False)
    result = compute_ecl(book, as_of=date(2026, 6, 30))
    out = json.loads(json.dumps(result.as_json()))
    assert out["as_of"] == "2026-06-30"
    assert isinstance(out["total"], str)
    assert Decimal(out["total"]) == result.total
    assert set(out["by_stage"]) == {"1", "2", "3"}
    assert sum(Decimal(v["amount"]) for v in out["by_stage"].values()) == Decimal(out["total"])
    assert sum(v["loans"] for v in out["by_stage"].values()) == out["loans"] == 500
    assert [s["name"] for s in out["scenarios"]] == ["base", "adverse", "severe"]
    assert "roll_forward" not in out
    later = compute_ecl(random_book(6, 400, 24, matrix=False), as_of=date(2026, 7, 31))
    rf = later.as_json(roll_forward(result, later))["roll_forward"]
    assert rf["movements"]["closing"]["total"] == str(later.total)
    assert rf["movements"]["opening"]["total"] == str(result.total)


def test_by_stage_of_a_known_book() -> None:
    book = LoanBook(
        loan_id=np.array([1, 2, 3]),
        ead_fen=np.array([[1000, 0], [2000, 1000], [3000, 0]]),
        eir=np.zeros(3),
        lgd=np.ones(3),
        dpd=np.array([0, 40, 100]),
        defaulted=np.zeros(3, dtype=bool),
        pd_origination=np.full(3, 0.5),
        pd_12m=np.zeros(3),
    )
    result = compute_ecl(book, BASE_ONLY)
    assert result.by_stage() == {Stage.ONE: (0, 1), Stage.TWO: (0, 1), Stage.THREE: (3000, 1)}
    assert result.total == Decimal("30.00")


# --- helpers and input validation --------------------------------------------------------


def test_lgd_helpers() -> None:
    cfg = default_config()
    products = np.array(["cash-loan-installment", "guaranteed-installment", "unknown"])
    assert lgd_for_products(products, cfg).tolist() == [0.85, 0.45, 0.85]
    assert lgd_from_sale_price(0.05) == pytest.approx(0.95)
    assert lgd_from_sale_price(0.10, cost_ratio=0.2) == pytest.approx(0.92)
    assert lgd_from_recoveries(np.array([100, 300]), np.array([1000, 1000])) == 0.8
    with pytest.raises(ValidationError):
        lgd_from_recoveries(np.array([0]), np.array([0]))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ead_fen": np.array([[1.5, 0.0]])}, "ead_fen"),
        ({"ead_fen": np.array([[-1, 0]])}, "ead_fen"),
        ({"ead_fen": np.array([1, 0])}, "ead_fen"),
        ({"eir": np.array([np.nan])}, "eir"),
        ({"lgd": np.array([1.5])}, "lgd"),
        ({"dpd": np.array([0, 1])}, "dpd"),
        ({"pd_12m": np.array([-0.1])}, "pd_12m"),
        ({"loan_id": np.array([1.0])}, "loan_id"),
    ],
)
def test_book_validation_names_the_field(change, field) -> None:
    with pytest.raises(ValidationError) as err:
        replace(one_loan([10, 5]), **change)
    assert err.value.field == field


def test_duplicate_ids_and_missing_pd_source() -> None:
    with pytest.raises(ValidationError) as err:
        replace(random_book(1, 2, 3, matrix=False), loan_id=np.array([7, 7]))
    assert err.value.field == "loan_id"
    no_pd = replace(one_loan([10]), pd_12m=None)
    with pytest.raises(ValidationError) as err:
        compute_ecl(no_pd)
    assert err.value.field == "pd_12m"
    with pytest.raises(ValidationError) as err:
        compute_ecl(one_loan([10]), matrix=delinquency_matrix())
    assert err.value.field == "state"


def test_transition_matrix_validation() -> None:
    with pytest.raises(ValidationError, match="summing to 1"):
        TransitionMatrix(("a", "D"), np.array([[0.5, 0.4], [0.0, 1.0]]), "D")
    with pytest.raises(ValidationError, match="absorbing"):
        TransitionMatrix(("a", "D"), np.array([[0.5, 0.5], [0.5, 0.5]]), "D")
    with pytest.raises(ValidationError) as err:
        TransitionMatrix(("a", "D"), np.eye(2), "X")
    assert err.value.field == "default_state"
    tm = delinquency_matrix()
    assert tm.index_of(np.array(["M2", "M0", "D"])).tolist() == [2, 0, 8]
    with pytest.raises(ValidationError, match="M9"):
        tm.index_of(np.array(["M9"]))


def test_load_config_from_a_file(tmp_path) -> None:
    shipped = (Path(ecl.__file__).parent / "ecl_config" / "default.toml").read_text("utf-8")
    path = tmp_path / "tight.toml"
    path.write_text(shipped.replace("weight = 0.1", "weight = 0.2"), encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        load_config(path)
    assert err.value.field == "scenarios.weight"
    assert str(path) in err.value.message
    path.write_text(shipped.replace('id = "default"', 'id = "copy"'), encoding="utf-8")
    assert replace(load_config(path), id="default") == default_config()
    with pytest.raises(NotFound):
        load_config(tmp_path / "missing.toml")


def test_an_empty_book() -> None:
    book = LoanBook(
        loan_id=np.zeros(0, dtype=np.int64),
        ead_fen=np.zeros((0, 12), dtype=np.int64),
        eir=np.zeros(0),
        lgd=np.zeros(0),
        dpd=np.zeros(0, dtype=np.int64),
        defaulted=np.zeros(0, dtype=bool),
        pd_origination=np.zeros(0),
        pd_12m=np.zeros(0),
    )
    out = compute_ecl(book).as_json()
    assert out["total"] == "0.00"
    assert out["by_stage"]["2"] == {"amount": "0.00", "loans": 0, "ead": "0.00"}
