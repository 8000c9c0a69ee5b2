"""Collections end to end through the CLI on a real book: queue, plan, record, ptp across a close.

Loans are booked and serviced by the real services and close of business, so DPD, buckets and
balances are the ones the close computes. Bad input writes nothing: the collections tables
are counted before and after.
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

BOOKED = date(2026, 1, 31)
CLOSED = date(2026, 3, 20)  # first due 2026-02-28: unpaid loans are 20 DPD (M1)
OPEN = "2026-03-21"
VALIDATION, NOT_FOUND, CONFLICT = 2, 3, 4


@pytest.fixture
def served(engine: Engine, catalog: ProductCatalog) -> dict[str, int]:
    """Loan 1 (12,000) and loan 2 (3,000) delinquent, loan 3 paid off; closed through CLOSED."""
    uow = SqlUnitOfWork(engine)
    ids = {}
    for name, amount in (("big", "12000"), ("small", "3000"), ("paid", "2000")):
        request = LoanRequest("cash-loan-installment", Decimal(amount), 12, Decimal("0.18"), BOOKED)
        ids[name] = book_loan(SqlUnitOfWork(engine), catalog, request).id
    on = BOOKED + timedelta(days=10)
    close_through(SqlCloseStore(engine), on - timedelta(days=1))
    quote = quote_payoff(uow, ids["paid"], on)
    payoff = Payment(ids["paid"], quote.total, on, "payoff", PrepaymentMode.SHORTEN_TERM)
    take_payment(SqlUnitOfWork(engine), payoff)
    close_through(SqlCloseStore(engine), CLOSED)
    return ids


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        contacts = conn.execute(text("SELECT COUNT(*) FROM collection_contacts")).scalar()
        promises = conn.execute(text("SELECT COUNT(*) FROM promises_to_pay")).scalar()
    return int(contacts or 0), int(promises or 0)


def call(cli: Run, loan: int, at: str, outcome: str = "no_answer", *extra: str):
    return cli(
        "collections",
        "record",
        str(loan),
        "--channel",
        "call",
        "--at",
        at,
        "--party",
        "debtor",
        "--outcome",
        outcome,
        "--format",
        "json",
        *extra,
    )


def test_queue_ranks_the_delinquent_loans_by_expected_recovery(cli: Run, served, engine) -> None:
    result = cli("collections", "queue", "--date", OPEN, "--format", "json")
    assert result.exit_code == 0, result.output
    body = result.json()
    rows = body["queue"]
    assert [r["loan_id"] for r in rows] == [served["big"], served["small"]]
    with engine.connect() as conn:
        db = dict(
            conn.execute(
                text(
                    "SELECT id, bal_principal + bal_interest + bal_fee + bal_penalty FROM loans"
                    " WHERE dpd > 0"
                )
            ).all()
        )
    for r in rows:
        assert r["bucket"] == "M1"
        assert r["dpd"] == 20
        assert r["strategy"] == "m1_sms_push"
        balance = Decimal(db[r["loan_id"]]) / 100
        assert Decimal(r["balance"]) == balance
        # shipped file: M1 p = 0.85 under 5,000 and 0.80 from 5,000 to 20,000; sms + push 0.06
        p = Decimal("0.80") if balance >= 5000 else Decimal("0.85")
        gross = (balance * p).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        assert Decimal(r["expected_recovery"]) == gross - Decimal("0.06")
    assert served["paid"] not in [r["loan_id"] for r in rows]
    assert (
        cli("collections", "queue", "--date", OPEN, "--limit", "1", "--format", "json").json()[
            "loans"
        ]
        == 2
    )


def test_queue_and_plan_refuse_a_closed_date(cli: Run, served) -> None:
    for command in ("queue", "plan"):
        result = cli("collections", command, "--date", CLOSED.isoformat())
        assert result.exit_code == CONFLICT
        assert "date" in result.output


def test_the_seventh_unanswered_call_is_refused_logged_and_the_plan_knows(
    cli: Run, served, engine
) -> None:
    loan = served["big"]
    for minute in range(6):
        done = call(cli, loan, f"2026-03-21T10:0{minute}")
        assert done.exit_code == 0, done.output
        assert done.json()["allowed"]
    seventh = call(cli, loan, "2026-03-21T11:00")
    assert seventh.exit_code == CONFLICT
    assert seventh.json()["refusals"][0]["reason"] == "MAX_ATTEMPTS"
    assert "MAX_ATTEMPTS" in seventh.output
    assert "refused and logged" in seventh.output
    # the refusal is in the audit log, and refused attempts do not count as made
    log = cli("collections", "contacts", str(loan), "--format", "json").json()
    assert [row["allowed"] for row in log] == [True] * 6 + [False]
    # a message is still fine, another number is counted separately, and tomorrow starts afresh
    sms = cli(
        "collections",
        "record",
        str(loan),
        "--channel",
        "sms",
        "--at",
        "2026-03-21T12:00",
        "--party",
        "debtor",
        "--outcome",
        "delivered",
    )
    assert sms.exit_code == 0
    assert (
        call(cli, loan, "2026-03-21T12:00", "no_answer", "--number", "13900000000").exit_code == 0
    )
    assert call(cli, loan, "2026-03-22T09:00").exit_code == 0
    # an answered call does not count towards the unanswered limit
    other = served["small"]
    for minute in range(5):
        assert call(cli, other, f"2026-03-21T10:0{minute}").exit_code == 0
    assert call(cli, other, "2026-03-21T10:30", "answered").exit_code == 0
    assert call(cli, other, "2026-03-21T10:40").exit_code == 0  # the 6th unanswered
    assert call(cli, other, "2026-03-21T10:50").exit_code == CONFLICT


def test_plan_lists_refusals_with_reasons(cli: Run, served, engine, tmp_path) -> None:
    strategies = tmp_path / "night.toml"
    from importlib import resources

    shipped = (resources.files("lendstack.collections") / "strategies" / "default.toml").read_text(
        encoding="utf-8"
    )
    strategies.write_text(shipped.replace('at = "19:00"', 'at = "22:00"'), encoding="utf-8")
    result = cli(
        "collections",
        "plan",
        "--date",
        OPEN,
        "--strategies",
        str(strategies),
        "--format",
        "json",
        "--out",
        str(tmp_path / "plan"),
    )
    assert result.exit_code == 0, result.output
    body = result.json()
    assert body["planned_attempts_by_channel"] == {"sms": 2}
    assert body["refused_attempts_by_reason"] == {"QUIET_HOURS": 2}  # both M1 pushes at 22:00
    assert {r["loan_id"] for r in body["refused"]} == {served["big"], served["small"]}
    assert all(r["rule_id"] == "CN.COLLECTION.QUIET_HOURS" for r in body["refused"])
    assert (tmp_path / "plan.planned.parquet").is_file()


def test_consent_at_22_is_allowed_and_recorded(cli: Run, served) -> None:
    loan = served["big"]
    assert call(cli, loan, "2026-03-21T22:00").exit_code == CONFLICT
    assert call(cli, loan, "2026-03-21T21:59").exit_code == 0
    assert call(cli, loan, "2026-03-21T22:00", "answered", "--consent").exit_code == 0
    log = cli("collections", "contacts", str(loan), "--format", "json").json()
    assert [(r["local_time"], r["allowed"], r["consent"]) for r in log] == [
        ("22:00", False, False),
        ("21:59", True, False),
        ("22:00", True, True),
    ]


BAD_CONTACTS = [
    (["--channel", "pigeon"], VALIDATION, "channel"),
    (["--party", "neighbour"], VALIDATION, "party"),
    (["--outcome", "maybe"], VALIDATION, "outcome"),
    (["--at", "yesterday"], VALIDATION, "at"),
]


def test_bad_contact_input_writes_nothing(cli: Run, served, engine) -> None:
    for args, code, field in BAD_CONTACTS:
        base = {
            "--channel": "call",
            "--party": "debtor",
            "--outcome": "no_answer",
            "--at": "2026-03-21T10:00",
        }
        base.update(dict(zip(args[::2], args[1::2], strict=True)))
        before = counts(engine)
        argv = [x for pair in base.items() for x in pair]
        result = cli("collections", "record", str(served["big"]), *argv)
        assert result.exit_code == code, args
        assert f"{field}:" in result.output
        assert counts(engine) == before


def test_contact_for_a_closed_or_unknown_loan_is_rejected_naming_it(
    cli: Run, served, engine
) -> None:
    before = counts(engine)
    closed = call(cli, served["paid"], "2026-03-21T10:00")
    assert closed.exit_code == CONFLICT
    assert f"loan {served['paid']} is paid_off" in closed.output
    unknown = call(cli, 999, "2026-03-21T10:00")
    assert unknown.exit_code == NOT_FOUND
    assert "no loan 999" in unknown.output
    assert counts(engine) == before


def test_promises_kept_and_broken_across_the_close(cli: Run, served, engine, catalog) -> None:
    big, small = served["big"], served["small"]
    kept = cli(
        "collections",
        "ptp",
        str(big),
        "--amount",
        "500.00",
        "--date",
        "2026-03-23",
        "--format",
        "json",
    )
    assert kept.exit_code == 0, kept.output
    assert kept.json()["promised_on"] == OPEN
    assert (
        cli("collections", "ptp", str(small), "--amount", "300", "--date", "2026-03-22").exit_code
        == 0
    )
    store = SqlCloseStore(engine)
    # the debtor of `big` pays 200 on the 21st and 300 on the 22nd: 500 in all, kept
    take_payment(SqlUnitOfWork(engine), Payment(big, Decimal("200"), date(2026, 3, 21), "a"))
    close_through(store, date(2026, 3, 21))
    status = {
        p["loan_id"]: p["status"] for p in cli("collections", "promises", "--format", "json").json()
    }
    assert status == {big: "open", small: "open"}
    take_payment(SqlUnitOfWork(engine), Payment(big, Decimal("300"), date(2026, 3, 22), "b"))
    # `small` pays 299.99 of 300 by its date: broken, by one fen
    take_payment(SqlUnitOfWork(engine), Payment(small, Decimal("299.99"), date(2026, 3, 22), "c"))
    close_through(store, date(2026, 3, 22))
    rows = {p["loan_id"]: p for p in cli("collections", "promises", "--format", "json").json()}
    assert (rows[big]["status"], rows[big]["paid"], rows[big]["resolved_on"]) == (
        "kept",
        "500.00",
        "2026-03-22",
    )
    assert (rows[small]["status"], rows[small]["paid"]) == ("broken", "299.99")
    with engine.connect() as conn:
        steps = conn.execute(
            text(
                "SELECT rows FROM cob_steps WHERE step = 'collections' AND business_date = '2026-03-22'"
            )
        ).scalar()
    assert steps == 2
    # resolved promises are not touched again by later closes
    close_through(store, date(2026, 3, 25))
    again = {
        p["loan_id"]: p["resolved_on"]
        for p in cli("collections", "promises", "--format", "json").json()
    }
    assert again == {big: "2026-03-22", small: "2026-03-22"}


BAD_PROMISES = [
    (["1", "--amount", "-5", "--date", "2026-03-25"], VALIDATION, "amount"),
    (["1", "--amount", "0.001", "--date", "2026-03-25"], VALIDATION, "amount"),
    (["1", "--amount", "99999", "--date", "2026-03-25"], VALIDATION, "amount"),
    (["1", "--amount", "10", "--date", "2026-03-20"], VALIDATION, "date"),
    (["1", "--amount", "10", "--date", "2026-13-01"], VALIDATION, "date"),
    (["3", "--amount", "10", "--date", "2026-03-25"], CONFLICT, "loan"),
    (["42", "--amount", "10", "--date", "2026-03-25"], NOT_FOUND, "loan"),
]


def test_bad_promises_write_nothing(cli: Run, served, engine) -> None:
    for args, code, field in BAD_PROMISES:
        before = counts(engine)
        result = cli("collections", "ptp", *args)
        assert result.exit_code == code, (args, result.output)
        assert f"{field}:" in result.output, (args, result.output)
        assert counts(engine) == before


def test_a_second_open_promise_is_a_conflict(cli: Run, served, engine) -> None:
    assert cli("collections", "ptp", "1", "--amount", "10", "--date", "2026-03-25").exit_code == 0
    before = counts(engine)
    again = cli("collections", "ptp", "1", "--amount", "20", "--date", "2026-03-26")
    assert again.exit_code == CONFLICT
    assert "already has open promise" in again.output
    assert counts(engine) == before


def emergency(cli: Run, loan: int, at: str):
    return cli(
        "collections",
        "record",
        str(loan),
        "--channel",
        "call",
        "--at",
        at,
        "--party",
        "emergency",
        "--outcome",
        "answered",
        "--format",
        "json",
    )


def test_emergency_contact_only_once_the_log_shows_the_debtor_unreachable(
    cli: Run, served, engine
) -> None:
    from lendstack.collections import default_pack
    from lendstack.storage.collections import log_facts

    big, small = served["big"], served["small"]
    refused = emergency(cli, big, "2026-03-21T15:00")
    assert refused.exit_code == CONFLICT
    assert refused.json()["refusals"][0]["reason"] == "DEBTOR_REACHABLE"
    # six unanswered debtor calls over the last two days (window 3 days), none answered
    for day, minute in [(20, m) for m in range(3)] + [(21, m) for m in range(3)]:
        assert call(cli, big, f"2026-03-{day}T10:0{minute}").exit_code == 0
    assert emergency(cli, big, "2026-03-21T15:00").exit_code == 0
    # a debtor who answered once in the window is reachable
    for minute in range(5):
        assert call(cli, small, f"2026-03-21T09:0{minute}").exit_code == 0
    assert call(cli, small, "2026-03-21T09:30", "answered").exit_code == 0  # 6 attempts
    assert emergency(cli, small, "2026-03-21T15:00").exit_code == CONFLICT
    # a number logged as out of service makes the debtor unreachable at once
    assert (
        cli(
            "collections",
            "record",
            str(small),
            "--channel",
            "call",
            "--at",
            "2026-03-22T09:00",
            "--party",
            "debtor",
            "--outcome",
            "unreachable",
        ).exit_code
        == 0
    )
    assert emergency(cli, small, "2026-03-22T15:00").exit_code == 0
    with engine.connect() as conn:
        facts = log_facts(conn, date(2026, 3, 21), default_pack())
        later = log_facts(conn, date(2026, 3, 22), default_pack())
    assert facts.unreachable_loan.tolist() == [big]
    assert later.unreachable_loan.tolist() == [big, small]
    assert dict(
        zip(facts.debtor_calls_loan.tolist(), facts.debtor_calls_count.tolist(), strict=True)
    ) == {big: 3, small: 5}
