"""Conversions between rows and domain values: fen <-> Decimal, epoch days <-> dates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any, TypeVar

from lendstack.core.daycount import DayCount, year_days
from lendstack.core.money import ZERO, Rounding, from_fen, to_fen
from lendstack.servicing.domain.bills import Bill
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
from lendstack.servicing.domain.payments import InstallmentPart
from lendstack.servicing.domain.schedule import RepaymentMethod
from lendstack.servicing.domain.waterfall import Component

EPOCH = date(1970, 1, 1)


def to_day(value: date) -> int:
    return (value - EPOCH).days


def from_day(day: int) -> date:
    return EPOCH + timedelta(days=day)


CONTRACT_COLUMNS = (
    "product_id",
    "principal_fen",
    "annual_rate",
    "term_months",
    "method",
    "disbursement_date",
    "anchor_date",
    "day_count",
    "rounding",
    "grace_days",
    "penalty_multiplier",
    "penalty_rate_e8",
    "year_days",
    "waterfall",
    "non_accrual_dpd",
    "charge_off_dpd",
    "fee_rate",
    "upfront_fee_rate",
    "prepayment_fee_rate",
    "write_off_days",
)
"""The loan columns a contract fixes, in `contract_values`' order."""


def contract_columns(c: LoanContract) -> dict[str, Any]:
    return dict(zip(CONTRACT_COLUMNS, contract_values(c), strict=True))


def contract_values(c: LoanContract) -> tuple[Any, ...]:
    """`contract_columns`' values, in `CONTRACT_COLUMNS` order: a day's bookings insert
    their loans as value tuples (`SqlLoans.add_many`)."""
    return (
        c.product_id,
        to_fen(c.principal),
        str(c.annual_rate),
        c.term_months,
        c.method.value,
        c.disbursement_date,
        c.anchor_date,
        c.day_count.value,
        c.rounding.value,
        c.grace_days,
        str(c.penalty_multiplier),
        penalty_rate_e8(c),
        year_days(c.day_count),
        ",".join(x.value for x in c.waterfall),
        c.non_accrual_dpd,
        c.charge_off_dpd,
        str(c.fee_rate),
        str(c.upfront_fee_rate),
        str(c.prepayment_fee_rate),
        c.write_off_days,
    )


def contract_from(row: Any) -> LoanContract:
    decimal = cached_decimal
    return LoanContract(  # positionally, in field order: a batch builds one per loan read
        row.product_id,
        cached_fen(row.principal_fen),  # a handful of loan sizes
        decimal(row.annual_rate),
        row.term_months,
        _member(_METHODS, RepaymentMethod, row.method),
        row.disbursement_date,
        row.anchor_date,
        _member(_DAY_COUNTS, DayCount, row.day_count),
        _member(_ROUNDINGS, Rounding, row.rounding),
        row.grace_days,
        decimal(row.penalty_multiplier),
        _penalty_rate(row.penalty_rate_e8),
        _waterfall(row.waterfall),
        row.non_accrual_dpd,
        row.charge_off_dpd,
        decimal(row.fee_rate),
        decimal(row.upfront_fee_rate),
        decimal(row.prepayment_fee_rate),
        row.write_off_days,
    )


# Loading a batch of loans parses the same few rates, enum names and waterfalls over and
# over; these read each distinct stored text once. They map immutable values to immutable
# values, so sharing a result between loans (or transactions) cannot change any of them.
E = TypeVar("E")
_METHODS = {m.value: m for m in RepaymentMethod}
_DAY_COUNTS = {d.value: d for d in DayCount}
_ROUNDINGS = {r.value: r for r in Rounding}
_STATUSES = {s.value: s for s in LoanStatus}
_RISK_CLASSES = {r.value: r for r in RiskClass}
_STATUS_TEXT = {s: s.value for s in LoanStatus}
_RISK_CLASS_TEXT = {r: r.value for r in RiskClass}
"""Members' values by a dict lookup, a fifth of the cost of the enum's `.value` property."""


def _member(members: Mapping[str, E], kind: Callable[[str], E], value: str) -> E:
    """The enum member named `value`; an unknown name fails as the enum's own lookup does."""
    found = members.get(value)
    return kind(value) if found is None else found


@lru_cache(maxsize=4096)
def cached_decimal(text: str) -> Decimal:
    """`Decimal(text)` of a stored rate or share: a batch reads the same few texts over and
    over, and a Decimal is immutable, so one parse per text serves them all."""
    return Decimal(text)


@lru_cache(maxsize=4096)
def _penalty_rate(e8: int) -> Decimal:
    return Decimal(e8) / PENALTY_RATE_SCALE


@lru_cache(maxsize=256)
def _waterfall(text: str) -> tuple[Component, ...]:
    return tuple(Component(x) for x in text.split(","))


