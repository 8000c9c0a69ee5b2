"""Vintage curves, the panel contract and the synthetic panel generator."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendstack.core.errors import ValidationError
from lendstack.risk.panel import (
    CLASS_FLOORS,
    PANEL_SCHEMA,
    RISK_CLASSES,
    State,
    loan_rows,
    panel_frame,
    validate_panel,
)
from lendstack.risk.synthetic_panel import PanelSpec, Spike, generate_panel
from lendstack.risk.vintages import vintage_curves
from lendstack.servicing.domain.delinquency import RiskClass, default_profile

JAN, FEB, DEC = date(2024, 1, 1), date(2024, 2, 1), date(2023, 12, 1)
CO, PO = State.CHARGED_OFF, State.PAID_OFF


def hand_panel() -> pl.DataFrame:
    """Two cohorts observed to 2024-05-31, plus one left-truncated loan (no MOB-0 row)."""
    return panel_frame(
        [
            *loan_rows(1, JAN, [0, 10, 40, 70, 100]),  # 30+ at MOB 2, 90+ at MOB 4
            *loan_rows(2, JAN, [0], exit_state=CO, exit_dpd=5),  # fraud write-off at MOB 1
            *loan_rows(3, JAN, [0, 0], exit_state=PO),  # prepaid at MOB 2
            *loan_rows(4, JAN, [0, 0, 0, 0, 0]),
            *loan_rows(5, FEB, [0, 35, 0, 0]),  # 30+ at MOB 1, then cured
            *loan_rows(6, FEB, [0, 0, 0, 0]),
            *loan_rows(7, DEC, [45, 75, 0, 0, 0], first_mob=1),  # history starts late
        ]
    )


def rates(curves: pl.DataFrame, cohort: date, measure: str) -> list[float]:
    rows = curves.filter(pl.col("origination_month") == cohort).sort("months_on_book")
    return rows[f"{measure}_rate"].to_list()


def test_hand_built_panel_gives_the_hand_computed_curves() -> None:
    # Jan cohort, 4 loans: 30+ hits loan 2 (CO counts) at MOB 1 and loan 1 at MOB 2; 90+ hits
    # loan 2 at MOB 1 and loan 1 at MOB 4; only loan 2 is charged off.
    result = vintage_curves(hand_panel())
    assert result.as_of == date(2024, 5, 31)
    assert rates(result.table, JAN, "dpd30") == [0, 1 / 4, 2 / 4, 2 / 4, 2 / 4]
    assert rates(result.table, JAN, "dpd90") == [0, 1 / 4, 1 / 4, 1 / 4, 2 / 4]
    assert rates(result.table, JAN, "charged_off") == [0, 1 / 4, 1 / 4, 1 / 4, 1 / 4]
    # Feb cohort, 2 loans, MOB 0..3: loan 5 reached 35 DPD at MOB 1; curing does not undo it.
    assert rates(result.table, FEB, "dpd30") == [0, 1 / 2, 1 / 2, 1 / 2]
    assert rates(result.table, FEB, "dpd90") == [0, 0, 0, 0]
    # Loan 7 was not observed from origination: no December cohort at all.
    assert result.table["origination_month"].unique().sort().to_list() == [JAN, FEB]
    assert set(result.table.filter(pl.col("origination_month") == JAN)["loans"]) == {4}


def test_as_of_cuts_the_curves() -> None:
    result = vintage_curves(hand_panel(), as_of=date(2024, 3, 31))
    assert rates(result.table, JAN, "dpd30") == [0, 1 / 4, 2 / 4]
    assert rates(result.table, FEB, "dpd30") == [0, 1 / 2]


def test_custom_thresholds_and_the_json_shape() -> None:
    result = vintage_curves(hand_panel(), thresholds=(1, 60))
    assert result.measures == ("dpd1", "dpd60", "charged_off")
    # 1+ DPD in Jan: loan 2 (CO) and loan 1 (10 DPD) at MOB 1.
    assert rates(result.table, JAN, "dpd1")[:2] == [0, 2 / 4]
    doc = result.as_json()
    jan = doc["cohorts"][0]
    assert doc["as_of"] == "2024-05-31"
    assert jan["origination_month"] == "2024-01-01"
    assert jan["loans"] == 4
    assert jan["months_on_book"] == [0, 1, 2, 3, 4]
    assert jan["dpd60"] == [0, 0.25, 0.25, 0.5, 0.5]
    wide = result.curves("dpd60")
    assert wide.columns == ["origination_month", "0", "1", "2", "3", "4"]


def test_parquet_and_string_columns_give_the_same_curves(tmp_path: Path) -> None:
    """A plain SELECT export gives strings, not enums; a Parquet scan must work the same."""
    panel = hand_panel().with_columns(pl.col("state", "risk_class").cast(pl.String))
    path = tmp_path / "panel.parquet"
    panel.write_parquet(path)
    expected = vintage_curves(hand_panel()).table
    assert vintage_curves(pl.scan_parquet(path)).table.equals(expected)


# --- property: cumulative curves never fall and stay nested ---------------------------------

history = st.tuples(
    st.integers(0, 3),  # origination month offset
    st.lists(st.integers(0, 200), min_size=1, max_size=8),  # month-end DPDs
    st.sampled_from([None, CO, PO]),
)


@given(st.lists(history, min_size=1, max_size=25))
@settings(max_examples=60)
def test_curves_are_non_decreasing_and_nested(
    histories: list[tuple[int, list[int], State | None]],
) -> None:
    rows = []
    for loan_id, (offset, dpds, exit_state) in enumerate(histories, start=1):
        cohort = date(2024, 1 + offset, 1)
        rows += loan_rows(loan_id, cohort, dpds, exit_state=exit_state, exit_dpd=dpds[-1])
    table = vintage_curves(panel_frame(rows)).table
    for _, part in table.group_by("origination_month"):
        part = part.sort("months_on_book")
        for measure in ("dpd30", "dpd90", "charged_off"):
            values = part[f"{measure}_rate"].to_numpy()
            assert (np.diff(values) >= 0).all()
            assert ((values >= 0) & (values <= 1)).all()
        assert (part["charged_off_loans"] <= part["dpd90_loans"]).all()
        assert (part["dpd90_loans"] <= part["dpd30_loans"]).all()


def test_a_planted_spike_shows_in_its_cohort() -> None:
    spike = date(2024, 6, 1)
    spec = PanelSpec(cohorts=12, loans_per_cohort=3_000, months=24, spikes=(Spike(spike, 3.0),))
    table = vintage_curves(generate_panel(spec)).table.filter(pl.col("months_on_book") == 6)
    worst = table.sort("dpd30_rate", descending=True)["origination_month"][0]
    assert worst == spike
    others = table.filter(pl.col("origination_month") != spike)["dpd30_rate"].max()
    spiked = table.filter(pl.col("origination_month") == spike)["dpd30_rate"][0]
    assert isinstance(others, float)
    assert spiked > 2 * others


# --- the panel contract ----------------------------------------------------------------------


@pytest.mark.parametrize("column", list(PANEL_SCHEMA))
def test_a_missing_column_is_named(column: str) -> None:
    with pytest.raises(ValidationError) as info:
        vintage_curves(hand_panel().drop(column))
    assert info.value.field == column


@pytest.mark.parametrize(
    ("column", "dtype"),
    [("dpd", pl.Float64), ("month_end", pl.String), ("principal_fen", pl.Float64),
     ("loan_id", pl.String), ("first_payment_default", pl.String)],
)  # fmt: skip
def test_a_wrong_dtype_is_named(column: str, dtype: pl.DataType) -> None:
    with pytest.raises(ValidationError) as info:
        vintage_curves(hand_panel().with_columns(pl.col(column).cast(dtype)))
    assert info.value.field == column


@pytest.mark.parametrize(
    ("column", "values", "named"),
    [
        ("state", pl.col("state").cast(pl.String).replace("M0", "M9"), "state"),
        (
            "risk_class",
            pl.col("risk_class").cast(pl.String).replace("normal", "fine"),
            "risk_class",
        ),
        ("dpd", pl.col("dpd") + 31, "state"),  # the bucket no longer matches the DPD
        ("month_end", pl.col("month_end").dt.offset_by("-1d"), "month_end"),
        ("months_on_book", pl.col("months_on_book") + 1, "months_on_book"),
        ("principal_fen", -pl.col("principal_fen"), "principal_fen"),
        ("origination_month", pl.col("origination_month").dt.offset_by("1d"), "origination_month"),
    ],
)
def test_broken_values_are_named(column: str, values: pl.Expr, named: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_panel(hand_panel().with_columns(values.alias(column)), check_values=True)
    assert info.value.field == named


def test_an_unknown_label_fails_even_without_the_value_check() -> None:
    """A string export with a label outside the enum must not silently drop rows."""
    panel = hand_panel().with_columns(pl.col("state").cast(pl.String).replace("M0", "M7+"))
    with pytest.raises(ValidationError, match="M7") as info:
        vintage_curves(panel)
    assert info.value.field == "state"


def test_a_gap_in_a_loan_history_is_refused() -> None:
    panel = hand_panel().filter(~((pl.col("loan_id") == 4) & (pl.col("months_on_book") == 2)))
    with pytest.raises(ValidationError, match="consecutive") as info:
        validate_panel(panel, check_values=True)
    assert info.value.field == "month_end"


def test_duplicates_and_rows_after_an_exit_are_refused() -> None:
    with pytest.raises(ValidationError, match="more than one row"):
        validate_panel(pl.concat([hand_panel(), hand_panel().head(1)]), check_values=True)
    after_exit = panel_frame(loan_rows(9, JAN, [0], exit_state=PO))
    late = after_exit.tail(1).with_columns(
        pl.lit(date(2024, 3, 31)).alias("month_end"),
        pl.lit(2).cast(pl.Int32).alias("months_on_book"),
    )
    with pytest.raises(ValidationError, match="last row") as info:
        validate_panel(pl.concat([after_exit, late]), check_values=True)
    assert info.value.field == "state"


def test_the_hand_panel_and_generated_panels_satisfy_the_contract() -> None:
    validate_panel(hand_panel(), check_values=True)
    validate_panel(generate_panel(PanelSpec(loans_per_cohort=300)), check_values=True)


def test_the_generator_is_deterministic_by_seed() -> None:
    spec = PanelSpec(cohorts=4, loans_per_cohort=200, months=8)
    assert generate_panel(spec).equals(generate_panel(spec))
    assert not generate_panel(spec).equals(
        generate_panel(PanelSpec(cohorts=4, loans_per_cohort=200, months=8, seed=1))
    )


def test_risk_classes_and_floors_match_servicing() -> None:
    assert tuple(c.value for c in RiskClass) == RISK_CLASSES
    assert default_profile().dpd_thresholds == CLASS_FLOORS
