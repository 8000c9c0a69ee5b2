"""Payment allocation: which receivable a payment settles first.

The order is product data (the issue's default: overdue penalty → overdue interest → overdue
principal → current interest → current principal → fees). Allocation is exact: every fen of the
payment is either applied to a component or returned as the remainder, which the caller books
to the borrower's credit balance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache

from lendstack.core.errors import ValidationError
from lendstack.core.money import FEN, ZERO
from lendstack.core.records import quick_init


class Component(StrEnum):
    """A receivable a payment can settle; "overdue" means billed and past its due date."""

    OVERDUE_PENALTY = "overdue_penalty"
    OVERDUE_INTEREST = "overdue_interest"
    OVERDUE_PRINCIPAL = "overdue_principal"
    OVERDUE_FEE = "overdue_fee"
    CURRENT_INTEREST = "current_interest"
    CURRENT_PRINCIPAL = "current_principal"
    CURRENT_FEE = "current_fee"


DEFAULT_ORDER: tuple[Component, ...] = (
    Component.OVERDUE_PENALTY,
    Component.OVERDUE_INTEREST,
    Component.OVERDUE_PRINCIPAL,
    Component.CURRENT_INTEREST,
    Component.CURRENT_PRINCIPAL,
    Component.OVERDUE_FEE,
    Component.CURRENT_FEE,
)


def validate_order(
    order: Iterable[Component | str], field: str = "waterfall"
) -> tuple[Component, ...]:
    """`order` as Components, refusing unknown names, repeats and omissions.

    A partial order would leave some receivable that a payment can never settle, so the order
    must name every component exactly once.
    """
    parsed: list[Component] = []
    for item in order:
        try:
            parsed.append(Component(item))
        except ValueError:
            raise ValidationError(f"unknown component {item!r}", field=field) from None
    if len(set(parsed)) != len(parsed):
        raise ValidationError("names a component more than once", field=field)
    missing = [c.value for c in Component if c not in parsed]
    if missing:
        raise ValidationError(f"misses {', '.join(missing)}", field=field)
    return tuple(parsed)


_BY_NAME = {c.value: c for c in Component}


def _component(name: Component | str) -> Component:
    """`Component(name)` by a dict lookup (a member is its own name): the enum's call cost
    more than the rest of an allocation; an unknown name fails as the enum's own lookup does."""
    found = _BY_NAME.get(name)
    return Component(name) if found is None else found


@lru_cache(maxsize=64)
def _checked_order(order: tuple[Component | str, ...]) -> tuple[Component, ...]:
    """`validate_order` of an order, checked once: every payment of a product allocates in
    the same few orders (an order that fails is not cached, so it fails every time)."""
    return validate_order(order)


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class Allocation:
    """Amounts applied per component, in waterfall order (zeros included), and the remainder."""

    applied: tuple[tuple[Component, Decimal], ...]
    remainder: Decimal

    def amount(self, component: Component) -> Decimal:
        return next((amt for c, amt in self.applied if c is component), ZERO)

    @property
    def total_applied(self) -> Decimal:
        return sum((amt for _, amt in self.applied), ZERO)


def _fen(value: Decimal, field: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationError(f"must be a finite Decimal, got {value!r}", field=field)
    if value < 0:
        raise ValidationError(f"must be >= 0, got {value}", field=field)
    fen = value.quantize(FEN)
    if value != fen:
        raise ValidationError(f"{value} is more precise than the fen (0.01)", field=field)
    return fen


_OWED_FIELDS = {c: f"owed.{c.value}" for c in Component}
"""Each component's field name in an error, written once rather than for every payment."""


def _dues(owed: Mapping[Component, Decimal]) -> dict[Component, Decimal]:
    dues: dict[Component, Decimal] = {}
    for name, value in owed.items():
        component = _component(name)
        dues[component] = _fen(value, _OWED_FIELDS[component])
    return dues


def allocate(
    amount: Decimal,
    owed: Mapping[Component, Decimal],
    order: Sequence[Component] = DEFAULT_ORDER,
) -> Allocation:
    """Apply `amount` to `owed` in `order`; what is left after everything owed is the remainder.

    Components absent from `owed` owe nothing. Each step takes min(left, owed), so the result
    is exact: Σ applied + remainder == amount, and nothing is applied beyond what is owed.
    """
    left = _fen(amount, "amount")
    dues = _dues(owed)
    applied: list[tuple[Component, Decimal]] = []
    for component in _checked_order(tuple(order)):
        take = min(left, dues.get(component, ZERO))
        applied.append((component, take))
        left -= take
    return Allocation(tuple(applied), left)