@lru_cache(maxsize=65536)
def cached_fen(fen: int) -> Decimal:
    """`from_fen` for the hot read paths: a loan's installments repeat a few amounts (zeros,
    level payments), and a Decimal is immutable, so one instance per amount serves them all."""
    return from_fen(fen)


STATE_COLUMNS = (
    "status",
    "bal_principal",
    "bal_interest",
    "bal_fee",
    "bal_penalty",
    "bal_credit",
    "period_no",
    "period_start",
    "period_due",
    "period_interest",
    "period_accrued",
    "oldest_due",
    "dpd",
    "bucket",
    "risk_class",
    "non_accrual",
    "schedule_version",
    "charged_off_fen",
    "recovered_fen",
    "closed_on",
    "accrual_dirty",
)
"""The loan columns servicing changes, in `state_values`' order. A row servicing writes is
marked `accrual_dirty` until the next close: its accrual stands as written, which a close
deferring accruals must not take for the period's share at its last close (`storage.cob`)."""


def state_columns(loan: LoanState) -> dict[str, Any]:
    """Everything that servicing changes on a loan row, from the domain state."""
    return dict(zip(STATE_COLUMNS, state_values(loan), strict=True))


def state_values(
    loan: LoanState, was: LoanState | None = None, was_values: tuple[Any, ...] = ()
) -> tuple[Any, ...]:
    """`state_columns`' values, in `STATE_COLUMNS` order: a day's payments save each loan
    they touch, and compare the values with its row as read without building a dict.

    Given `was`, a state whose amounts `was_values` holds in fen (its `state_values`, or the
    row it was read from: fen to Decimal and back is exact), an amount equal to was's takes
    its fen from there: a payment moves two or three of a loan's nine amounts, and comparing
    two Decimals costs a fraction of converting one."""
    p = loan.period
    amounts = _amounts(loan)
    if was is None:
        fen = [0 if a is None else to_fen(a) for a in amounts]
    else:
        fen = [
            old if a is not None and a == w else (0 if a is None else to_fen(a))
            for a, w, old in zip(amounts, _amounts(was), _amount_values(was_values), strict=True)
        ]
    oldest = loan.oldest_unpaid_due
    return (
        _STATUS_TEXT[loan.status],
        *fen[:5],
        p.number if p else None,
        to_day(p.start) if p else None,
        to_day(p.due) if p else None,
        fen[5],
        fen[6],
        to_day(oldest) if oldest else None,
        loan.dpd,
        DEFAULT_BUCKETS.index_of(loan.dpd),
        _RISK_CLASS_TEXT[loan.risk_class],
        loan.non_accrual,
        loan.schedule_version,
        fen[7],
        fen[8],
        loan.closed_on,
        True,
    )


def _amounts(loan: LoanState) -> tuple[Decimal | None, ...]:
    """The state's amounts in `STATE_COLUMNS` order (at `_AMOUNT_AT`); None (stored as 0)
    where it has no accrual period, so that no row's period amount is ever taken as is."""
    b, p = loan.balances, loan.period
    return (
        b.principal,
        b.interest,
        b.fee,
        b.penalty,
        b.credit,
        p.interest if p else None,
        p.accrued if p else None,
        loan.charged_off,
        loan.recovered,
    )


_AMOUNT_AT = (1, 2, 3, 4, 5, 9, 10, 17, 18)
"""Where `state_values` holds the amounts of `_amounts`."""
_amount_values = itemgetter(*_AMOUNT_AT)


INSTALLMENT_COLUMNS = (
    "loan_id",
    "version",
    "number",
    "start_date",
    "due_date",
    "due_day",
    "principal_fen",
    "interest_fen",
    "fee_fen",
    "paid_principal_fen",
    "paid_interest_fen",
    "paid_fee_fen",
    "billed",
    "active",
)
"""An installment row's columns as written, in `installment_values`' order."""


def installment_columns(loan_id: int, version: int, i: InstallmentState) -> dict[str, Any]:
    return dict(zip(INSTALLMENT_COLUMNS, installment_values(loan_id, version, i), strict=True))


def installment_values(loan_id: int, version: int, i: InstallmentState) -> tuple[Any, ...]:
    """`installment_columns`' values, in `INSTALLMENT_COLUMNS` order: a day's bookings
    insert a dozen or more per loan, as value tuples (`SqlLoans.add_many`)."""
    return (
        loan_id,
        version,
        i.number,
        i.start_date,
        i.due_date,
        to_day(i.due_date),
        to_fen(i.principal),
        to_fen(i.interest),
        to_fen(i.fee),
        *paid_fen(i),
        i.billed,
        True,
    )


PERIOD_COLUMNS = ("period_no", "period_start", "period_due", "period_interest", "period_accrued")


