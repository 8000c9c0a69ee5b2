"""Conversions between rows and domain values: fen <-> Decimal, epoch days <-> dates."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from lendstack.core.daycount import DayCount, year_days
from lendstack.core.money import Rounding, from_fen, to_fen
from lendstack.servicing.domain.booking import PENALTY_RATE_SCALE, penalty_rate_e8
from lendstack.servicing.domain.delinquency import DEFAULT_BUCKETS, RiskClass
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.loan import (
    AccrualPeriod,
    Balances,
    InstallmentState,
    LoanContract,
    LoanState,
)
from lendstack.servicing.domain.schedule import RepaymentMethod
from lendstack.servicing.domain.waterfall import Component

EPOCH = date(1970, 1, 1)


def to_day(value: date) -> int:
    return (value - EPOCH).days


def from_day(day: int) -> date:
    return EPOCH + timedelta(days=day)


def contract_columns(c: LoanContract) -> dict[str, Any]:
    return {
        "product_id": c.product_id,
        "principal_fen": to_fen(c.principal),
        "annual_rate": str(c.annual_rate),
        "term_months": c.term_months,
        "method": c.method.value,
        "disbursement_date": c.disbursement_date,
        "anchor_date": c.anchor_date,
        "day_count": c.day_count.value,
        "rounding": c.rounding.value,
        "grace_days": c.grace_days,
        "penalty_multiplier": str(c.penalty_multiplier),
        "penalty_rate_e8": penalty_rate_e8(c),
        "year_days": year_days(c.day_count),
        "waterfall": ",".join(x.value for x in c.waterfall),
        "non_accrual_dpd": c.non_accrual_dpd,
        "charge_off_dpd": c.charge_off_dpd,
        "fee_rate": str(c.fee_rate),
        "upfront_fee_rate": str(c.upfront_fee_rate),
        "prepayment_fee_rate": str(c.prepayment_fee_rate),
        "write_off_days": c.write_off_days,
    }


def contract_from(row: Any) -> LoanContract:
    return LoanContract(
        product_id=row.product_id,
        principal=from_fen(row.principal_fen),
        annual_rate=Decimal(row.annual_rate),
        term_months=row.term_months,
        method=RepaymentMethod(row.method),
        disbursement_date=row.disbursement_date,
        anchor_date=row.anchor_date,
        day_count=DayCount(row.day_count),
        rounding=Rounding(row.rounding),
        grace_days=row.grace_days,
        penalty_multiplier=Decimal(row.penalty_multiplier),
        penalty_rate=Decimal(row.penalty_rate_e8) / PENALTY_RATE_SCALE,
        waterfall=tuple(Component(x) for x in row.waterfall.split(",")),
        non_accrual_dpd=row.non_accrual_dpd,
        charge_off_dpd=row.charge_off_dpd,
        fee_rate=Decimal(row.fee_rate),
        upfront_fee_rate=Decimal(row.upfront_fee_rate),
        prepayment_fee_rate=Decimal(row.prepayment_fee_rate),
        write_off_days=row.write_off_days,
    )


def state_columns(loan: LoanState) -> dict[str, Any]:
    """Everything that servicing changes on a loan row, from the domain state."""
    b, p = loan.balances, loan.period
    oldest = loan.oldest_unpaid_due
    return {
        "status": loan.status.value,
        "bal_principal": to_fen(b.principal),
        "bal_interest": to_fen(b.interest),
        "bal_fee": to_fen(b.fee),
        "bal_penalty": to_fen(b.penalty),
        "bal_credit": to_fen(b.credit),
        "period_no": p.number if p else None,
        "period_start": to_day(p.start) if p else None,
        "period_due": to_day(p.due) if p else None,
        "period_interest": to_fen(p.interest) if p else 0,
        "period_accrued": to_fen(p.accrued) if p else 0,
        "oldest_due": to_day(oldest) if oldest else None,
        "dpd": loan.dpd,
        "bucket": DEFAULT_BUCKETS.index_of(loan.dpd),
        "risk_class": loan.risk_class.value,
        "non_accrual": loan.non_accrual,
        "schedule_version": loan.schedule_version,
        "charged_off_fen": to_fen(loan.charged_off),
        "recovered_fen": to_fen(loan.recovered),
        "closed_on": loan.closed_on,
    }


def installment_columns(loan_id: int, version: int, i: InstallmentState) -> dict[str, Any]:
    return {
        "loan_id": loan_id,
        "version": version,
        "number": i.number,
        "start_date": i.start_date,
        "due_date": i.due_date,
        "due_day": to_day(i.due_date),
        "principal_fen": to_fen(i.principal),
        "interest_fen": to_fen(i.interest),
        "fee_fen": to_fen(i.fee),
        "paid_principal_fen": to_fen(i.paid_principal),
        "paid_interest_fen": to_fen(i.paid_interest),
        "paid_fee_fen": to_fen(i.paid_fee),
        "billed": i.billed,
        "active": True,
    }


def installment_from(row: Any) -> InstallmentState:
    return InstallmentState(
        number=row.number,
        start_date=row.start_date,
        due_date=row.due_date,
        principal=from_fen(row.principal_fen),
        interest=from_fen(row.interest_fen),
        fee=from_fen(row.fee_fen),
        paid_principal=from_fen(row.paid_principal_fen),
        paid_interest=from_fen(row.paid_interest_fen),
        paid_fee=from_fen(row.paid_fee_fen),
        billed=bool(row.billed),
    )


def _period_from(row: Any) -> AccrualPeriod | None:
    if row.period_due is None:
        return None
    return AccrualPeriod(
        number=row.period_no,
        start=from_day(row.period_start),
        due=from_day(row.period_due),
        interest=from_fen(row.period_interest),
        accrued=from_fen(row.period_accrued),
    )


def loan_from(row: Any, items: tuple[InstallmentState, ...]) -> LoanState:
    return LoanState(
        id=row.id,
        contract=contract_from(row),
        status=LoanStatus(row.status),
        balances=Balances(
            principal=from_fen(row.bal_principal),
            interest=from_fen(row.bal_interest),
            fee=from_fen(row.bal_fee),
            penalty=from_fen(row.bal_penalty),
            credit=from_fen(row.bal_credit),
        ),
        installments=items,
        period=_period_from(row),
        schedule_version=row.schedule_version,
        dpd=row.dpd,
        risk_class=RiskClass(row.risk_class),
        non_accrual=bool(row.non_accrual),
        charged_off=from_fen(row.charged_off_fen),
        recovered=from_fen(row.recovered_fen),
        closed_on=row.closed_on,
    )
