"""`mapping.state_values` from a prior state (a save converts only the amounts that moved)
gives exactly the values of a whole conversion, and a loan read back from its values
(`mapping.loan_from`) serves as that prior state."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.daycount import DayCount
from lendstack.core.money import Rounding, from_fen
from lendstack.servicing.domain.delinquency import RiskClass
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.loan import (
    AccrualPeriod,
    Balances,
    InstallmentState,
    LoanContract,
    LoanState,
)
from lendstack.servicing.domain.schedule import RepaymentMethod
from lendstack.servicing.domain.waterfall import Component
from lendstack.storage import mapping

CONTRACT = LoanContract(
    "p",
    Decimal("1200.00"),
    Decimal("0.18"),
    12,
    RepaymentMethod.EQUAL_INSTALLMENT,
    date(2025, 1, 1),
    date(2025, 1, 1),
    DayCount.ACT_365F,
    Rounding.HALF_UP,
    3,
    Decimal("1.5"),
    Decimal("0.27"),
    tuple(Component),
    90,
    180,
)
FEN = st.sampled_from([0, 0, 1, 99, 12345, 100000])
amounts = st.builds(from_fen, FEN)


@st.composite
def states(draw: Any) -> LoanState:
    period = draw(
        st.none()
        | st.builds(
            AccrualPeriod,
            st.integers(1, 12),
            st.just(date(2025, 2, 1)),
            st.just(date(2025, 3, 1)),
            amounts,
            amounts,
        )
    )
    items = tuple(
        InstallmentState(
            n, date(2025, n, 1), date(2025, n, 28), *(draw(amounts) for _ in range(6)), billed
        )
        for n, billed in enumerate(draw(st.lists(st.booleans(), max_size=3)), start=1)
    )
    return LoanState(
        7,
        CONTRACT,
        draw(st.sampled_from(list(LoanStatus))),
        Balances(*(draw(amounts) for _ in range(5))),
        items,
        period,
        draw(st.integers(1, 3)),
        draw(st.integers(0, 200)),
        draw(st.sampled_from(list(RiskClass))),
        draw(st.booleans()),
        draw(amounts),
        draw(amounts),
        draw(st.none() | st.just(date(2025, 6, 1))),
    )


@given(states(), states())
def test_values_from_a_prior_state_are_the_whole_conversion(
    was: LoanState, loan: LoanState
) -> None:
    whole = mapping.state_values(loan)
    assert mapping.state_values(loan, was, mapping.state_values(was)) == whole
    assert [type(v) for v in mapping.state_values(loan, was, mapping.state_values(was))] == [
        type(v) for v in whole
    ]


@given(states(), states())
def test_a_loan_read_from_its_row_serves_as_the_prior_state(
    was: LoanState, loan: LoanState
) -> None:
    values = mapping.state_values(was)
    row = SimpleNamespace(
        id=was.id,
        **mapping.contract_columns(CONTRACT),
        **dict(zip(mapping.STATE_COLUMNS, values, strict=True)),
    )
    read = mapping.loan_from(row, was.installments)
    assert mapping.state_values(read) == values
    assert mapping.state_values(loan, read, values) == mapping.state_values(loan)
