"""Exact money: `Decimal` quantised to the fen, with an explicit rounding mode.

No float ever reaches a balance: constructors refuse floats outright. Storage holds integer fen;
`to_fen` and `from_fen` are the only crossings.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from lendstack.core.errors import CurrencyMismatch, ValidationError

FEN = Decimal("0.01")
ZERO = Decimal("0.00")


class Currency(StrEnum):
    CNY = "CNY"


class Rounding(StrEnum):
    """Rounding modes a product may choose; each maps to a `decimal` mode."""

    HALF_UP = "half-up"
    HALF_EVEN = "half-even"
    DOWN = "down"
    UP = "up"

    @property
    def decimal_mode(self) -> str:
        return _DECIMAL_MODES[self]


_DECIMAL_MODES = {
    Rounding.HALF_UP: decimal.ROUND_HALF_UP,
    Rounding.HALF_EVEN: decimal.ROUND_HALF_EVEN,
    Rounding.DOWN: decimal.ROUND_DOWN,
    Rounding.UP: decimal.ROUND_UP,
}


def quantize_fen(value: Decimal, rounding: Rounding = Rounding.HALF_UP) -> Decimal:
    """Round a decimal amount to the fen with the given mode."""
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be Decimal, not {type(value).__name__}")
    return value.quantize(FEN, rounding=rounding.decimal_mode)


def to_fen(value: Decimal) -> int:
    """Exact conversion to integer fen; refuses sub-fen precision rather than rounding silently."""
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be Decimal, not {type(value).__name__}")
    if not value:  # zero (paid, fee, penalty amounts often are): no fraction to make
        return 0
    # The exact fraction in lowest terms, in C: an amount in whole fen has a denominator
    # that divides 100. Cheaper than scaling, rounding and comparing Decimals, which a day's
    # bookings (six amounts per installment) and payments pay per row. NaN raises
    # ValueError and an infinity OverflowError, as `int` of them did.
    numerator, denominator = value.as_integer_ratio()
    if 100 % denominator:
        raise ValueError(f"{value} is more precise than the fen")
    return numerator * (100 // denominator)


def from_fen(fen: int) -> Decimal:
    """Integer fen to yuan with exactly two places (`scaleb` only moves the exponent: exact,
    and faster than a division and a quantize on the hot read paths)."""
    return Decimal(int(fen)).scaleb(-2)


def parse_amount(text: str | Decimal | int, field: str, *, allow_zero: bool = False) -> Decimal:
    """Parse a user-supplied amount: positive, finite, at most two decimals."""
    if isinstance(text, float | bool):
        raise ValidationError("must be a decimal string, not a float", field=field)
    try:
        value = Decimal(str(text).strip())
    except decimal.InvalidOperation:
        raise ValidationError(f"{text!r} is not a number", field=field) from None
    if not value.is_finite():
        raise ValidationError("must be finite", field=field)
    if value < 0 or (value == 0 and not allow_zero):
        raise ValidationError(
            f"must be {'>= 0' if allow_zero else '> 0'}, got {value}", field=field
        )
    if value != value.quantize(FEN, rounding=decimal.ROUND_DOWN):
        raise ValidationError(f"{value} is more precise than the fen (0.01)", field=field)
    return value.quantize(FEN)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency. Arithmetic across currencies raises `CurrencyMismatch`."""

    amount: Decimal
    currency: Currency = Currency.CNY

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money.amount must be Decimal, not {type(self.amount).__name__}")
        if self.amount != self.amount.quantize(FEN, rounding=decimal.ROUND_DOWN):
            raise ValueError(f"{self.amount} is more precise than the fen")

    @classmethod
    def of(cls, value: str | int | Decimal, currency: Currency = Currency.CNY) -> Money:
        return cls(Decimal(value).quantize(FEN), currency)

    @classmethod
    def zero(cls, currency: Currency = Currency.CNY) -> Money:
        return cls(ZERO, currency)

    @classmethod
    def from_fen(cls, fen: int, currency: Currency = Currency.CNY) -> Money:
        return cls(from_fen(fen), currency)

    @property
    def fen(self) -> int:
        return to_fen(self.amount)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency is not self.currency:
            raise CurrencyMismatch(f"{self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def times(self, factor: Decimal, rounding: Rounding) -> Money:
        """Multiply by a rate or share, rounding explicitly back to the fen."""
        return Money(quantize_fen(self.amount * factor, rounding), self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