def period_values(p: AccrualPeriod | None) -> tuple[Any, ...]:
    """An accrual period's `PERIOD_COLUMNS`, as `state_values` writes them."""
    if p is None:
        return None, None, None, 0, 0
    return p.number, to_day(p.start), to_day(p.due), to_fen(p.interest), to_fen(p.accrued)


def part_fen(part: InstallmentPart) -> tuple[int, int, int]:
    """What a payment paid on an installment, in fen: principal, interest, fee."""
    return to_fen(part.principal), to_fen(part.interest), to_fen(part.fee)


def paid_fen(i: InstallmentState) -> tuple[int, int, int]:
    """What a payment moves on an installment (`installment_columns`' paid amounts)."""
    return to_fen(i.paid_principal), to_fen(i.paid_interest), to_fen(i.paid_fee)


ITEM_COLUMNS = (
    "number",
    "start_date",
    "due_date",
    "principal_fen",
    "interest_fen",
    "fee_fen",
    "paid_principal_fen",
    "paid_interest_fen",
    "paid_fee_fen",
    "billed",
)
"""The installment columns `installment_of` takes, in its argument order."""


def installment_of(
    number: int,
    start_date: date,
    due_date: date,
    principal_fen: int,
    interest_fen: int,
    fee_fen: int,
    paid_principal_fen: int,
    paid_interest_fen: int,
    paid_fee_fen: int,
    billed: Any,
) -> InstallmentState:
    """The installment of the values of `ITEM_COLUMNS` (a batch read's tuples)."""
    fen = cached_fen
    return InstallmentState(
        number,
        start_date,
        due_date,
        fen(principal_fen),
        fen(interest_fen),
        fen(fee_fen),
        fen(paid_principal_fen),
        fen(paid_interest_fen),
        fen(paid_fee_fen),
        bool(billed),
    )


def installment_from(row: Any) -> InstallmentState:
    """The installment of an `installments` row."""
    return installment_of(*(getattr(row, name) for name in ITEM_COLUMNS))


def period_from(row: Any) -> AccrualPeriod | None:
    if row.period_due is None:
        return None
    return AccrualPeriod(
        row.period_no,
        from_day(row.period_start),
        from_day(row.period_due),
        from_fen(row.period_interest),
        cached_fen(row.period_accrued),  # zero on every due date
    )


def balances_from(row: Any) -> Balances:
    """A loan row's balances; those zero on most loans (fees, penalty, credit) through
    `cached_fen`: one shared zero."""
    fen = cached_fen
    return Balances(
        from_fen(row.bal_principal),
        from_fen(row.bal_interest),
        fen(row.bal_fee),
        fen(row.bal_penalty),
        fen(row.bal_credit),
    )


def bill_from(row: Any, dues: tuple[InstallmentPart, ...], unbilled: bool) -> Bill:
    """The `Bill` of a loan row (`BILL_COLUMNS`) and its unpaid dues."""
    return Bill(
        row.id,
        _member(_STATUSES, LoanStatus, row.status),
        row.disbursement_date,
        bool(row.non_accrual),
        row.schedule_version,
        balances_from(row),
        period_from(row),
        _member(_ROUNDINGS, Rounding, row.rounding),
        dues,
        unbilled,
    )


def due_part(
    number: int, principal: int, interest: int, fee: int, paid_p: int, paid_i: int, paid_f: int
) -> InstallmentPart:
    """An installment's unpaid part of each kind (fen in, as `ITEM_COLUMNS` holds them): what
    a payment of the whole bill pays on it (a kind with nothing unpaid at ZERO, as
    `payments._in_full` leaves it)."""
    fen = cached_fen
    p, i, f = principal - paid_p, interest - paid_i, fee - paid_f
    return InstallmentPart(
        number, fen(p) if p else ZERO, fen(i) if i else ZERO, fen(f) if f else ZERO
    )


BILL_COLUMNS = (
    "id",
    "status",
    "disbursement_date",
    "non_accrual",
    "schedule_version",
    *STATE_COLUMNS[1:11],  # the balances and the accrual period
    "rounding",
    "accrual_dirty",
)
"""The loan columns `bill_from` reads."""


def loan_from(row: Any, items: tuple[InstallmentState, ...]) -> LoanState:
    """The loan state of a `loans` row and its installments. Built positionally, in field
    order (a day's payments read one per payment), the amounts that are zero on most loans
    (fees, penalty, credit, charge-off) through `cached_fen`: one shared zero."""
    fen = cached_fen
    return LoanState(
        row.id,
        contract_from(row),
        _member(_STATUSES, LoanStatus, row.status),
        balances_from(row),
        items,
        period_from(row),
        row.schedule_version,
        row.dpd,
        _member(_RISK_CLASSES, RiskClass, row.risk_class),
        bool(row.non_accrual),
        fen(row.charged_off_fen),
        fen(row.recovered_fen),
        row.closed_on,
    )
