"""Stock measures (delinquency and NPL ratios by dimension) and first-payment default."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendstack.core.errors import ValidationError
from lendstack.risk.panel import State, class_of_dpd, loan_rows, panel_frame
from lendstack.risk.stock import Dimension, fpd_by_cohort, stock_history, stock_measures
from lendstack.risk.synthetic_panel import PanelSpec, Spike, generate_panel

FEB, MAR = date(2024, 2, 1), date(2024, 3, 31)


def held(
    loan_id: int, dpd: int, balance: int, risk_class: str | None, **dims: str
) -> list[dict[str, Any]]:
    """A loan current in February and at `dpd` on 2024-03-31, with a fixed balance."""
    classes = ["normal", risk_class or class_of_dpd(dpd)]
    return loan_rows(loan_id, FEB, [0, dpd], principal_fen=balance, risk_classes=classes, **dims)


def stock_panel() -> pl.DataFrame:
    a, b = {"product_id": "A"}, {"product_id": "B"}
    plat, bank = {"funder": "platform"}, {"funder": "bank-x"}
    zj, gd = {"province": "Zhejiang"}, {"province": "Guangdong"}
    mall, sup = {"channel": "mall-app"}, {"channel": "super-app"}
    return panel_frame(
        [
            *held(1, 0, 100_000, None, **a, **plat, **zj, **mall),
            *held(2, 45, 200_000, None, **a, **bank, **gd, **sup),  # special mention
            *held(3, 100, 300_000, None, **b, **bank, **zj, **mall),  # substandard by DPD
            *held(4, 0, 400_000, "substandard", **b, **plat, **gd, **mall),  # downgraded at 0 DPD
            *held(5, 160, 500_000, "doubtful", **a, **plat, **zj, **sup),
            *held(6, 200, 600_000, "loss", **b, **bank, **zj, **mall),
            *loan_rows(
                7, FEB, [150], exit_state=State.CHARGED_OFF, exit_dpd=180, principal_fen=700_000
            ),
            *loan_rows(8, FEB, [0], exit_state=State.PAID_OFF, principal_fen=800_000),
        ]
    )


def row(measures: Any, dimension: Dimension | None, value: str = "all") -> dict[str, Any]:
    rows = measures.rows(dimension).filter(pl.col("value") == value).to_dicts()
    assert len(rows) == 1
    return dict(rows[0])


def test_total_ratios_by_hand() -> None:
    # On the books on 2024-03-31: loans 1-6 (7 was charged off, 8 paid off that month).
    # Balance 1,000+2,000+3,000+4,000+5,000+6,000 = 21,000.00; NPL = loans 3, 4, 5, 6 =
    # 18,000.00 (loan 4 by its class, at 0 DPD); 30+ = loans 2, 3, 5, 6; 90+ = loans 3, 5, 6.
    total = row(stock_measures(stock_panel()), None)
    assert total["loans"] == 6
    assert total["balance_fen"] == 2_100_000
    assert total["npl_fen"] == 1_800_000
    assert total["substandard_fen"] == 700_000
    assert total["doubtful_fen"] == 500_000
    assert total["loss_fen"] == 600_000
    assert total["npl_ratio"] == pytest.approx(18 / 21)
    assert total["dpd1_ratio"] == pytest.approx(16 / 21)
    assert total["dpd30_ratio"] == pytest.approx(16 / 21)
    assert total["dpd90_ratio"] == pytest.approx(14 / 21)


@pytest.mark.parametrize(
    ("dimension", "value", "balance", "npl"),
    [
        (Dimension.PRODUCT, "A", 800_000, 500_000),  # loans 1, 2, 5
        (Dimension.PRODUCT, "B", 1_300_000, 1_300_000),  # loans 3, 4, 6
        (Dimension.FUNDER, "platform", 1_000_000, 900_000),  # loans 1, 4, 5
        (Dimension.FUNDER, "bank-x", 1_100_000, 900_000),  # loans 2, 3, 6
        (Dimension.PROVINCE, "Zhejiang", 1_500_000, 1_400_000),  # loans 1, 3, 5, 6
        (Dimension.PROVINCE, "Guangdong", 600_000, 400_000),  # loans 2, 4
        (Dimension.CHANNEL, "mall-app", 1_400_000, 1_300_000),  # loans 1, 3, 4, 6
        (Dimension.CHANNEL, "super-app", 700_000, 500_000),  # loans 2, 5
    ],
)
def test_ratios_by_dimension_by_hand(
    dimension: Dimension, value: str, balance: int, npl: int
) -> None:
    part = row(stock_measures(stock_panel()), dimension, value)
    assert (part["balance_fen"], part["npl_fen"]) == (balance, npl)
    assert part["npl_ratio"] == pytest.approx(npl / balance)


def test_an_earlier_month_end_and_the_history() -> None:
    # 2024-02-29: all eight loans on the books; only loan 7 (150 DPD) is non-performing.
    february = row(stock_measures(stock_panel(), date(2024, 2, 29)), None)
    assert february["balance_fen"] == 2_100_000 + 700_000 + 800_000
    assert february["npl_ratio"] == pytest.approx(7 / 36)
    history = stock_history(stock_panel())
    assert history["month_end"].to_list() == [date(2024, 2, 29), MAR]
    assert history["npl_ratio"].to_list() == pytest.approx([7 / 36, 18 / 21])
    by_product = stock_history(stock_panel(), Dimension.PRODUCT)
    # Loans 7 and 8 carry the example product; both are gone by March.
    assert by_product.select("month_end", "product_id").rows() == [
        (date(2024, 2, 29), "A"), (date(2024, 2, 29), "B"),
        (date(2024, 2, 29), "cash-loan-installment"), (MAR, "A"), (MAR, "B"),
    ]  # fmt: skip


def test_json_gives_money_as_decimal_strings_and_ratios_as_floats() -> None:
    doc = stock_measures(stock_panel()).as_json()
    total = doc["rows"][0]
    assert doc["month_end"] == "2024-03-31"
    assert total["balance"] == "21000.00"
    assert total["npl"] == "18000.00"
    assert isinstance(total["npl_ratio"], float)
    assert "balance_fen" not in total


@given(st.integers(0, 10_000), st.booleans())
@settings(max_examples=15)
def test_each_dimension_adds_up_to_the_total(seed: int, spiked: bool) -> None:
    spikes = (Spike(date(2024, 3, 1), 4.0),) if spiked else ()
    panel = generate_panel(
        PanelSpec(cohorts=6, loans_per_cohort=150, months=9, seed=seed, spikes=spikes)
    )
    measures = stock_measures(panel)
    total = row(measures, None)
    summed = ["loans", "balance_fen", "dpd1_fen", "dpd30_fen", "dpd90_fen", "npl_fen"]
    for dimension in Dimension:
        parts = measures.rows(dimension)
        for column in summed:
            assert parts[column].sum() == total[column], (dimension, column)
    table = measures.table
    assert (
        table["npl_fen"] == table["substandard_fen"] + table["doubtful_fen"] + table["loss_fen"]
    ).all()
    ratios = table.filter(pl.col("balance_fen") > 0)
    assert ((ratios["npl_ratio"] - ratios["npl_fen"] / ratios["balance_fen"]).abs() < 1e-15).all()


def test_wrong_input_is_named() -> None:
    with pytest.raises(ValidationError) as info:
        stock_measures(stock_panel().with_columns(pl.col("principal_fen").cast(pl.Float64)))
    assert info.value.field == "principal_fen"
    with pytest.raises(ValidationError) as info:
        fpd_by_cohort(stock_panel().drop("first_payment_default"))
    assert info.value.field == "first_payment_default"
    with pytest.raises(ValidationError) as info:
        stock_measures(stock_panel(), thresholds=(0,))
    assert info.value.field == "thresholds"


# --- first-payment default ---------------------------------------------------------------------

JAN, MAY, JUN = date(2024, 1, 1), date(2024, 5, 1), date(2024, 6, 1)


def fpd_panel() -> pl.DataFrame:
    """Observed to 2024-06-30."""
    return panel_frame(
        [
            *loan_rows(1, JAN, [0, 10, 40, 70, 100, 130], fpd_from_mob=2),  # FPD
            *loan_rows(2, JAN, [0, 0, 0, 0, 0, 0]),
            *loan_rows(3, JAN, [0], exit_state=State.PAID_OFF),  # left at MOB 1: outcome known
            *loan_rows(4, JAN, [40, 70], first_mob=4, fpd_from_mob=2),  # left-truncated: excluded
            *loan_rows(5, MAY, [0, 0]),  # MOB 1 at the end: too young to know
            *loan_rows(6, MAY, [0, 31], fpd_from_mob=1),  # flagged early: known
            *loan_rows(7, JUN, [0]),
        ]
    )


def test_fpd_by_cohort_by_hand() -> None:
    result = fpd_by_cohort(fpd_panel())
    assert result.table.rows() == [
        (JAN, 3, 3, 1, 1 / 3),  # loans 1, 2, 3 seasoned; loan 1 defaulted
        (MAY, 2, 1, 1, 1.0),  # only loan 6 is seasoned (by its flag)
        (JUN, 1, 0, 0, None),
    ]
    doc = result.as_json()
    assert doc["seasoning_months"] == 2
    assert doc["cohorts"][0] == {
        "origination_month": "2024-01-01", "loans": 3, "seasoned_loans": 3, "fpd_loans": 1,
        "fpd_rate": 1 / 3,
    }  # fmt: skip


def test_fpd_as_of_an_earlier_month_end() -> None:
    result = fpd_by_cohort(fpd_panel(), as_of=date(2024, 5, 31))
    assert result.table.rows() == [(JAN, 3, 3, 1, 1 / 3), (MAY, 2, 0, 0, None)]
