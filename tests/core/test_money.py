"""`to_fen`, the one crossing from Decimal amounts to stored integer fen, against the plain
definition it replaced: scale by 100, and refuse anything that is not then integral."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lendstack.core.money import from_fen, to_fen


def scaled_fen(value: Decimal) -> int:
    """The definition: the amount times 100, exactly an integer or refused."""
    scaled = value * 100
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} is more precise than the fen")
    return int(scaled)


amounts = st.builds(
    lambda digits, exponent, negative: Decimal((int(negative), tuple(digits), exponent)),
    st.lists(st.integers(0, 9), min_size=1, max_size=12),
    st.integers(-6, 4),
    st.booleans(),
)
"""Finite Decimals of up to 12 digits at any scale from 1e-6 to 1e4, zeros and trailing
zeros included (0.00, 1.500000, 3E+2 and -0 are all amounts `to_fen` takes or refuses)."""


@given(amounts)
def test_to_fen_is_the_scaled_amount_or_refuses_it(value: Decimal) -> None:
    try:
        expected: int | None = scaled_fen(value)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError, match="more precise than the fen"):
            to_fen(value)
    else:
        assert to_fen(value) == expected
        assert type(to_fen(value)) is int


@given(st.integers(-(10**15), 10**15))
def test_to_fen_inverts_from_fen(fen: int) -> None:
    assert to_fen(from_fen(fen)) == fen


@pytest.mark.parametrize(
    ("text", "error"),
    [("NaN", ValueError), ("sNaN", ValueError), ("Infinity", OverflowError),
     ("-Infinity", OverflowError)],
)  # fmt: skip
def test_to_fen_refuses_what_is_not_an_amount(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        to_fen(Decimal(text))


@pytest.mark.parametrize("value", [1, 1.0, "1.00", None])
def test_to_fen_takes_only_decimals(value: object) -> None:
    with pytest.raises(TypeError, match="money must be Decimal"):
        to_fen(value)  # type: ignore[arg-type]
