"""A loan's contract and its serviced state, as plain frozen values.

The contract is a snapshot of the product and the agreed terms at booking: a product file may
change later, a signed loan may not. The state is the loan sub-ledger (balances in exact fen),
the current accrual period and the delinquency fields that close of business maintains.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from lendstack.core.daycount import DayCount
from lendstack.core.money import ZERO, Rounding, quantize_fen
from lendstack.core.records import quick_init
from lendstack.servicing.domain.delinquency import RiskClass
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.schedule import Installment, LoanTerms, RepaymentMethod
from lendstack.servicing.domain.waterfall import Component


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class LoanContract:
    product_id: str
    principal: Decimal
    annual_rate: Decimal
    term_months: int
    method: RepaymentMethod
    disbursement_date: date
    anchor_date: date
    day_count: DayCount
    rounding: Rounding
    grace_days: int
    penalty_multiplier: Decimal
    penalty_rate: Decimal
    """Annual overdue penalty rate fixed at signing (the product's rule applied to the rate)."""
    waterfall: tuple[Component, ...]
    non_accrual_dpd: int
    charge_off_dpd: int
    fee_rate: Decimal = ZERO
    upfront_fee_rate: Decimal = ZERO
    prepayment_fee_rate: Decimal = ZERO
    write_off_days: int | None = None
    """The product's write-off policy at signing: days after charge-off (None: never)."""

    def terms(self) -> LoanTerms:
        return LoanTerms(
            principal=self.principal,
            annual_rate=self.annual_rate,
            term_months=self.term_months,
            method=self.method,
            # a restructured loan's terms run from the restructuring date, its new anchor
            start_date=max(self.disbursement_date, self.anchor_date),
            day_count=self.day_count,
            rounding=self.rounding,
            fee_rate=self.fee_rate,
            upfront_fee_rate=self.upfront_fee_rate,
            anchor_date=self.anchor_date,
        )


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class InstallmentState:
    """One scheduled installment and what has been paid against it."""

    number: int
    start_date: date
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal
    paid_principal: Decimal = ZERO
    paid_interest: Decimal = ZERO
    paid_fee: Decimal = ZERO
    billed: bool = False

    @classmethod
    def scheduled(cls, item: Installment) -> InstallmentState:
        return cls(
            item.number, item.start_date, item.due_date, item.principal, item.interest, item.fee
        )

    @property
    def days(self) -> int:
        return (self.due_date - self.start_date).days

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee

    @property
    def unpaid_principal(self) -> Decimal:
        return self.principal - self.paid_principal

    @property
    def unpaid_interest(self) -> Decimal:
        return self.interest - self.paid_interest

    @property
    def unpaid_fee(self) -> Decimal:
        return self.fee - self.paid_fee

    @property
    def unpaid(self) -> Decimal:
        return self.unpaid_principal + self.unpaid_interest + self.unpaid_fee

    def overdue_on(self, on: date, grace_days: int) -> bool:
        """Overdue once the grace period after the due date has passed unpaid."""
        return self.billed and self.unpaid > ZERO and on > self.due_date + timedelta(grace_days)

    def dpd_on(self, on: date, grace_days: int) -> int:
        return (on - self.due_date).days if self.overdue_on(on, grace_days) else 0

    def pay(self, principal: Decimal, interest: Decimal, fee: Decimal) -> InstallmentState:
        # Built whole: `replace` costs several times a constructor call, and every payment
        # pays an installment or two.
        return InstallmentState(
            self.number,
            self.start_date,
            self.due_date,
            self.principal,
            self.interest,
            self.fee,
            self.paid_principal + principal,
            self.paid_interest + interest,
            self.paid_fee + fee,
            self.billed,
        )


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class Balances:
    """The loan sub-ledger; each field ties to one general-ledger account in aggregate."""

    principal: Decimal = ZERO  # all unpaid principal, billed or not
    interest: Decimal = ZERO  # accrued unpaid interest, billed or not
    fee: Decimal = ZERO  # billed unpaid fees
    penalty: Decimal = ZERO  # accrued unpaid penalty interest
    credit: Decimal = ZERO  # borrower overpayment held for them

    @property
    def receivable(self) -> Decimal:
        return self.principal + self.interest + self.fee + self.penalty

    @property
    def income_receivable(self) -> Decimal:
        """Interest, fees and penalty: what goes to suspense when the loan stops accruing."""
        return self.interest + self.fee + self.penalty


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class AccrualPeriod:
    """The installment period being accrued now; COB spreads its interest over its days."""

    number: int
    start: date
    due: date
    interest: Decimal
    accrued: Decimal = ZERO


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class LoanState:
    id: int
    contract: LoanContract
    status: LoanStatus
    balances: Balances
    installments: tuple[InstallmentState, ...]
    period: AccrualPeriod | None
    schedule_version: int = 1
    dpd: int = 0
    risk_class: RiskClass = RiskClass.NORMAL
    non_accrual: bool = False
    charged_off: Decimal = ZERO  # balance charged off, kept for recoveries
    recovered: Decimal = ZERO
    closed_on: date | None = None

    def installment(self, number: int) -> InstallmentState:
        return next(i for i in self.installments if i.number == number)

    @property
    def oldest_unpaid_due(self) -> date | None:
        unpaid = [i.due_date for i in self.installments if i.billed and i.unpaid > ZERO]
        return min(unpaid) if unpaid else None

    @property
    def unbilled(self) -> tuple[InstallmentState, ...]:
        return tuple(i for i in self.installments if not i.billed)


def accrued_share(interest: Decimal, elapsed: int, days: int, rounding: Rounding) -> Decimal:
    """Interest of a period earned after `elapsed` of its `days`; exact at both ends.

    Interest between due dates accrues linearly over the period's days, `round(interest x
    elapsed / days)` in the loan's rounding mode; close of business applies the same rule in
    SQL (`storage.cob.ACCRUAL_TARGET`)."""
    if days <= 0:
        return interest
    elapsed = max(0, min(elapsed, days))
    return quantize_fen(interest * elapsed / days, rounding)


def accrued_through(loan: LoanState, day: date) -> LoanState:
    """The loan with its current period's interest accrued through the close of `day`, as that
    close's accrual step brings it: a close may defer writing a loan's accrual
    (`storage.cob.accrue`), and a loan read after it is as if it had not."""
    if loan.status is not LoanStatus.ACTIVE:
        return loan
    moved = accrual_through(loan.balances, loan.period, day, loan.contract.rounding)
    if moved is None:
        return loan
    return replace(loan, balances=moved[0], period=moved[1])


def accrual_through(
    balances: Balances, period: AccrualPeriod | None, day: date, rounding: Rounding
) -> tuple[Balances, AccrualPeriod] | None:
    """An active loan's balances and accrual period with the period's interest accrued
    through the close of `day`; None where that close accrues nothing more on it (no period,
    a period starting later, or accrued as far already)."""
    if period is None or period.start >= day:
        return None
    if day >= period.due:
        target = period.interest
    else:
        elapsed, days = (day - period.start).days, (period.due - period.start).days
        target = accrued_share(period.interest, elapsed, days, rounding)
    if target == period.accrued:
        return None
    interest = balances.interest + target - period.accrued
    return replace(balances, interest=interest), replace(period, accrued=target)


def first_period(installments: tuple[InstallmentState, ...]) -> AccrualPeriod | None:
    """The accrual period of the first unbilled installment, if any remain."""
    for item in installments:
        if not item.billed:
            return AccrualPeriod(item.number, item.start_date, item.due_date, item.interest)
    return None


def resume_period(loan: LoanState) -> LoanState:
    """Rebuild the accrual period from the installments and the interest receivable.

    The receivable holds billed unpaid interest plus what the current period has accrued, so
    the difference is the period's accrual.
    """
    period = first_period(loan.installments)
    if period is not None:
        billed = sum((i.unpaid_interest for i in loan.installments if i.billed), ZERO)
        period = replace(period, accrued=loan.balances.interest - billed)
    return replace(loan, period=period)
