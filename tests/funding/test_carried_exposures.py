"""A close that carries each funder's exposure (`SqlCloseStore(carry_exposures=True)`, the
simulator's) writes the balances a summing close writes, from the flows since the last close.

It carries only from rows that say which flows they include (`flows_through`); a close that
sums leaves them unmarked; a month-end sums as well and refuses a carried balance that
differs. The property over random days of bookings, payments, reversals and closes is in
`test_exposure_tally` (run both ways).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, inspect, select, text, update

from lendstack.core.errors import InvariantViolation
from lendstack.servicing import ProductCatalog
from lendstack.servicing.cob import close_through
from lendstack.storage import funding
from lendstack.storage.calendar import last_closed
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.funding import SqlFunding
from lendstack.storage.schema import funder_exposures

from .test_exposure_tally import BANK, book, exact, prepay

DAY = date(2026, 3, 2)


def _rows(engine: Engine) -> dict[str, tuple[int, int | None]]:
    """Each funder's close row: (balance in fen, the last flow it includes)."""
    query = select(
        funder_exposures.c.funder_id,
        funder_exposures.c.balance_fen,
        funder_exposures.c.flows_through,
    )
    with engine.connect() as conn:
        return {f: (int(b or 0), m) for f, b, m in conn.execute(query)}


def _last_flow(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT MAX(id) FROM funder_flows")).scalar_one())


def _carrying(engine: Engine, day: date) -> None:
    close_through(SqlCloseStore(engine, carry_exposures=True), day)


def _summing_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> dict[str, int]:
        raise AssertionError("the close summed the positions instead of carrying")

    monkeypatch.setattr(funding, "held_of", refuse)


@pytest.fixture
def started(engine: Engine, catalog: ProductCatalog) -> tuple[int, int]:
    """Two co-lent loans, booked and closed by a carrying close (which summed: no marks yet)."""
    SqlFunding(engine).import_builtin()
    loans = book(engine, catalog, "12000.00", DAY, 0), book(engine, catalog, "9000.00", DAY, 2)
    _carrying(engine, DAY)
    return loans


def test_a_carried_balance_is_the_last_one_plus_the_flows_since(
    engine: Engine,
    catalog: ProductCatalog,
    started: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert {m for _, m in _rows(engine).values()} == {_last_flow(engine)}
    day = DAY + timedelta(days=1)
    prepay(engine, started[0], "3000.00", day, "p1")
    book(engine, catalog, "5000.00", day, 1)
    before = _rows(engine)
    _summing_forbidden(monkeypatch)
    _carrying(engine, day)

    after = _rows(engine)
    assert {m for _, m in after.values()} == {_last_flow(engine)}
    assert after[BANK][0] != before[BANK][0]  # the day's flows moved the bank's balance
    monkeypatch.undo()
    later = day + timedelta(days=1)
    assert SqlFunding(engine).exposure_map(later) == exact(engine, later)


def test_a_close_that_sums_leaves_the_rows_unmarked_and_the_next_carrying_one_sums(
    engine: Engine,
    catalog: ProductCatalog,
    started: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    day = DAY + timedelta(days=1)
    prepay(engine, started[1], "2000.00", day, "p1")
    close_through(SqlCloseStore(engine), day)  # `cob run`: other writers may be at work
    assert {m for _, m in _rows(engine).values()} == {None}

    _summing_forbidden(monkeypatch)
    with pytest.raises(AssertionError, match="summed"):
        _carrying(engine, day + timedelta(days=1))


def test_a_partner_added_since_is_summed_then_carried(
    engine: Engine, catalog: ProductCatalog, started: tuple[int, int]
) -> None:
    from .conftest import funder

    SqlFunding(engine).add(funder("late-bank"))
    assert _rows(engine)["late-bank"] == (0, None)
    day = DAY + timedelta(days=1)
    _carrying(engine, day)
    assert {m for _, m in _rows(engine).values()} == {_last_flow(engine)}
    later = day + timedelta(days=1)
    assert SqlFunding(engine).exposure_map(later) == exact(engine, later)


def test_a_month_end_refuses_a_carried_balance_the_positions_do_not_hold(
    engine: Engine, started: tuple[int, int]
) -> None:
    month_end = date(2026, 3, 31)
    _carrying(engine, month_end - timedelta(days=1))
    with engine.begin() as conn:  # as if a carry had gone wrong: a fen too many
        conn.execute(
            update(funder_exposures)
            .where(funder_exposures.c.funder_id == BANK)
            .values(balance_fen=funder_exposures.c.balance_fen + 1)
        )
    with pytest.raises(InvariantViolation, match="carried"):
        _carrying(engine, month_end)
    with engine.connect() as conn:
        assert last_closed(conn) == month_end - timedelta(days=1)  # the date left unclosed


def test_the_mark_migrates_down_and_up(engine: Engine, started: tuple[int, int]) -> None:
    from alembic import command

    from lendstack.storage.db import _alembic_config, migrate

    def columns() -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns("funder_exposures")}

    command.downgrade(_alembic_config(engine), "0023")
    assert "flows_through" not in columns()
    migrate(engine)
    assert "flows_through" in columns()
    assert {m for _, m in _rows(engine).values()} == {None}  # unknown: the next close sums
