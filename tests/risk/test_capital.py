"""IRB retail capital: reference risk weights, floors, defaulted exposures, monotonicity."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate
from scipy.stats import norm

from lendstack.core.errors import ValidationError
from lendstack.risk.capital import (
    BASEL2_PD_FLOOR,
    PRODUCT_ASSET_CLASSES,
    AssetClass,
    asset_class_for,
    capital_requirement,
    correlation,
    pd_floor,
    quarterly_pd,
    risk_weight,
    risk_weighted_assets,
    vasicek_pd,
)

CLASSES = list(AssetClass)


@pytest.mark.parametrize(
    ("asset_class", "expected"),
    [
        (AssetClass.OTHER_RETAIL, 45.77),
        (AssetClass.QUALIFYING_REVOLVING, 17.22),
        (AssetClass.RESIDENTIAL_MORTGAGE, 56.40),
    ],
)
def test_reference_risk_weights_at_pd_1pct_lgd_45pct(
    asset_class: AssetClass, expected: float
) -> None:
    assert round(100 * risk_weight(0.01, 0.45, asset_class), 2) == expected


def test_k_is_the_risk_weight_over_12_5_and_rwa_scales_with_ead() -> None:
    k = capital_requirement(0.01, 0.45, AssetClass.OTHER_RETAIL)
    assert k == pytest.approx(0.4577 / 12.5, abs=1e-5)
    rwa = risk_weighted_assets(1_000_000.0, 0.01, 0.45, AssetClass.OTHER_RETAIL)
    assert rwa == pytest.approx(12.5 * k * 1_000_000.0)


def test_k_matches_the_cre31_formula_written_out() -> None:
    """The implementation goes through `vasicek_pd`; this is CRE31.16 typed in directly."""
    pd, lgd = 0.037, 0.8
    w = (1 - math.exp(-35 * pd)) / (1 - math.exp(-35))
    r = 0.03 * w + 0.16 * (1 - w)
    n = norm.cdf(norm.ppf(pd) / math.sqrt(1 - r) + math.sqrt(r / (1 - r)) * norm.ppf(0.999))
    assert capital_requirement(pd, lgd, AssetClass.OTHER_RETAIL) == pytest.approx(
        lgd * n - pd * lgd
    )


def test_correlations_per_class() -> None:
    assert correlation(AssetClass.RESIDENTIAL_MORTGAGE, 0.2) == 0.15
    assert correlation(AssetClass.QUALIFYING_REVOLVING, 0.2) == 0.04
    assert correlation(AssetClass.OTHER_RETAIL, 0.0) == pytest.approx(0.16)
    assert correlation(AssetClass.OTHER_RETAIL, 1.0) == pytest.approx(0.03)
    assert correlation(AssetClass.OTHER_RETAIL, 0.01) == pytest.approx(0.12161, abs=1e-5)


def test_basel3_pd_floors() -> None:
    """CRE32.58: 0.1 % for QRRE revolvers, 0.05 % for every other retail exposure."""
    assert pd_floor(AssetClass.QUALIFYING_REVOLVING) == 0.001
    assert pd_floor(AssetClass.OTHER_RETAIL) == 0.0005
    assert pd_floor(AssetClass.RESIDENTIAL_MORTGAGE) == 0.0005


@pytest.mark.parametrize("asset_class", CLASSES)
def test_a_pd_below_the_floor_is_charged_at_the_floor(asset_class: AssetClass) -> None:
    floor = pd_floor(asset_class)
    at_floor = capital_requirement(floor, 0.45, asset_class)
    assert capital_requirement(0.0, 0.45, asset_class) == at_floor
    assert capital_requirement(floor / 3, 0.45, asset_class) == at_floor
    assert at_floor > 0


def test_the_floor_can_be_chosen() -> None:
    basel2 = capital_requirement(0.0, 0.45, AssetClass.OTHER_RETAIL, floor=BASEL2_PD_FLOOR)
    assert basel2 == capital_requirement(0.0003, 0.45, AssetClass.OTHER_RETAIL, floor=0)
    assert basel2 < capital_requirement(0.0, 0.45, AssetClass.OTHER_RETAIL)
    assert capital_requirement(0.0, 0.45, AssetClass.OTHER_RETAIL, floor=0) == 0


@pytest.mark.parametrize("asset_class", CLASSES)
def test_defaulted_exposure_needs_no_capital(asset_class: AssetClass) -> None:
    """CRE31.3 with best-estimate EL = LGD: the whole loss is expected, K = 0."""
    assert capital_requirement(1.0, 0.45, asset_class) == 0
    assert risk_weighted_assets(5_000.0, 1.0, 0.45, asset_class) == 0


@pytest.mark.parametrize("asset_class", CLASSES)
def test_k_is_zero_without_loss_given_default(asset_class: AssetClass) -> None:
    assert capital_requirement(0.05, 0.0, asset_class) == 0


@given(
    asset_class=st.sampled_from(CLASSES),
    lgd=st.floats(0.01, 1.0),
    pds=st.lists(st.floats(0.0, 0.25), min_size=2, max_size=12),
)
def test_k_rises_with_pd_up_to_25pct(asset_class: AssetClass, lgd: float, pds: list[float]) -> None:
    """K peaks near PD 29 % (mortgage), 39 % (QRRE), 40 % (other retail), then falls to 0 at 1."""
    ks = [capital_requirement(pd, lgd, asset_class) for pd in sorted(pds)]
    # PDs a few ulps apart may give K a few ulps apart in either direction: float noise only
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(ks))


def test_k_turns_down_at_high_pd_as_the_expected_part_takes_over() -> None:
    other = AssetClass.OTHER_RETAIL
    assert capital_requirement(0.9, 0.45, other) < capital_requirement(0.4, 0.45, other)


@given(
    asset_class=st.sampled_from(CLASSES),
    pd=st.floats(0.0, 1.0),
    lgds=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
)
def test_k_is_proportional_to_lgd(
    asset_class: AssetClass, pd: float, lgds: tuple[float, float]
) -> None:
    low, high = sorted(lgds)
    k_low, k_high = (capital_requirement(pd, lgd, asset_class) for lgd in (low, high))
    assert k_low <= k_high
    assert k_high * low == pytest.approx(k_low * high, abs=1e-12)


def test_k_is_the_vasicek_tail_less_the_expected_loss() -> None:
    pd, lgd, r = 0.02, 0.6, correlation(AssetClass.OTHER_RETAIL, 0.02)
    tail = vasicek_pd(pd, r, norm.ppf(0.001))
    assert capital_requirement(pd, lgd, AssetClass.OTHER_RETAIL) == pytest.approx(lgd * (tail - pd))


@given(
    pd=st.floats(1e-6, 1 - 1e-6),
    r=st.floats(0.0, 0.5),
    zs=st.tuples(st.floats(-6, 6), st.floats(-6, 6)),
    residual=st.floats(0.0, 1.0),
)
def test_vasicek_pd_falls_as_the_factor_improves(
    pd: float, r: float, zs: tuple[float, float], residual: float
) -> None:
    worse, better = sorted(zs)
    assert vasicek_pd(pd, r, worse, residual) >= vasicek_pd(pd, r, better, residual)


@pytest.mark.parametrize(("pd", "r"), [(0.005, 0.16), (0.03, 0.0755), (0.2, 0.04), (0.1, 0.15)])
def test_the_conditional_pd_averages_back_to_pd(pd: float, r: float) -> None:
    """E[PD(Z)] over Z ~ N(0, 1) is PD: the unconditional mean the stress test starts from."""
    mean, _ = integrate.quad(lambda z: vasicek_pd(pd, r, z) * norm.pdf(z), -12, 12, epsabs=1e-13)
    assert mean == pytest.approx(pd, rel=1e-7)


@pytest.mark.parametrize(("mu", "s"), [(0.0, 1.0), (-1.5, 1.0), (-2.3, 0.6), (0.8, 0.3)])
def test_residual_sd_is_the_average_over_a_shifted_factor(mu: float, s: float) -> None:
    """vasicek_pd(pd, R, mu, s) = E[PD(Z)] for Z ~ N(mu, s^2): the closed form is exact."""
    pd, r = 0.03, 0.0755
    mean, _ = integrate.quad(
        lambda e: vasicek_pd(pd, r, mu + s * e) * norm.pdf(e), -12, 12, epsabs=1e-13
    )
    assert vasicek_pd(pd, r, mu, s) == pytest.approx(mean, rel=1e-7)


def test_a_point_reading_at_zero_is_the_median_below_the_mean() -> None:
    assert vasicek_pd(0.03, 0.0755, 0.0, residual_sd=0.0) < 0.03
    assert vasicek_pd(0.03, 0.0755, 0.0, residual_sd=1.0) == pytest.approx(0.03, rel=1e-12)


@given(pd=st.floats(0.0, 1.0))
def test_quarterly_pd_compounds_to_the_annual(pd: float) -> None:
    q = quarterly_pd(pd)
    assert 0 <= q <= pd or pd == 0
    assert 1 - (1 - q) ** 4 == pytest.approx(pd, abs=1e-12)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: capital_requirement(1.5, 0.45, AssetClass.OTHER_RETAIL), "pd"),
        (lambda: capital_requirement(-0.1, 0.45, AssetClass.OTHER_RETAIL), "pd"),
        (lambda: capital_requirement(math.nan, 0.45, AssetClass.OTHER_RETAIL), "pd"),
        (lambda: capital_requirement(0.01, 1.2, AssetClass.OTHER_RETAIL), "lgd"),
        (lambda: risk_weighted_assets(-1.0, 0.01, 0.45, AssetClass.OTHER_RETAIL), "ead"),
        (lambda: vasicek_pd(0.01, 1.0, 0.0), "correlation"),
        (lambda: vasicek_pd(0.01, 0.1, math.inf), "z"),
        (lambda: vasicek_pd(0.01, 0.1, 0.0, residual_sd=2.0), "residual_sd"),
    ],
)
def test_out_of_range_inputs_name_the_argument(call: Callable[[], float], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        call()
    assert err.value.field == field


def test_every_shipped_product_has_an_explicit_asset_class() -> None:
    folder = resources.files("lendstack") / "servicing" / "products"
    shipped = {t.name.removesuffix(".toml") for t in folder.iterdir() if t.name.endswith(".toml")}
    assert shipped <= set(PRODUCT_ASSET_CLASSES)
    assert asset_class_for("huabei-installment") is AssetClass.QUALIFYING_REVOLVING
    assert asset_class_for("cash-loan-installment") is AssetClass.OTHER_RETAIL
    assert asset_class_for("some-new-product") is AssetClass.OTHER_RETAIL
