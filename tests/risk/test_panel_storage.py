"""The loan-month panel from the book: the close's month_end step, loan profiles written at
booking, and the Parquet export, on SQLite and (when configured) PostgreSQL.

The book is serviced through the real services and the real close (`panel_book`); every row
is checked against figures worked out by hand from the loans' schedules.
"""

from __future__ import annotations

import base64
import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine, select, text

from example_app import application as app_for
from lendstack.core.errors import NotFound
from lendstack.core.money import to_fen
from lendstack.risk.panel import PANEL_SCHEMA, validate_panel
from lendstack.servicing import LoanProfile, LoanRequest, PlanTerms, ProductCatalog, book_loan
from lendstack.servicing.cob import CobStep, close_day, close_through
from lendstack.servicing.services import get_loan
from lendstack.settings import Settings
from lendstack.storage.analytics import export_panel, read_panel
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.cob import STEP_SQL
from lendstack.storage.funding import SqlFunding
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.schema import loan_month_ends, loan_profiles
from lendstack.underwriting.funding_desk import recorded_plan
from lendstack.underwriting.origination import originate
from lendstack.wiring import booking_desk, underwriting_service
from risk.panel_book import START, Book, build_book, catalog_with_fast_charge_off

JAN, FEB, MAR, APR = date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)
FULL = 1_000_000  # 10,000.00 in fen
BANK = "harbour-joint-stock"


@pytest.fixture
def book(engine: Engine, tmp_path: Path) -> Book:
    return build_book(engine, catalog_with_fast_charge_off(tmp_path / "products"), APR)


def rows(engine: Engine, loan_id: int) -> list[tuple[Any, ...]]:
    """(month_end, MOB, state, DPD, principal, class, FPD) of one loan, oldest first."""
    c = loan_month_ends.c
    query = (
        select(c.month_end, c.months_on_book, c.state, c.dpd, c.principal_fen, c.risk_class,
               c.first_payment_default)
        .where(c.loan_id == loan_id)
        .order_by(c.month_end)
    )  # fmt: skip
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def principal_after(engine: Engine, loan_id: int, paid_installments: int) -> int:
    """The loan's principal once its first `paid_installments` installments are paid."""
    items = get_loan(SqlUnitOfWork(engine), loan_id).installments
    return FULL - sum(to_fen(i.principal) for i in items[:paid_installments])


SM, NORMAL = "special_mention", "normal"


def test_a_current_loan_has_a_row_every_month_end_from_mob_0(book: Book) -> None:
    good = book.ids["good"]
    paid = [principal_after(book.engine, good, k) for k in range(4)]
    assert rows(book.engine, good) == [
        (JAN, 0, "M0", 0, FULL, NORMAL, False),
        (FEB, 1, "M0", 0, paid[1], NORMAL, False),
        (MAR, 2, "M0", 0, paid[2], NORMAL, False),
        (APR, 3, "M0", 0, paid[3], NORMAL, False),
    ]
    assert paid[1] == 839_763  # 10,000.00 less installment 1's principal of 1,602.37


def test_a_payoff_leaves_one_po_row_and_nothing_after(book: Book) -> None:
    assert rows(book.engine, book.ids["payoff"]) == [
        (JAN, 0, "M0", 0, FULL, NORMAL, False),
        (FEB, 1, "PO", 0, 0, NORMAL, False),
    ]


def test_a_loan_that_never_pays_rolls_m1_m2_m3_and_defaults_its_first_payment(
    book: Book,
) -> None:
    # Due 02-15, DPD counted from the 19th (grace 3): 13 on 02-28, 44 on 03-31, 74 on 04-30;
    # installment 1 reached 30 DPD on 03-17.
    assert rows(book.engine, book.ids["never"]) == [
        (JAN, 0, "M0", 0, FULL, NORMAL, False),
        (FEB, 1, "M1", 13, FULL, SM, False),
        (MAR, 2, "M2", 44, FULL, SM, True),
        (APR, 3, "M3", 74, FULL, SM, True),
    ]


