"""Payment allocation: exact, in order, never beyond what is owed."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.errors import ValidationError
from lendstack.servicing.domain import DEFAULT_ORDER, Component, allocate, validate_order

fen = st.integers(0, 10_000_000).map(lambda n: Decimal(n) / 100)
owed_maps = st.dictionaries(st.sampled_from(Component), fen)
orders = st.permutations(list(Component))


def test_default_order_is_the_issues() -> None:
    assert [c.value for c in DEFAULT_ORDER] == [
        "overdue_penalty",
        "overdue_interest",
        "overdue_principal",
        "current_interest",
        "current_principal",
        "overdue_fee",
        "current_fee",
    ]


def test_partial_payment_example() -> None:
    owed = {
        Component.OVERDUE_PENALTY: Decimal("3.50"),
        Component.OVERDUE_INTEREST: Decimal("150.00"),
        Component.OVERDUE_PRINCIPAL: Decimal("900.00"),
        Component.CURRENT_INTEREST: Decimal("140.00"),
    }
    a = allocate(Decimal("500.00"), owed, DEFAULT_ORDER)
    assert a.amount(Component.OVERDUE_PENALTY) == Decimal("3.50")
    assert a.amount(Component.OVERDUE_INTEREST) == Decimal("150.00")
    assert a.amount(Component.OVERDUE_PRINCIPAL) == Decimal("346.50")
    assert a.amount(Component.CURRENT_INTEREST) == 0
    assert a.remainder == 0
    assert [c for c, _ in a.applied] == list(DEFAULT_ORDER)


def test_overpayment_leaves_a_remainder() -> None:
    a = allocate(Decimal(100), {Component.CURRENT_FEE: Decimal("10.01")})
    assert a.amount(Component.CURRENT_FEE) == Decimal("10.01")
    assert a.remainder == Decimal("89.99")
    assert a.total_applied == Decimal("10.01")


@pytest.mark.parametrize(
    "order",
    [
        list(DEFAULT_ORDER)[:-1],
        [*DEFAULT_ORDER, Component.CURRENT_FEE],
        [*list(DEFAULT_ORDER)[:-1], "tips"],
    ],
)
def test_order_must_be_a_permutation(order: list[Component]) -> None:
    with pytest.raises(ValidationError) as err:
        allocate(Decimal(1), {}, order)
    assert err.value.field == "waterfall"


def test_strings_are_accepted_as_components() -> None:
    assert validate_order([c.value for c in DEFAULT_ORDER]) == DEFAULT_ORDER


@pytest.mark.parametrize(
    ("amount", "owed", "field"),
    [
        (Decimal(-1), {}, "amount"),
        (Decimal("0.001"), {}, "amount"),
        (Decimal(1), {Component.CURRENT_FEE: Decimal(-1)}, "owed.current_fee"),
        (1.0, {}, "amount"),
    ],
)
def test_bad_amounts(amount: Decimal, owed: dict[Component, Decimal], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        allocate(amount, owed)
    assert err.value.field == field


@given(fen, owed_maps, orders)
def test_allocation_is_exact(
    amount: Decimal, owed: dict[Component, Decimal], order: list[Component]
) -> None:
    a = allocate(amount, owed, order)
    assert a.total_applied + a.remainder == amount
    for component, applied in a.applied:
        assert 0 <= applied <= owed.get(component, Decimal(0))
    assert a.remainder == max(Decimal(0), amount - sum(owed.values(), Decimal(0)))


@given(fen, owed_maps, orders)
def test_allocation_follows_the_order(
    amount: Decimal, owed: dict[Component, Decimal], order: list[Component]
) -> None:
    a = allocate(amount, owed, order)
    assert [c for c, _ in a.applied] == order
    for i, (component, applied) in enumerate(a.applied):
        if applied > 0:
            for earlier, got in a.applied[:i]:
                assert got == owed.get(earlier, Decimal(0))
        if applied < owed.get(component, Decimal(0)):
            assert all(later == 0 for _, later in a.applied[i + 1 :])
            assert a.remainder == 0
