"""OfferBook's memos change no result: a reference burden remembered by its periods' days is
the burden built afresh for that very start date, on every product and day count."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from lendstack.servicing import Product, ProductCatalog, quote
from lendstack.underwriting.offers import REFERENCE_AMOUNT, OfferBook, Terms, monthly_burden

CATALOG = ProductCatalog()
PRODUCTS = sorted(CATALOG.all(), key=lambda p: p.id)


def _direct(terms: Terms) -> Decimal:
    reference = max(REFERENCE_AMOUNT, terms.product.amount_min)
    return monthly_burden(quote(CATALOG, terms.request(reference))) / reference


def _rates(product: Product) -> list[Decimal]:
    middle = ((product.rate_min + product.rate_max) / 2).quantize(Decimal("0.0001"))
    return sorted({product.rate_min, middle, product.rate_max})


def test_every_start_date_of_two_years_gets_its_own_burden_from_fewer_schedules() -> None:
    book = OfferBook(CATALOG)
    starts = [date(2025, 1, 1) + timedelta(days=n) for n in range(0, 731, 3)]
    for product in PRODUCTS:
        for term in product.terms_allowed[:2]:
            rate = _rates(product)[-1]
            for start in starts:
                terms = Terms(product, term, rate, None, start)
                assert book.burden_per_unit(terms) == _direct(terms), (product.id, term, start)
    # Remembered by days, not by date: far fewer schedules than (product, term, date)s.
    assert len(book._burdens) < len(PRODUCTS) * 2 * len(starts) / 3


SHARED = OfferBook(CATALOG)
"""One book across examples, so later examples hit what earlier ones remembered."""


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(PRODUCTS),
    st.data(),
    st.dates(date(2024, 1, 1), date(2027, 12, 31)),
)
def test_a_remembered_burden_is_the_burden_built_afresh(
    product: Product, data: st.DataObject, start: date
) -> None:
    term = data.draw(st.sampled_from(product.terms_allowed))
    rate = data.draw(st.sampled_from(_rates(product)))
    fee = data.draw(st.sampled_from([None, product.fee_rate_max]))
    guarantee = data.draw(st.sampled_from([Decimal(0), Decimal("0.0015")]))
    terms = Terms(product, term, rate, fee, start, guarantee)
    assert SHARED.burden_per_unit(terms) == _direct(terms)
    assert str(SHARED.burden_per_unit(terms)) == str(_direct(terms))
