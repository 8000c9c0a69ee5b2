"""Cash-flow split: parts sum to the whole to the fen, for every flow, sign and share vector."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.errors import ValidationError
from lendstack.funding import split

FLOWS = ("disbursement", "principal", "interest", "fees", "penalties", "recoveries", "sale")


@st.composite
def share_vectors(draw: st.DrawFn) -> dict[str, Decimal]:
    """1–5 funders, shares in 0.0001 units summing to exactly 1."""
    n = draw(st.integers(1, 5))
    cuts = sorted(draw(st.lists(st.integers(0, 10_000), min_size=n - 1, max_size=n - 1)))
    units = [b - a for a, b in zip([0, *cuts], [*cuts, 10_000], strict=True)]
    return {f"f{i}": Decimal(u).scaleb(-4) for i, u in enumerate(units)}


amounts = st.integers(-(10**11), 10**11).map(lambda fen: Decimal(fen).scaleb(-2))


@given(amount=amounts, shares=share_vectors())
def test_parts_sum_to_the_whole(amount: Decimal, shares: dict[str, Decimal]) -> None:
    parts = split(amount, shares)
    assert sum(parts.values(), Decimal(0)) == amount
    assert set(parts) == set(shares)
    for funder_id, part in parts.items():
        assert part == part.quantize(Decimal("0.01"))
        assert abs(part - amount * shares[funder_id]) < Decimal("0.01")


@given(amount=amounts, shares=share_vectors())
def test_reversal_undoes_the_original(amount: Decimal, shares: dict[str, Decimal]) -> None:
    forward, back = split(amount, shares), split(-amount, shares)
    assert all(forward[k] + back[k] == 0 for k in shares)


@given(flows=st.lists(amounts, min_size=len(FLOWS), max_size=len(FLOWS)), shares=share_vectors())
def test_every_flow_of_a_loan_reconciles(flows: list[Decimal], shares: dict[str, Decimal]) -> None:
    """Funder sub-ledgers add up to the loan on every flow, hence in total."""
    per_funder = {k: Decimal(0) for k in shares}
    for amount in flows:
        for k, part in split(amount, shares).items():
            per_funder[k] += part
    assert sum(per_funder.values(), Decimal(0)) == sum(flows, Decimal(0))


def test_tie_break_is_by_funder_id_whatever_the_order() -> None:
    thirds = {"b": Decimal("0.3333"), "a": Decimal("0.3333"), "c": Decimal("0.3334")}
    assert split(Decimal("0.02"), thirds) == {
        "a": Decimal("0.01"),
        "b": Decimal("0.00"),
        "c": Decimal("0.01"),
    }
    assert split(Decimal("0.02"), dict(reversed(thirds.items()))) == split(Decimal("0.02"), thirds)


def test_zero_splits_to_zeros() -> None:
    assert split(Decimal("0.00"), {"a": Decimal("0.3"), "b": Decimal("0.7")}) == {
        "a": Decimal("0.00"), "b": Decimal("0.00")}  # fmt: skip


@pytest.mark.parametrize(
    ("amount", "shares", "field"),
    [
        (Decimal("1.00"), {"a": Decimal("0.5"), "b": Decimal("0.4")}, "shares"),
        (Decimal("1.00"), {"a": Decimal("1.5"), "b": Decimal("-0.5")}, "shares"),
        (Decimal("1.00"), {}, "shares"),
        (Decimal("1.001"), {"a": Decimal(1)}, "amount"),
    ],
)
def test_bad_input_is_refused(amount: Decimal, shares: dict[str, Decimal], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        split(amount, shares)
    assert err.value.field == field