def test_a_first_payment_cured_before_the_month_end_still_counts_as_fpd(book: Book) -> None:
    late = book.ids["late"]
    two_paid = principal_after(book.engine, late, 2)
    assert rows(book.engine, late) == [
        (JAN, 0, "M0", 0, FULL, NORMAL, False),
        (FEB, 1, "M1", 13, FULL, SM, False),
        (MAR, 2, "M0", 0, two_paid, NORMAL, True),  # paid 03-20 at 33 DPD: current, but FPD
        (APR, 3, "M1", 15, two_paid, SM, True),  # installment 3 (04-15) unpaid
    ]


def test_a_charge_off_leaves_one_co_row_with_the_principal_written_off(book: Book) -> None:
    # 35 DPD on 03-22: charged off at that DPD and class, the whole principal written off.
    assert rows(book.engine, book.ids["written"]) == [
        (JAN, 0, "M0", 0, FULL, NORMAL, False),
        (FEB, 1, "M1", 13, FULL, SM, False),
        (MAR, 2, "CO", 35, FULL, SM, True),
    ]


def test_a_later_cohort_starts_at_mob_0_in_its_own_month(book: Book) -> None:
    loan_id = book.ids["february"]
    assert rows(book.engine, loan_id) == [
        (FEB, 0, "M0", 0, FULL, NORMAL, False),
        (MAR, 1, "M1", 21, FULL, SM, False),  # due 03-10
        (APR, 2, "M2", 51, FULL, SM, True),  # 30 DPD on 04-09
    ]
    with book.engine.connect() as conn:
        cohort = conn.execute(
            select(loan_month_ends.c.origination_month).where(loan_month_ends.c.loan_id == loan_id)
        ).scalars()
        assert set(cohort) == {date(2026, 2, 1)}


def test_a_payoff_reversed_after_its_month_end_is_restated_not_appended(book: Book) -> None:
    # Paid off 02-16 (a PO row on 02-28, none on 03-31), reversed on 04-05: the PO row becomes
    # the loan's state then, the missed March row is filled in, and the panel stays valid.
    assert rows(book.engine, book.ids["reversed"]) == [
        (JAN, 0, "M0", 0, FULL, NORMAL, False),
        (FEB, 1, "M1", 13, FULL, SM, False),  # bullet: grace 1, due 02-15
        (MAR, 2, "M2", 44, FULL, SM, True),
        (APR, 3, "M3", 74, FULL, SM, True),
    ]
    validate_panel(read_panel(book.engine), check_values=True).collect()


def test_loans_without_a_profile_read_unknown_and_platform(book: Book) -> None:
    with book.engine.connect() as conn:
        dims = conn.execute(
            text("SELECT DISTINCT funder, province, channel FROM loan_month_ends")
        ).all()
    assert [tuple(d) for d in dims] == [("platform", "unknown", "unknown")]


def test_rows_are_written_on_month_ends_only(engine: Engine, tmp_path: Path) -> None:
    catalog = catalog_with_fast_charge_off(tmp_path / "products")
    build_book(engine, catalog, date(2026, 1, 30))
    store = SqlCloseStore(engine)
    assert count(engine) == 0
    closed = close_day(store, JAN)
    assert dict(closed.rows)[CobStep.MONTH_END] == 6  # the six loans booked in January
    assert count(engine) == 6
    close_through(store, date(2026, 2, 27))
    assert count(engine) == 6


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM loan_month_ends")).scalar_one())


def test_a_close_that_fails_after_the_month_end_step_leaves_no_rows(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step's rows commit with the date or not at all; running it again writes them once."""
    catalog = catalog_with_fast_charge_off(tmp_path / "products")
    build_book(engine, catalog, date(2026, 3, 30))
    before = count(engine)
    with engine.connect() as conn:
        fpd_before = conn.execute(text("SELECT COUNT(*) FROM first_payment_defaults")).scalar()

    seen: list[int] = []

    def crash(conn: Any, day: date) -> int:
        written = text("SELECT COUNT(*) FROM loan_month_ends WHERE month_end = :d")
        seen.append(int(conn.execute(written, {"d": day}).scalar_one()))
        raise RuntimeError("killed after the month-end step")

    monkeypatch.setitem(STEP_SQL, CobStep.SNAPSHOT, crash)
    store = SqlCloseStore(engine)
    with pytest.raises(RuntimeError, match="killed"):
        close_day(store, MAR)
    assert seen == [5]  # written inside the close's transaction...
    assert store.last_closed() == date(2026, 3, 30)
    assert count(engine) == before  # ...and gone with it
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM first_payment_defaults")).scalar() == (
            fpd_before
        )
    monkeypatch.undo()
    close_day(store, MAR)
    # good, never, late and february on the books; written charged off in March
    assert count(engine) == before + 5
    assert close_day(store, MAR).skipped
    assert count(engine) == before + 5


