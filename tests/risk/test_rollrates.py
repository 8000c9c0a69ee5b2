"""Roll rates, cohort-method transition matrices, and powers against observed transitions."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendstack.core.errors import ValidationError
from lendstack.risk.panel import STATES, State, loan_rows, panel_frame
from lendstack.risk.rollrates import (
    PowerComparison,
    Weight,
    compare_powers,
    matrix_from_counts,
    roll_rates,
    transition_matrix,
    transition_states,
)
from lendstack.risk.synthetic_panel import BASE_TRANSITIONS, PanelSpec, generate_panel

JAN = date(2024, 1, 1)
CO, PO = State.CHARGED_OFF, State.PAID_OFF


def roll_panel() -> pl.DataFrame:
    """Five loans from January, observed to 2024-03-31; principal is constant per loan."""
    return panel_frame(
        [
            *loan_rows(1, JAN, [0, 0, 0], principal_fen=100_000),  # M0 → M0 → M0
            *loan_rows(2, JAN, [0, 10, 40], principal_fen=200_000),  # M0 → M1 → M2
            *loan_rows(3, JAN, [0, 15, 0], principal_fen=300_000),  # M0 → M1 → M0
            *loan_rows(4, JAN, [0], exit_state=PO, principal_fen=400_000),  # M0 → PO
            *loan_rows(5, JAN, [0, 20], exit_state=CO, exit_dpd=50, principal_fen=500_000),
        ]
    )


def test_pooled_roll_rates_by_hand() -> None:
    # From M0: loan 1 twice, loans 2-5 in January = 6 starts: 2 stay, 3 roll (2, 3, 5), 1 PO.
    # From M1 (February): loan 2 → M2, loan 3 → M0, loan 5 → CO.
    matrix = roll_rates(roll_panel()).matrix()
    p = dict(zip(STATES, matrix.probabilities, strict=True))
    assert p["M0"].tolist() == pytest.approx([2 / 6, 3 / 6, 0, 0, 0, 0, 0, 0, 1 / 6])
    assert p["M1"].tolist() == pytest.approx([1 / 3, 0, 1 / 3, 0, 0, 0, 0, 1 / 3, 0])
    assert matrix.observations[0].tolist() == [2, 3, 0, 0, 0, 0, 0, 0, 1]
    assert matrix.observed_rows.tolist() == [True, True] + [False] * 7


def test_balance_weighted_roll_rates_by_hand() -> None:
    # From M0: 1,000.00 + 1,000.00 stay; 2,000 + 3,000 + 5,000 roll; 4,000 pays off (of 16,000).
    # From M1: 2,000 → M2, 3,000 → M0, 5,000 → CO (of 10,000).
    matrix = roll_rates(roll_panel()).matrix(Weight.BALANCE)
    assert matrix.rate("M0", "M0") == pytest.approx(2 / 16)
    assert matrix.rate("M0", "M1") == pytest.approx(10 / 16)
    assert matrix.rate("M0", "PO") == pytest.approx(4 / 16)
    assert [matrix.rate("M1", s) for s in ("M0", "M2", "CO")] == pytest.approx([0.3, 0.2, 0.5])
    assert matrix.as_json()["observations"][1][7] == "5000.00"


def test_monthly_matrix_and_roll_forward_by_hand() -> None:
    rolls = roll_rates(roll_panel())
    assert rolls.months == (date(2024, 1, 31), date(2024, 2, 29))
    january = rolls.matrix(month=date(2024, 1, 31))
    assert january.rate("M0", "M1") == pytest.approx(3 / 5)
    forward = rolls.roll_forward().with_columns(pl.col("from_state", "to_state").cast(pl.String))
    assert forward.rows() == [
        (date(2024, 1, 31), "M0", "M1", 3 / 5, 10 / 15),
        (date(2024, 2, 29), "M0", "M1", 0.0, 0.0),  # loan 1 stayed current: a zero, not a gap
        (date(2024, 2, 29), "M1", "M2", 1 / 3, 2 / 10),
    ]
    with pytest.raises(ValidationError):
        rolls.matrix(month=date(2024, 3, 31))
    doc = rolls.as_json()
    assert doc["flows"][0] == {
        "month_end": "2024-01-31", "from_state": "M0", "to_state": "M0", "loans": 1,
        "principal": "1000.00",
    }  # fmt: skip


def cohort_panel() -> pl.DataFrame:
    """Four January loans observed to 2024-06-30 (months on book 0..5)."""
    return panel_frame(
        [
            *loan_rows(1, JAN, [0, 40, 70, 100, 10, 0]),  # M0 M2 M3 M4=D, then cures: still D
            *loan_rows(2, JAN, [0, 0], exit_state=CO, exit_dpd=10),  # charged off in March
            *loan_rows(3, JAN, [0, 0, 0, 0, 0, 0]),
            *loan_rows(4, JAN, [0, 0, 0], exit_state=PO),  # paid off in April
        ]
    )


def test_one_month_cohort_matrix_by_hand() -> None:
    # From M0: loan 1 (Jan), loan 2 (Jan, Feb), loan 3 (Jan-May), loan 4 (Jan-Mar) = 11;
    # 8 stay, 1 → M2 (loan 1), 1 → CO (loan 2 in Feb), 1 → PO (loan 4 in Mar).
    # Loan 1: M2 → M3 → D; its cured months count as D, so M1 has no observations.
    matrix = transition_matrix(cohort_panel())
    assert matrix.states == ("M0", "M1", "M2", "M3", "D", "CO", "PO")
    assert matrix.observations[0].tolist() == [8, 0, 1, 0, 0, 1, 1]
    assert matrix.rate("M2", "M3") == 1.0
    assert matrix.rate("M3", "D") == 1.0
    assert matrix.observed_rows.tolist() == [True, False, True, True, False, False, False]


def test_three_month_cohort_matrix_carries_absorbed_loans_forward() -> None:
    # Starts Jan-Mar. Loan 1: Jan M0 → Apr D; Feb M2 → May D; Mar M3 → Jun D.
    # Loan 2: Jan, Feb M0 → CO (it left in March). Loan 3: 3 × M0 → M0.
    # Loan 4: Jan, Feb, Mar M0 → PO (left in April).
    matrix = transition_matrix(cohort_panel(), horizon=3)
    assert matrix.observations[0].tolist() == [3, 0, 0, 0, 1, 2, 3]
    assert matrix.rate("M2", "D") == 1.0
    assert matrix.rate("M3", "D") == 1.0
    assert matrix.probabilities[1].tolist() == [0, 1, 0, 0, 0, 0, 0]  # unobserved: identity


def test_a_difference_the_powers_rule_out_is_infinitely_significant() -> None:
    # Built by hand: one month A → A always, yet half of the 2-month rows reach B.
    one = matrix_from_counts(
        ("A", "B"), np.array([[10, 0], [0, 0]]), absorbing=("B",), horizon=1, weight=Weight.LOANS
    )
    two = matrix_from_counts(
        ("A", "B"), np.array([[5, 5], [0, 0]]), absorbing=("B",), horizon=2, weight=Weight.LOANS
    )
    comparison = PowerComparison(one, two)
    assert comparison.from_powers.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert comparison.max_abs_difference == 0.5
    assert comparison.max_z == float("inf")
    assert comparison.as_json()["max_z"] is None  # JSON has no infinity


def test_a_window_across_a_gap_is_dropped() -> None:
    # Loan 2 is seen at months on book 0 and 2 only: its 2-month window spans the gap.
    gappy = panel_frame(loan_rows(2, JAN, [0, 0, 40])).filter(pl.col("months_on_book") != 1)
    panel = pl.concat([panel_frame(loan_rows(1, JAN, [0, 0, 0])), gappy])
    assert transition_matrix(panel, horizon=2).observations[0].tolist() == [1, 0, 0, 0, 0, 0, 0]


def test_a_gap_drops_only_the_pairs_it_breaks() -> None:
    gappy = roll_panel().filter(~((pl.col("loan_id") == 1) & (pl.col("months_on_book") == 1)))
    matrix = roll_rates(gappy).matrix()
    assert matrix.observations[0].tolist() == [0, 3, 0, 0, 0, 0, 0, 0, 1]


def test_default_bucket_and_horizon_are_checked() -> None:
    assert transition_states(2) == ("M0", "M1", "D", "CO", "PO")
    with pytest.raises(ValidationError) as info:
        transition_states(7)
    assert info.value.field == "default_bucket"
    with pytest.raises(ValidationError) as info:
        transition_matrix(cohort_panel(), horizon=0)
    assert info.value.field == "horizon"


def test_a_missing_column_is_named() -> None:
    with pytest.raises(ValidationError) as info:
        roll_rates(roll_panel().drop("principal_fen"))
    assert info.value.field == "principal_fen"


# --- properties: stochastic rows and absorbing states ----------------------------------------

histories = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.lists(st.integers(0, 200), min_size=1, max_size=8),
        st.sampled_from([None, CO, PO]),
        st.integers(1, 10_000_000),
    ),
    min_size=1,
    max_size=20,
)


Drawn = list[tuple[int, list[int], State | None, int]]


def random_panel(drawn: Drawn) -> pl.DataFrame:
    rows = []
    for loan_id, (offset, dpds, exit_state, balance) in enumerate(drawn, start=1):
        rows += loan_rows(
            loan_id, date(2024, 1 + offset, 1), dpds, exit_state=exit_state, principal_fen=balance
        )
    return panel_frame(rows)


def assert_stochastic(
    probabilities: np.ndarray, states: tuple[str, ...], absorbing: tuple[str, ...]
) -> None:
    assert np.abs(probabilities.sum(axis=1) - 1.0).max() <= 1e-12
    assert (probabilities >= 0).all()
    for state in absorbing:
        i = states.index(state)
        assert probabilities[i].tolist() == np.eye(len(states))[i].tolist()


@given(histories, st.sampled_from(list(Weight)))
@settings(max_examples=60)
def test_roll_rate_rows_sum_to_one_and_exits_absorb(drawn: Drawn, weight: Weight) -> None:
    matrix = roll_rates(random_panel(drawn)).matrix(weight)
    assert_stochastic(matrix.probabilities, matrix.states, ("CO", "PO"))
    empty = ~matrix.observed_rows & (matrix.observations.sum(axis=1) == 0)
    assert (matrix.probabilities[empty] == np.eye(len(STATES))[empty]).all()


@given(histories, st.integers(1, 4), st.integers(1, 6))
@settings(max_examples=60)
def test_transition_rows_sum_to_one_and_default_absorbs(
    drawn: Drawn, horizon: int, bucket: int
) -> None:
    matrix = transition_matrix(random_panel(drawn), horizon, default_bucket=bucket)
    assert_stochastic(matrix.probabilities, matrix.states, ("D", "CO", "PO"))
    assert_stochastic(matrix.power(12), matrix.states, ("D", "CO", "PO"))


# --- the estimators against a known Markov chain ---------------------------------------------


@pytest.fixture(scope="module")
def markov_panel() -> pl.DataFrame:
    """Time-homogeneous (no maturity): the generator's chain is the only law at work."""
    spec = PanelSpec(cohorts=12, loans_per_cohort=2_000, months=24, term_months=None, seed=3)
    return generate_panel(spec)


