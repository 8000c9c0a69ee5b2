"""`lendstack collections restructure` end to end: JSON out, idempotent, bad input named.

Every refused request is checked to have written nothing: journal entries, restructurings,
loan events and funder flows are counted before and after.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text

from cli_runner import Run
from lendstack.servicing.cob import close_through
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.servicing.domain.schedule import PrepaymentMode
from lendstack.servicing.services import LoanRequest, Payment, book_loan, quote_payoff, take_payment
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.repositories import SqlUnitOfWork

BOOKED = date(2026, 1, 5)
CLOSED = date(2026, 3, 1)  # loan "late" is about 24 days past its first due date
OPEN = "2026-03-02"
VALIDATION, NOT_FOUND, CONFLICT = 2, 3, 4
TABLES = ("journal_entries", "loan_restructures", "loan_events", "funder_flows", "installments")


@pytest.fixture
def book(engine: Engine, catalog: ProductCatalog) -> dict[str, int]:
    ids = {}
    for name in ("late", "paid", "stale"):
        request = LoanRequest(
            "cash-loan-installment", Decimal("6000.00"), 12, Decimal("0.18"), BOOKED
        )
        ids[name] = book_loan(SqlUnitOfWork(engine), catalog, request).id
    on = BOOKED + timedelta(days=5)
    close_through(SqlCloseStore(engine), on - timedelta(days=1))
    payoff = quote_payoff(SqlUnitOfWork(engine), ids["paid"], on).total
    mode = PrepaymentMode.SHORTEN_TERM
    take_payment(SqlUnitOfWork(engine), Payment(ids["paid"], payoff, on, "payoff", mode))
    close_through(SqlCloseStore(engine), CLOSED)
    return ids


def counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() or 0) for t in TABLES
        )


def restructure(cli: Run, loan: int, *extra: str, on: str = OPEN, term: str = "12"):
    args = ("collections", "restructure", str(loan), "--date", on, "--term", term)
    return cli(*args, "--format", "json", *extra)


def test_restructure_prints_the_record_and_a_repeat_writes_nothing(
    cli: Run, book: dict[str, int], engine: Engine
) -> None:
    first = restructure(cli, book["late"], "--rate", "0.12", "--waive-penalty", term="24")
    assert first.exit_code == 0, first.output
    body = first.json()
    assert body["loan_id"] == book["late"]
    assert (body["option"], body["term_months"], body["rate"]) == ("waive-penalty", 24, "0.12")
    assert (body["class_floor"], body["status"], body["observe_until"]) == (
        "special_mention",
        "observing",
        "2027-03-02",
    )
    total = sum(
        Decimal(body[k]) for k in ("principal_before", "capitalised_interest", "capitalised_fee")
    )
    assert Decimal(body["principal"]) == total
    assert Decimal(body["waived_penalty"]) > 0
    before = counts(engine)
    again = restructure(cli, book["late"], "--rate", "0.12", "--waive-penalty", term="24")
    assert again.exit_code == 0
    assert again.json() == body
    assert counts(engine) == before
    other = restructure(cli, book["late"], term="36")
    assert other.exit_code == CONFLICT
    assert "loan" in other.output
    listed = cli("collections", "restructures", "--loan", str(book["late"]), "--format", "json")
    assert [r["id"] for r in listed.json()] == [body["id"]]
    assert cli("ledger", "check").exit_code == 0


@pytest.mark.parametrize(
    ("loan", "extra", "code", "field"),
    [
        ("late", ("--term", "7"), VALIDATION, "term"),
        ("late", ("--rate", "0.30"), VALIDATION, "rate"),
        ("late", ("--rate", "0.01"), VALIDATION, "rate"),
        ("late", ("--rate", "abc"), VALIDATION, "rate"),
        ("late", ("--date", "2026-03-01"), CONFLICT, "date"),
        ("late", ("--date", "2026-03-05"), CONFLICT, "date"),
        ("late", ("--date", "03/02/2026"), VALIDATION, "date"),
        ("late", ("--capitalise", "--waive-penalty"), VALIDATION, "option"),
        ("paid", (), CONFLICT, "loan"),
        ("missing", (), NOT_FOUND, "loan"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    cli: Run,
    book: dict[str, int],
    engine: Engine,
    loan: str,
    extra: tuple[str, ...],
    code: int,
    field: str,
) -> None:
    loan_id = book.get(loan, 999)
    options = dict(zip(extra[::2], extra[1::2], strict=False))
    on = options.pop("--date", OPEN)
    term = options.pop("--term", "12")
    flags = [e for e in extra if e in ("--capitalise", "--waive-penalty", "--principal-only")]
    rest = [x for kv in options.items() for x in kv if x not in flags]
    before = counts(engine)
    result = restructure(cli, loan_id, *rest, *flags, on=on, term=term)
    assert result.exit_code == code, result.output
    assert field in result.output
    assert counts(engine) == before


def test_a_non_accrual_loan_restructures_principal_only_and_keeps_its_worse_class(
    cli: Run, book: dict[str, int], engine: Engine
) -> None:
    close_through(SqlCloseStore(engine), CLOSED + timedelta(days=100))  # past 90 DPD
    before = counts(engine)
    on = (CLOSED + timedelta(days=101)).isoformat()
    refused = restructure(cli, book["stale"], on=on)  # capitalising suspended income
    assert refused.exit_code == CONFLICT
    assert "option" in refused.output
    assert "non-accrual" in refused.output
    assert counts(engine) == before
    done = restructure(cli, book["stale"], "--principal-only", on=on)
    assert done.exit_code == 0, done.output
    body = done.json()
    assert (body["class_before"], body["class_floor"]) == ("substandard", "substandard")
    assert body["principal"] == body["principal_before"] == "6000.00"
    assert Decimal(body["waived_interest"]) > 0
    assert Decimal(body["waived_penalty"]) > 0
    assert cli("ledger", "check").exit_code == 0


def test_help_names_the_options(cli: Run) -> None:
    result = cli("collections", "restructure", "--help")
    assert result.exit_code == 0
    options = ("--term", "--rate", "--capitalise", "--waive-penalty", "--principal-only")
    for option in (*options, "--format"):
        assert option in result.output