def test_the_export_round_trips_through_the_validator(book: Book, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "panel.parquet"
    done = export_panel(book.engine, out, None)
    assert (done.rows, done.loans) == (24, 7)
    assert (done.first_month_end, done.last_month_end) == (JAN, APR)
    written = pl.read_parquet(out)
    assert written.schema == PANEL_SCHEMA
    checked = validate_panel(written, check_values=True).collect()
    assert checked.equals(read_panel(book.engine))
    assert checked["loan_id"].is_sorted()
    assert [p.name for p in out.parent.iterdir()] == ["panel.parquet"]  # no temporary left
    through = export_panel(book.engine, out, date(2026, 3, 15))
    assert (through.rows, through.last_month_end) == (13, FEB)
    assert pl.read_parquet(out)["month_end"].max() == FEB


def test_no_month_end_yet_is_not_found_and_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "panel.parquet"
    with pytest.raises(NotFound) as caught:
        export_panel(engine, out, None)
    assert caught.value.field == "date"
    assert not out.parent.exists()


def test_a_profile_and_funding_plan_give_the_rows_their_dimensions(
    engine: Engine, catalog: ProductCatalog
) -> None:
    SqlFunding(engine).import_builtin()
    request = LoanRequest("cash-loan-installment", Decimal("10000.00"), 6, Decimal("0.18"), START)
    profile = LoanProfile("mall-app", "Zhejiang", "travel", "d-1", 0.031)
    shares = {"platform": Decimal("0.3"), BANK: Decimal("0.7")}
    profiled = book_loan(SqlUnitOfWork(engine), catalog, request, fund=lambda: PlanTerms(shares),
                         profile=profile).id  # fmt: skip
    planned_later = book_loan(SqlUnitOfWork(engine), catalog, request).id
    SqlFunding(engine).record_plan(engine, planned_later, {"platform": Decimal("1")})
    close_through(SqlCloseStore(engine), JAN)
    with engine.connect() as conn:
        stored = conn.execute(select(loan_profiles)).all()
        dims = conn.execute(
            text("SELECT loan_id, funder, province, channel FROM loan_month_ends ORDER BY loan_id")
        ).all()
    assert [tuple(r) for r in stored] == [
        (profiled, "d-1", "mall-app", "Zhejiang", "travel", 0.031, BANK)
    ]
    assert [tuple(r) for r in dims] == [
        (profiled, BANK, "Zhejiang", "mall-app"),
        (planned_later, "platform", "unknown", "unknown"),
    ]


def test_originate_writes_the_decisions_profile_in_the_booking(
    engine: Engine, catalog: ProductCatalog
) -> None:
    settings = Settings(pii_key=base64.b64encode(os.urandom(32)).decode())
    SqlFunding(engine).import_builtin()
    service = underwriting_service(settings, engine)
    recorded = service.decide(app_for())
    plan = recorded_plan(recorded.record)
    assert plan is not None
    loan = originate(
        SqlUnitOfWork(engine), catalog, recorded.record, booking_desk(settings, engine)
    )
    lead = min(plan.share_map().items(), key=lambda kv: (-kv[1], kv[0]))[0]  # largest share
    with engine.connect() as conn:
        stored = conn.execute(select(loan_profiles)).one()
    pd = float(recorded.record["decision"]["score"]["pd"])
    assert tuple(stored) == (
        loan.id, recorded.decision_id, "mall-app", "Guangdong", "home_furnishing", pd, lead
    )  # fmt: skip
    close_through(SqlCloseStore(engine), date(2026, 11, 30))
    panel = read_panel(engine)
    assert panel.select("funder", "province", "channel", "months_on_book").rows() == [
        (lead, "Guangdong", "mall-app", 0)
    ]
