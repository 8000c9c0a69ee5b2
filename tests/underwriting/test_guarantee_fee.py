"""The co-lenders' guarantee fee in the borrower's all-in APR (REGULATION.md 2.8, 2.9): priced
into the offer once the plan is known, kept under the cap by re-planning without guaranteed
banks, replayed exactly, booked with the loan, and paid to the guarantor, not split by share.

Runs on SQLite and, when LENDSTACK_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import base64
import os
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select

from example_app import application as app_for
from lendstack.core.errors import Conflict
from lendstack.funding import Appetite, Funder, FunderKind, Guarantee, Policy, Quotas
from lendstack.servicing import LoanRequest, Payment, ProductCatalog, quote, take_payment
from lendstack.servicing.cob import close_through
from lendstack.settings import Settings
from lendstack.storage.close_store import SqlCloseStore
from lendstack.storage.funding import SqlFunding
from lendstack.storage.reports import reconcile
from lendstack.storage.repositories import SqlUnitOfWork
from lendstack.storage.schema import funder_flows, funding_plans, loans
from lendstack.underwriting.funding_desk import FundingDesk, recorded_plan
from lendstack.underwriting.origination import originate, plan_terms
from lendstack.underwriting.rerun import replay
from lendstack.underwriting.service import Underwriting
from lendstack.wiring import underwriting_service

BIG = Decimal("1000000000.00")
EVERYONE = (date(2020, 1, 1), date(2030, 12, 31))
DAY = date(2026, 11, 2)


def bank(funder_id: str, cost: str, fee_rate: str | None = None) -> Funder:
    guarantee = None if fee_rate is None else Guarantee(90, Decimal(fee_rate), BIG)
    return Funder(
        id=funder_id, name=funder_id, kind=FunderKind.JOINT_STOCK,
        appetite=Appetite(max_pd=0.5, target_share=Decimal("0.70")),
        funding_cost=Decimal(cost), quotas=Quotas(BIG, BIG * 10),
        tier1_net_capital=BIG, total_loans=BIG * 10, on_platform_list=True, guarantee=guarantee,
    )  # fmt: skip


PLATFORM = Funder(
    id="platform", name="platform", kind=FunderKind.PLATFORM,
    appetite=Appetite(max_pd=0.5, target_share=Decimal("0.50")),
    funding_cost=Decimal("0.05"), quotas=Quotas(BIG, BIG * 10),
)  # fmt: skip


def service_over(engine: Engine, *funders: Funder) -> Underwriting:
    """The wired service, with these partners stored and a desk over them (re-read each plan)."""
    repo = SqlFunding(engine)
    for funder in funders:
        repo.add(funder)
    service = underwriting_service(
        Settings(pii_key=base64.b64encode(os.urandom(32)).decode()), engine
    )
    service.desk = desk(engine)
    return service


def desk(engine: Engine) -> FundingDesk:
    repo = SqlFunding(engine)
    return FundingDesk(repo.all, repo.exposure_map, lambda _d: Policy(), refresh_seconds=0.0)


def per_period(annual: Decimal) -> Decimal:
    """Written out independently of `guarantee_fee_per_period`: annual / 12, 8 places."""
    return (annual / 12).quantize(Decimal("0.00000001"), rounding=ROUND_HALF_UP)


def fees(record: Any) -> dict[str, str]:
    return dict(record["decision"]["offer"]["fees"])


def test_the_guarantee_fee_is_priced_into_the_offer_and_its_apr(engine: Engine) -> None:
    service = service_over(engine, PLATFORM, bank("guarded", "0.02", "0.02"), bank("plain", "0.04"))
    record = service.decide(app_for()).record
    shares = {s["funder_id"]: s for s in record["decision"]["funding"]["shares"]}
    assert set(shares) == {"platform", "guarded"}  # the cheapest bank carries a guarantee
    assert shares["guarded"]["guarantee_fee_rate"] == "0.02"
    expected = per_period(Decimal(shares["guarded"]["share"]) * Decimal("0.02"))
    offer = record["decision"]["offer"]
    assert Decimal(fees(record)["guarantee_fee_rate"]) == expected
    assert Decimal(fees(record)["per_period_fee_rate"]) == expected  # the product's own fee is 0
    principal = Decimal(offer["amount"])
    fee = (principal * expected).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert all(Decimal(row["fee"]) == fee for row in offer["schedule"])
    # The same loan without the fee has a lower IRR: the fee is in the disclosed APR.
    bare = quote(
        service.engine.catalog,
        LoanRequest(
            offer["product_id"],
            principal,
            offer["term_months"],
            Decimal(offer["annual_interest_rate"]),
            DAY,
        ),
    )
    assert Decimal(offer["apr_irr"]) > bare.apr().apr_irr
    assert Decimal(offer["apr_irr"]) <= Decimal("0.24")
    apr_rule = [r for r in record["decision"]["rule_results"] if r["kind"] == "apr_max"]
    assert apr_rule
    assert all(Decimal(str(r["observed"])) == Decimal(offer["apr_irr"]) for r in apr_rule)


def test_a_fee_that_would_break_the_cap_sends_the_loan_to_unguaranteed_banks(
    engine: Engine,
) -> None:
    service = service_over(engine, PLATFORM, bank("greedy", "0.02", "0.30"), bank("plain", "0.04"))
    recorded = service.decide(app_for())
    assert recorded.outcome == "APPROVE"
    shares = {s["funder_id"] for s in recorded.record["decision"]["funding"]["shares"]}
    assert shares == {"platform", "plain"}
    assert "guarantee_fee_rate" not in fees(recorded.record)
    assert Decimal(recorded.record["decision"]["offer"]["apr_irr"]) <= Decimal("0.24")


def test_replay_reprices_guaranteed_decisions_exactly(engine: Engine) -> None:
    service = service_over(engine, PLATFORM, bank("guarded", "0.02", "0.02"))
    service.decide(app_for())
    service.decide(app_for(application_date="2026-11-20", **{"loan.amount": "30000.00"}))
    report = replay(service.log, service.vault, service.engine, service.model_sha256, *EVERYONE)
    assert report.checked == 2
    assert report.ok, report.as_json()


def test_booking_keeps_the_quoted_fee_and_pays_it_to_the_guarantor(
    engine: Engine, catalog: ProductCatalog
) -> None:
    service = service_over(engine, PLATFORM, bank("guarded", "0.02", "0.02"))
    record = service.decide(app_for(application_date=DAY.isoformat())).record
    loan = originate(SqlUnitOfWork(engine), catalog, record, desk(engine))
    with engine.connect() as conn:
        fee_rate = conn.execute(select(loans.c.fee_rate).where(loans.c.id == loan.id)).scalar()
        stored = dict(
            conn.execute(
                select(funding_plans.c.funder_id, funding_plans.c.guarantee_fee_rate).where(
                    funding_plans.c.loan_id == loan.id
                )
            ).all()
        )
    assert Decimal(fee_rate) == Decimal(fees(record)["per_period_fee_rate"])
    assert {k: Decimal(v) for k, v in stored.items()} == {
        "platform": 0,
        "guarded": Decimal("0.02"),
    }
    first = record["decision"]["offer"]["schedule"][0]
    due, fee = date.fromisoformat(first["due_date"]), Decimal(first["fee"])
    close_through(SqlCloseStore(engine), due)  # the installment is billed at the due date's close
    paid_on = due + timedelta(days=1)
    paid = take_payment(
        SqlUnitOfWork(engine), Payment(loan.id, Decimal(first["total"]), paid_on, "g-1")
    )
    assert paid.applied.fee == fee > 0
    with engine.connect() as conn:
        rows = conn.execute(
            select(funder_flows.c.funder_id, funder_flows.c.flow, funder_flows.c.amount_fen).where(
                funder_flows.c.source == f"payment:{paid.id}"
            )
        ).all()
    by_flow = {(r.funder_id, r.flow): r.amount_fen for r in rows}
    # The product charges no fee of its own: the whole fee is the guarantee fee, the
    # guarantor's (the platform), and the bank gets none of it.
    assert by_flow[("platform", "guarantee_fee")] == int(fee * 100)
    assert ("guarded", "fee") not in by_flow
    close_through(SqlCloseStore(engine), paid_on)
    with engine.connect() as conn:
        assert list(reconcile(conn)) == []


def test_booking_refuses_a_confirmed_plan_whose_fee_differs_from_the_quote(engine: Engine) -> None:
    service = service_over(engine, PLATFORM, bank("guarded", "0.02", "0.02"))
    decided = recorded_plan(service.decide(app_for()).record)
    assert decided is not None
    assert decided.guarantee_fee_rate > 0
    # as if the desk had re-allocated the first loan to banks charging no guarantee fee
    fee_free = type(decided)(decided.loan_id, decided.outcome, tuple(
        type(s)(s.funder_id, s.share, s.amount) for s in decided.shares
    ))  # fmt: skip
    with pytest.raises(Conflict, match="guarantee fee"):
        plan_terms(fee_free, decided)
    assert plan_terms(decided, decided).guarantee_fee_rates == {"guarded": Decimal("0.02")}
