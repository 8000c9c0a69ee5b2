"""Booking: a contract becomes an active loan with its schedule and disbursement entry."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from lendstack.core.errors import ValidationError
from lendstack.servicing.domain.delinquency import RiskClass
from lendstack.servicing.domain.ledger import (
    Account,
    EventType,
    JournalEntry,
    Side,
    entry_or_none,
    leg,
)
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.loan import (
    Balances,
    InstallmentState,
    LoanContract,
    LoanState,
    first_period,
)
from lendstack.servicing.domain.products import Product
from lendstack.servicing.domain.schedule import Schedule

PENALTY_RATE_SCALE = 10**8


def contract_for(product: Product, schedule: Schedule) -> LoanContract:
    """Snapshot the product's servicing rules and the agreed terms into the loan contract."""
    terms = schedule.terms
    contract = LoanContract(
        product_id=product.id,
        principal=terms.principal,
        annual_rate=terms.annual_rate,
        term_months=terms.term_months,
        method=terms.method,
        disbursement_date=terms.start_date,
        anchor_date=terms.anchor,
        day_count=terms.day_count,
        rounding=terms.rounding,
        grace_days=product.grace_days,
        penalty_multiplier=product.penalty_multiplier,
        penalty_rate=product.penalty_rate(terms.annual_rate),
        waterfall=product.waterfall,
        non_accrual_dpd=product.non_accrual_dpd,
        charge_off_dpd=product.charge_off_dpd,
        write_off_days=product.write_off_days,
        fee_rate=terms.fee_rate,
        upfront_fee_rate=terms.upfront_fee_rate,
        prepayment_fee_rate=product.prepayment_fee_rate,
    )
    penalty_rate_e8(contract)  # refuse, at booking, a rate the close cannot express exactly
    return contract


def penalty_rate_e8(contract: LoanContract) -> int:
    """The annual penalty rate as an integer × 1e8, the form the set-based close computes with."""
    scaled = contract.penalty_rate * PENALTY_RATE_SCALE
    if scaled != scaled.to_integral_value():
        raise ValidationError(
            f"rate × penalty multiplier ({contract.penalty_rate}) needs at most 8 decimals",
            field="rate",
        )
    return int(scaled)


def open_loan(contract: LoanContract, schedule: Schedule) -> LoanState:
    """The new loan's state; its id is assigned when stored."""
    items = tuple(InstallmentState.scheduled(i) for i in schedule.installments)
    return LoanState(
        id=0,
        contract=contract,
        status=LoanStatus.ACTIVE,
        balances=Balances(principal=contract.principal),
        installments=items,
        period=first_period(items),
        risk_class=RiskClass.NORMAL,
    )


def with_id(loan: LoanState, loan_id: int) -> LoanState:
    return replace(loan, id=loan_id)


def disbursement_entry(loan: LoanState, schedule: Schedule, on: date) -> JournalEntry:
    """Principal receivable against cash paid out; an upfront fee is earned at disbursement."""
    lid = loan.id
    postings = [
        leg(Account.PRINCIPAL_RECEIVABLE, Side.DEBIT, loan.contract.principal, lid),
        leg(Account.CASH, Side.CREDIT, schedule.net_disbursement, lid),
        leg(Account.FEE_INCOME, Side.CREDIT, schedule.upfront_fee, lid),
    ]
    entry = entry_or_none(EventType.DISBURSEMENT, on, f"disbursement:{lid}", postings)
    assert entry is not None
    return entry
