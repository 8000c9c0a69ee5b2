"""Booking: a contract becomes an active loan with its schedule and disbursement entry."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date
from decimal import Decimal
from operator import attrgetter
from typing import Any

from lendstack.core.errors import ValidationError
from lendstack.core.records import field_values
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
    AccrualPeriod,
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


@dataclass(frozen=True, slots=True)
class Opening:
    """What booking a request opens, before the loan is stored: the new loan (id 0) and the
    two amounts its disbursement entry takes from the schedule.

    It is a pure function of the product and the request (`services.opening`), so it can be
    computed ahead, where the loan is decided, and handed to the booking
    (`services.Booking.opening`), which then neither prices nor schedules the loan again. It
    pickles as the plain values of its records (`_packed`): a dozen installments rebuilt
    through their constructors cost a quarter of scheduling the loan again, where pickle's
    own field-by-field restore of each frozen record cost most of it.
    """

    loan: LoanState
    net_disbursement: Decimal
    upfront_fee: Decimal

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpacked, (_packed(self.loan), self.net_disbursement, self.upfront_fee))


_CONTRACT, _ITEM = field_values(LoanContract), field_values(InstallmentState)
_BALANCES, _PERIOD = field_values(Balances), field_values(AccrualPeriod)
_STATE_REST = attrgetter(
    "schedule_version", "dpd", "risk_class", "non_accrual", "charged_off", "recovered",
    "closed_on",
)  # fmt: skip
_STATE_ORDER = ("id", "contract", "status", "balances", "installments", "period",
                "schedule_version", "dpd", "risk_class", "non_accrual", "charged_off",
                "recovered", "closed_on")  # fmt: skip
if tuple(f.name for f in fields(LoanState)) != _STATE_ORDER:  # pragma: no cover
    raise ImportError("LoanState's fields changed: update Opening's packing")


def _packed(loan: LoanState) -> tuple[Any, ...]:
    """A loan state as nested tuples of its records' field values (`_unpacked` rebuilds it)."""
    period = loan.period
    return (
        loan.id,
        _CONTRACT(loan.contract),
        loan.status,
        _BALANCES(loan.balances),
        tuple(map(_ITEM, loan.installments)),
        None if period is None else _PERIOD(period),
        _STATE_REST(loan),
    )


def _unpacked(packed: tuple[Any, ...], net_disbursement: Decimal, upfront_fee: Decimal) -> Opening:
    loan_id, contract, status, balances, items, period, rest = packed
    loan = LoanState(
        loan_id,
        LoanContract(*contract),
        status,
        Balances(*balances),
        tuple([InstallmentState(*item) for item in items]),
        None if period is None else AccrualPeriod(*period),
        *rest,
    )
    return Opening(loan, net_disbursement, upfront_fee)


def opening_of(contract: LoanContract, schedule: Schedule) -> Opening:
    """The opening of a contract on its schedule (`services.opening` finds both)."""
    return Opening(open_loan(contract, schedule), schedule.net_disbursement, schedule.upfront_fee)


def disbursement_entry(loan: LoanState, opening: Opening, on: date) -> JournalEntry:
    """Principal receivable against cash paid out; an upfront fee is earned at disbursement.
    `loan` is the opening's loan once stored (with its id)."""
    lid = loan.id
    postings = [
        leg(Account.PRINCIPAL_RECEIVABLE, Side.DEBIT, loan.contract.principal, lid),
        leg(Account.CASH, Side.CREDIT, opening.net_disbursement, lid),
        leg(Account.FEE_INCOME, Side.CREDIT, opening.upfront_fee, lid),
    ]
    entry = entry_or_none(EventType.DISBURSEMENT, on, f"disbursement:{lid}", postings)
    assert entry is not None
    return entry
