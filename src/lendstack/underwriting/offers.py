"""Offers: the schedule and all-in APR a price gives, built once per distinct request.

`OfferBook` wraps the product catalog with two memos that make repeated work cheap without
changing any result: the burden per yuan of a reference schedule (what limits scale) and the
built offer itself. Both are keyed by everything that determines them (product, amount,
contract and fee rates, term, start date), and emptied when full.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar

from lendstack.core.dates import due_dates, periods_between
from lendstack.core.daycount import DayCount, day_count_days
from lendstack.core.money import quantize_fen
from lendstack.servicing import (
    LoanRequest,
    Product,
    ProductCatalog,
    RepaymentMethod,
    Schedule,
    quote,
)
from lendstack.underwriting import reasons as R
from lendstack.underwriting.decision import Offer
from lendstack.underwriting.pricing import flat_fee_rate

REFERENCE_AMOUNT = Decimal(10000)
_BURDEN_MEMO = 200_000
"""Reference burdens kept before the memo is emptied (a Decimal each; the date x rate x term
grid of a year's applications fits)."""
_OFFER_MEMO = 50_000
"""Built offers kept before the memo is emptied (each holds a whole schedule)."""

_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Terms:
    """What an offer is built from, apart from the amount."""

    product: Product
    term_months: int
    rate: Decimal
    fee_rate: Decimal | None
    start: date
    guarantee_fee_rate: Decimal = Decimal(0)
    """Per period, on the principal, on top of `fee_rate` (see `guarantee.guaranteed_offer`)."""

    def request(self, amount: Decimal) -> LoanRequest:
        return LoanRequest(
            self.product.id,
            amount,
            self.term_months,
            self.rate,
            self.start,
            fee_rate=self.fee_rate,
            guarantee_fee_rate=self.guarantee_fee_rate,
        )


@dataclass(frozen=True, slots=True)
class OfferBook:
    catalog: ProductCatalog
    _burdens: dict[tuple[Any, ...], Decimal] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _offers: dict[tuple[Any, ...], Offer] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def burden_per_unit(self, terms: Terms) -> Decimal:
        """Monthly burden per yuan lent on these terms: limits scale it to an amount.

        Only the burden is needed, so the reference schedule's APR (an IRR) is never solved.
        The burden is made of the schedule's amounts, which depend on the start date only
        through the days each period counts (`_days_key`), so it is remembered by those days:
        the applications of a month (days 1-28 share them) and of the same month a year on
        share one reference schedule, not one a day.
        """
        reference = max(REFERENCE_AMOUNT, terms.product.amount_min)
        request = terms.request(reference)
        key = (*_key(request, dated=False), *_days_key(terms))
        burden = self._burdens.get(key)
        if burden is None:
            burden = monthly_burden(quote(self.catalog, request)) / reference
            _remember(self._burdens, key, burden, _BURDEN_MEMO)
        return burden

    def offer(self, terms: Terms, amount: Decimal) -> Offer:
        request = terms.request(amount)
        key = _key(request)
        offer = self._offers.get(key)
        if offer is None:
            schedule = quote(self.catalog, request)
            offer = Offer(
                terms.product.id,
                schedule,
                schedule.apr(),
                monthly_burden(schedule),
                terms.guarantee_fee_rate,
            )
            _remember(self._offers, key, offer, _OFFER_MEMO)
        return offer


def _key(request: LoanRequest, dated: bool = True) -> tuple[Any, ...]:
    """Everything in a request that the schedule depends on (the catalog is the book's); with
    `dated` false, all but the start date (for a key that has `_days_key` instead).

    Decimals enter as text: 20000 and 20000.00 are equal but print differently in an offer.
    """
    return (
        request.product_id,
        str(request.amount),
        request.term_months,
        str(request.rate),
        *((request.start,) if dated else ()),
        str(request.fee_rate),
        str(request.upfront_fee_rate),
        str(request.guarantee_fee_rate),
    )


@lru_cache(maxsize=4_096)
def _days_by_start(
    day_count: DayCount, start: date, term_months: int
) -> tuple[tuple[int, ...], int, int]:
    maturity = due_dates(start, term_months, after=start)[-1]
    return (
        tuple(day_count_days(day_count, a, b) for a, b in _periods(start, term_months)),
        day_count_days(day_count, start, maturity),
        periods_between(start, start, maturity),
    )


def _periods(start: date, term_months: int) -> tuple[tuple[date, date], ...]:
    dues = due_dates(start, term_months, after=start)
    return tuple(zip((start, *dues[:-1]), dues, strict=True))


def _days_key(terms: Terms) -> tuple[Any, ...]:
    """What a new loan's schedule amounts take from its start date: the days each period
    counts under the product's day count (interest of a period is balance x rate x days /
    year days: `daycount.simple_interest`), the days from start to maturity (a bullet's one
    period) and the periods between (a bullet's burden divides by them). With the method,
    rounding and everything else in `_key`, equal keys give equal installment amounts."""
    product = terms.product
    days = _days_by_start(product.day_count, terms.start, terms.term_months)
    return (product.method, product.day_count, product.rounding, *days)


def _remember(memo: dict[tuple[Any, ...], _V], key: tuple[Any, ...], value: _V, size: int) -> None:
    if len(memo) >= size:
        memo.clear()
    memo[key] = value


def rates_for(product: Product, apr: Decimal, term: int) -> tuple[Decimal, Decimal | None]:
    """Contract rate and per-period fee that deliver `apr` within the product's ranges.

    Below the product's floor the floor applies (the borrower pays the product's minimum);
    above its ceiling this raises, and the engine declines: prices are never clamped down.
    """
    if product.method is RepaymentMethod.INTEREST_FREE_FEE:
        fee = max(flat_fee_rate(apr, term), product.fee_rate_min)
        _check_within(fee, product.fee_rate_max, "fee_rate", product)
        return Decimal(0), fee
    rate = max(apr, product.rate_min)
    _check_within(rate, product.rate_max, "rate", product)
    return rate, None


def _check_within(value: Decimal, ceiling: Decimal, name: str, product: Product) -> None:
    if value > ceiling:
        raise R.PricingOutOfRange(
            f"needed {name} {value} is above product {product.id}'s {ceiling}"
        )


def monthly_burden(schedule: Schedule) -> Decimal:
    """The monthly debt service an offer adds, for affordability and the DTI rule.

    Amortising loans: the largest installment. Bullet and interest-first loans pile the
    principal into the last payment, so their burden is the total repaid spread over the
    months: the saving a borrower needs to make each month to meet it.
    """
    method = schedule.terms.method
    if method in (RepaymentMethod.BULLET, RepaymentMethod.INTEREST_FIRST):
        total = sum((i.total for i in schedule.installments), Decimal(0))
        return quantize_fen(total / schedule.term_months, schedule.terms.rounding)
    return max(i.total for i in schedule.installments)