def test_powers_agree_with_observed_transitions_within_sampling_error(
    markov_panel: pl.DataFrame,
) -> None:
    comparisons = compare_powers(markov_panel, (2, 3, 6, 12))
    for comparison in comparisons:
        assert comparison.max_z <= 4.0, comparison.horizon
        assert comparison.observed.observed_rows[:4].all()
    assert comparisons[-1].as_json()["horizon_months"] == 12


def test_one_month_matrix_recovers_the_generating_chain(markov_panel: pl.DataFrame) -> None:
    """M4+ lumped into D: the performing rows must match the generator within 4 SE."""
    truth = np.asarray(BASE_TRANSITIONS)
    lumped = np.column_stack([truth[:, :4], truth[:, 4:7].sum(axis=1), truth[:, 7], truth[:, 8]])[
        :4
    ]
    matrix = transition_matrix(markov_panel)
    n = matrix.observations.sum(axis=1)[:4, None]
    se = np.sqrt(lumped * (1 - lumped) / n)
    assert (np.abs(matrix.probabilities[:4] - lumped) <= 4 * se + 1e-12).all()


def test_roll_rates_recover_the_generating_chain(markov_panel: pl.DataFrame) -> None:
    truth = np.asarray(BASE_TRANSITIONS)
    matrix = roll_rates(markov_panel).matrix()
    n = matrix.observations.sum(axis=1)[:7, None]
    se = np.sqrt(truth[:7] * (1 - truth[:7]) / n)
    assert (np.abs(matrix.probabilities[:7] - truth[:7]) <= 4 * se + 1e-12).all()
