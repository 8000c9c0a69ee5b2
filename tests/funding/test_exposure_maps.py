"""`SqlFunding.exposure_maps`: several dates in one read, each exactly `exposure_map`'s.

The funding desk reads ahead the dates a batch of decisions plans on; a plan must see what
reading its date alone would have given, on every kind of date: closed, open, never closed,
the open date itself and dates beyond it with flows in between.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine

from lendstack.servicing import ProductCatalog
from lendstack.storage.funding import SqlFunding

from .test_exposure_tally import DAY, book, close, prepay

DAYS = [DAY + timedelta(days=n) for n in range(-2, 8)]


def same_as_one_by_one(repo: SqlFunding, days: list[date]) -> None:
    many = repo.exposure_maps(days)
    assert sorted(many) == sorted(set(days))
    for day in days:
        one = repo.exposure_map(day)
        assert many[day] == one
        assert list(many[day]) == list(one)  # funders in the same order


def test_no_funders_and_no_dates() -> None:
    from lendstack.storage.db import make_engine, migrate

    engine = make_engine("sqlite://")
    migrate(engine)
    repo = SqlFunding(engine)
    assert repo.exposure_maps([]) == {}
    same_as_one_by_one(repo, DAYS)


def test_a_book_never_closed(engine: Engine, catalog: ProductCatalog) -> None:
    repo = SqlFunding(engine)
    repo.import_builtin()
    same_as_one_by_one(repo, DAYS)
    book(engine, catalog, "6000.00", DAY, 0)
    book(engine, catalog, "4000.00", DAY + timedelta(days=3), 1)
    book(engine, catalog, "2500.55", DAY + timedelta(days=3), 2)
    same_as_one_by_one(repo, DAYS)


def test_closed_open_and_later_dates(engine: Engine, catalog: ProductCatalog) -> None:
    repo = SqlFunding(engine)
    repo.import_builtin()
    first = book(engine, catalog, "12000.00", DAY, 0)
    book(engine, catalog, "5000.03", DAY, 1)
    prepay(engine, first, "2041.41", DAY, "p1")
    close(engine, DAY)
    opened = DAY + timedelta(days=1)
    book(engine, catalog, "7777.77", opened, 2)
    second = book(engine, catalog, "3000.00", opened, 0)
    prepay(engine, second, "1000.00", opened, "p2")
    same_as_one_by_one(repo, DAYS)
    same_as_one_by_one(repo, [DAYS[5], DAYS[0], DAYS[5]])  # any order, repeats
    close(engine, opened)
    book(engine, catalog, "4321.00", opened + timedelta(days=1), 1)
    same_as_one_by_one(repo, DAYS)
