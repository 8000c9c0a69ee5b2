"""Applying money to a loan: regular payments, recoveries, payoff quotes and prepayments.

Each function is pure: it takes a `LoanState` and returns the new state, what was paid on
each installment and the one balanced journal entry that records the movement. The service
layer only loads, calls and saves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from operator import attrgetter

from lendstack.core.errors import Conflict, ValidationError
from lendstack.core.money import FEN, ZERO
from lendstack.core.records import quick_init
from lendstack.servicing.domain.ledger import (
    Account,
    EventType,
    JournalEntry,
    Posting,
    Side,
    entry_or_none,
    leg,
)
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.loan import Balances, InstallmentState, LoanState
from lendstack.servicing.domain.waterfall import Allocation, Component, allocate

# (installment attribute, its unpaid part's attribute, overdue component, current component)
_KINDS = (
    ("principal", "unpaid_principal", Component.OVERDUE_PRINCIPAL, Component.CURRENT_PRINCIPAL),
    ("interest", "unpaid_interest", Component.OVERDUE_INTEREST, Component.CURRENT_INTEREST),
    ("fee", "unpaid_fee", Component.OVERDUE_FEE, Component.CURRENT_FEE),
)
_COMPONENTS = tuple(Component)
"""Every component, listed once: iterating the enum class itself is slow on the hot path."""


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class InstallmentPart:
    """What one payment paid on one installment; kept so that a reversal undoes it exactly."""

    number: int
    principal: Decimal = ZERO
    interest: Decimal = ZERO
    fee: Decimal = ZERO


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class Applied:
    """What a payment settled, by kind, and what went to the borrower's credit balance."""

    penalty: Decimal = ZERO
    interest: Decimal = ZERO
    principal: Decimal = ZERO
    fee: Decimal = ZERO
    prepayment_fee: Decimal = ZERO
    recovery: Decimal = ZERO
    credit: Decimal = ZERO

    def as_dict(self) -> dict[str, Decimal]:
        return {name: getattr(self, name) for name in self.__slots__}

    @property
    def total(self) -> Decimal:
        return sum(self.as_dict().values(), ZERO)


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    loan: LoanState
    applied: Applied
    parts: tuple[InstallmentPart, ...]
    entry: JournalEntry
    accrued_interest: Decimal = ZERO
    """Interest the payment itself brought to date (prepayments only); a reversal undoes it."""
    accrued_fee: Decimal = ZERO


def owed_by_component(loan: LoanState, on: date) -> dict[Component, Decimal]:
    """Billed, unpaid amounts, split into overdue and current by each installment's grace."""
    return _owed(loan, *_dues(loan, on))


def _dues(loan: LoanState, on: date) -> tuple[list[InstallmentState], list[InstallmentState]]:
    """The billed installments with something unpaid, overdue and current (each group in
    schedule order): what `owed_by_component` sums and a payment settles. One pass, so a
    payment reads each installment's dues once."""
    late: list[InstallmentState] = []
    current: list[InstallmentState] = []
    grace = timedelta(loan.contract.grace_days)
    for item in loan.installments:
        # as `InstallmentState.overdue_on`: billed, unpaid and past the grace period
        if item.billed and item.unpaid > ZERO:
            (late if on > item.due_date + grace else current).append(item)
    return late, current


def _owed(
    loan: LoanState, late: Sequence[InstallmentState], current: Sequence[InstallmentState]
) -> dict[Component, Decimal]:
    owed = dict.fromkeys(_COMPONENTS, ZERO)
    owed[Component.OVERDUE_PENALTY] = loan.balances.penalty
    for _, unpaid, overdue, now in _KINDS:
        for group, component in ((late, overdue), (current, now)):
            for item in group:
                owed[component] += getattr(item, unpaid)
    return owed


def _spread(group: Sequence[InstallmentState], amount: Decimal, unpaid: str) -> dict[int, Decimal]:
    """Spread an amount of one kind over installments, oldest first (`unpaid` names the
    installment's unpaid part of that kind)."""
    out: dict[int, Decimal] = {}
    for item in group:
        take = min(amount, getattr(item, unpaid))
        if take > ZERO:
            out[item.number] = take
            amount -= take
    return out


def _settle(
    loan: LoanState,
    late: Sequence[InstallmentState],
    current: Sequence[InstallmentState],
    allocation: Allocation,
) -> tuple[tuple[InstallmentState, ...], tuple[InstallmentPart, ...]]:
    """Apply the allocated component totals to the installments they came from."""
    amounts = dict(allocation.applied)  # each component once (`validate_order`)
    paid: dict[int, dict[str, Decimal]] = {}
    for attr, unpaid, overdue, now in _KINDS:
        for group, component in ((late, overdue), (current, now)):
            amount = amounts.get(component, ZERO)
            if not group or amount == ZERO:
                continue  # nothing to spread: `_spread` would take nothing
            for number, take in _spread(group, amount, unpaid).items():
                paid.setdefault(number, {})[attr] = take
    parts = tuple(InstallmentPart(n, **v) for n, v in sorted(paid.items()))
    if not parts:
        return loan.installments, parts
    by_number = {p.number: p for p in parts}
    # a list comprehension, not a generator: one pass over every installment of every payment
    items = tuple(
        [_pay(i, by_number[i.number]) if i.number in by_number else i for i in loan.installments]
    )
    return items, parts


def _in_full(
    loan: LoanState,
    late: Sequence[InstallmentState],
    current: Sequence[InstallmentState],
    amount: Decimal,
) -> tuple[tuple[InstallmentState, ...], tuple[InstallmentPart, ...]] | None:
    """`_settle`'s result for a payment of exactly everything owed, or None for any other.

    Most payments pay the bill: the penalty and every billed installment's unpaid part. Then
    the waterfall's order cannot matter: `allocate` takes min(left, owed) per component and
    is exact, so with `amount` equal to their sum every component is applied whole and the
    remainder is zero; `_spread` then gives each installment its whole unpaid part of each
    kind. That is computed here directly, without the allocation's per-component work (a
    hypothesis test compares both ways over the catalogue's products). Anything `allocate`
    would refuse or treat otherwise (an amount that is not a finite Decimal, a negative due)
    goes the general way, so its errors are unchanged.
    """
    total = loan.balances.penalty
    if type(amount) is not Decimal or not amount.is_finite() or not _is_fen(total):
        return None
    parts: list[InstallmentPart] = []
    for item in sorted((*late, *current), key=_number) if late and current else (*late, *current):
        principal, interest, fee = item.unpaid_principal, item.unpaid_interest, item.unpaid_fee
        if not (_is_fen(principal) and _is_fen(interest) and _is_fen(fee)):
            return None
        total += principal + interest + fee
        # a kind with nothing unpaid is left at the part's ZERO, as `_settle` leaves it
        parts.append(
            InstallmentPart(
                item.number,
                principal if principal else ZERO,
                interest if interest else ZERO,
                fee if fee else ZERO,
            )
        )
    if amount != total:
        return None
    paid = {part.number: part for part in parts}
    items = tuple([_pay(i, paid[i.number]) if i.number in paid else i for i in loan.installments])
    return items, tuple(parts)


def _number(item: InstallmentState) -> int:
    return item.number


def _is_fen(value: Decimal) -> bool:
    """A due `allocate` takes as it is: not negative and a whole number of fen."""
    return value >= ZERO and value == value.quantize(FEN)


def _pay(item: InstallmentState, part: InstallmentPart) -> InstallmentState:
    return item.pay(part.principal, part.interest, part.fee)


def income_recognition(loan: LoanState, applied: Applied) -> list[Posting | None]:
    """On a non-accrual loan, income is recognised only when cash arrives (cash basis)."""
    if not loan.non_accrual:
        return []
    return _recognition_legs(loan.id, applied)


def _recognition_legs(loan_id: int, applied: Applied) -> list[Posting | None]:
    """Income the payment settled moves from suspense to income."""
    collected = applied.interest + applied.fee + applied.penalty
    return [
        leg(Account.INTEREST_SUSPENSE, Side.DEBIT, collected, loan_id),
        leg(Account.INTEREST_INCOME, Side.CREDIT, applied.interest, loan_id),
        leg(Account.FEE_INCOME, Side.CREDIT, applied.fee, loan_id),
        leg(Account.PENALTY_INCOME, Side.CREDIT, applied.penalty, loan_id),
    ]


def reversal_entry(
    loan: LoanState,
    original: JournalEntry,
    applied: Applied,
    entry_id: int,
    on: date,
    reference: str,
) -> JournalEntry:
    """The entry that cancels a payment, on a loan whose accrual status may have changed since.

    A plain mirror is right only if the loan accrues now as it did when the payment was
    posted. Income a payment settled on an accruing loan had been earned at accrual; put back
    on a loan that no longer accrues, it goes to suspense like the loan's other unpaid income.
    Income a payment recognised from suspense, put back on a loan accruing again, stays earned.
    """
    mirror = original.reversal(entry_id, on, reference)
    recognised = any(
        p.account is Account.INTEREST_SUSPENSE and p.side is Side.DEBIT for p in original.postings
    )
    if recognised == loan.non_accrual:
        return mirror
    legs = [p for p in _recognition_legs(loan.id, applied) if p is not None]
    if loan.non_accrual:
        legs = [p.mirrored() for p in legs]
    return replace(mirror, postings=mirror.postings + tuple(legs))


def payment_postings(
    loan: LoanState, amount: Decimal, applied: Applied, source: Account = Account.CASH
) -> list[Posting | None]:
    """Cash in, receivables settled, excess to credit; on non-accrual loans, income recognised."""
    return cash_postings(loan.id, loan.non_accrual, amount, applied, source)


def cash_postings(
    loan_id: int,
    non_accrual: bool,
    amount: Decimal,
    applied: Applied,
    source: Account = Account.CASH,
) -> list[Posting | None]:
    """`payment_postings` of the loan `loan_id`, which accrues unless `non_accrual`."""
    return [
        leg(source, _DEBIT, amount, loan_id),
        *[
            leg(account, _CREDIT, settled, loan_id)
            for account, settled in zip(_CREDITED, _credited_amounts(applied), strict=True)
        ],
        *(_recognition_legs(loan_id, applied) if non_accrual else ()),
    ]


_DEBIT, _CREDIT = Side.DEBIT, Side.CREDIT
_ACTIVE, _PAID_OFF = LoanStatus.ACTIVE, LoanStatus.PAID_OFF
_RECOVERING = (LoanStatus.CHARGED_OFF, LoanStatus.WRITTEN_OFF)
"""Read once: on Python 3.11 every `Side.X` (and `LoanStatus.X`) goes through the enum
class's `__getattr__` hook, and a payment would read a dozen."""
_CREDITED = (
    Account.PENALTY_RECEIVABLE,
    Account.INTEREST_RECEIVABLE,
    Account.PRINCIPAL_RECEIVABLE,
    Account.FEE_RECEIVABLE,
    Account.FEE_INCOME,
    Account.RECOVERY_INCOME,
    Account.BORROWER_CREDIT,
)
"""The accounts a payment credits, in its postings' order, each with the amount of
`_credited_amounts` at the same place."""
_credited_amounts = attrgetter(
    "penalty", "interest", "principal", "fee", "prepayment_fee", "recovery", "credit"
)


def payment_entry(
    loan: LoanState,
    amount: Decimal,
    applied: Applied,
    on: date,
    reference: str,
    event: EventType = EventType.PAYMENT,
    extra: Sequence[Posting | None] = (),
    source: Account = Account.CASH,
) -> JournalEntry:
    postings = [*extra, *payment_postings(loan, amount, applied, source)]
    entry = entry_or_none(event, on, reference, postings)
    if entry is None:
        raise ValidationError("a payment must move money", field="amount")
    return entry


def _after_payment(
    loan: LoanState, items: tuple[InstallmentState, ...], applied: Applied, on: date
) -> LoanState:
    """The loan once `applied` is settled and its installments are `items`."""
    was = loan.balances
    balances = Balances(  # every field moves: built whole, cheaper than `replace`
        principal=was.principal - applied.principal,
        interest=was.interest - applied.interest,
        fee=was.fee - applied.fee,
        penalty=was.penalty - applied.penalty,
        credit=was.credit + applied.credit,
    )
    paid_off = balances.receivable == ZERO and all(i.billed for i in items)
    return LoanState(  # every field named: cheaper than `replace` on the hot path
        id=loan.id,
        contract=loan.contract,
        status=_PAID_OFF if paid_off else loan.status,
        balances=balances,
        installments=items,
        period=loan.period,
        schedule_version=loan.schedule_version,
        dpd=loan.dpd,
        risk_class=loan.risk_class,
        non_accrual=loan.non_accrual,
        charged_off=loan.charged_off,
        recovered=loan.recovered,
        closed_on=on if paid_off else None,
    )


def apply_payment(loan: LoanState, amount: Decimal, on: date, reference: str) -> PaymentOutcome:
    """A regular payment: the product's waterfall over billed dues; any excess is held as credit.

    Charged-off and written-off loans take the money as a recovery instead.
    """
    if loan.status in _RECOVERING:
        return apply_recovery(loan, amount, on, reference)
    if loan.status is not _ACTIVE:
        raise Conflict(f"loan {loan.id} is {loan.status}; it takes no payments", field="loan_id")
    late, current = _dues(loan, on)
    in_full = _in_full(loan, late, current, amount)
    if in_full is not None:
        penalty, credit = loan.balances.penalty, ZERO
        items, parts = in_full
    else:
        allocation = allocate(amount, _owed(loan, late, current), loan.contract.waterfall)
        penalty, credit = allocation.amount(Component.OVERDUE_PENALTY), allocation.remainder
        items, parts = _settle(loan, late, current, allocation)
    applied = Applied(
        penalty=penalty,
        interest=sum((p.interest for p in parts), ZERO),
        principal=sum((p.principal for p in parts), ZERO),
        fee=sum((p.fee for p in parts), ZERO),
        credit=credit,
    )
    entry = payment_entry(loan, amount, applied, on, reference)
    return PaymentOutcome(_after_payment(loan, items, applied, on), applied, parts, entry)


def apply_recovery(loan: LoanState, amount: Decimal, on: date, reference: str) -> PaymentOutcome:
    """Cash on a charged-off loan is recovery income, up to what was charged off."""
    outstanding = loan.charged_off - loan.recovered
    recovery = min(amount, outstanding)
    applied = Applied(recovery=recovery, credit=amount - recovery)
    entry = payment_entry(loan, amount, applied, on, reference, EventType.RECOVERY)
    balances = replace(loan.balances, credit=loan.balances.credit + applied.credit)
    state = replace(loan, recovered=loan.recovered + recovery, balances=balances)
    return PaymentOutcome(state, applied, (), entry)


def unapply(
    loan: LoanState,
    applied: Applied,
    parts: Sequence[InstallmentPart],
    accrued: tuple[Decimal, Decimal] = (ZERO, ZERO),
) -> LoanState:
    """The loan as it was before a payment: the inverse of applying it, for reversals.

    For a prepayment the caller restores the earlier schedule version first; the accrual the
    prepayment brought to date is taken back out of the receivable here.
    """
    undo = {p.number: p for p in parts}
    items = tuple(
        i.pay(-undo[i.number].principal, -undo[i.number].interest, -undo[i.number].fee)
        if i.number in undo
        else i
        for i in loan.installments
    )
    b = loan.balances
    balances = replace(
        b,
        principal=b.principal + applied.principal,
        interest=b.interest + applied.interest - accrued[0],
        fee=b.fee + applied.fee - accrued[1],
        penalty=b.penalty + applied.penalty,
        credit=b.credit - applied.credit,
    )
    status = LoanStatus.ACTIVE if loan.status is LoanStatus.PAID_OFF else loan.status
    return replace(
        loan,
        installments=items,
        balances=balances,
        status=status,
        closed_on=None if status is LoanStatus.ACTIVE else loan.closed_on,
        recovered=loan.recovered - applied.recovery,
    )


def apply_credit(loan: LoanState, on: date, reference: str) -> PaymentOutcome | None:
    """Settle newly billed dues from the borrower's credit balance, as close of business does."""
    owed = sum(owed_by_component(loan, on).values(), ZERO)
    amount = min(loan.balances.credit, owed)
    if loan.status is not LoanStatus.ACTIVE or amount == ZERO:
        return None
    paid = apply_payment(loan, amount, on, reference)
    entry = payment_entry(
        loan,
        amount,
        paid.applied,
        on,
        reference,
        EventType.CREDIT_APPLIED,
        source=Account.BORROWER_CREDIT,
    )
    after = paid.loan.balances
    state = replace(paid.loan, balances=replace(after, credit=after.credit - amount))
    return replace(paid, loan=state, entry=entry)


def unapply_credit(
    loan: LoanState, applied: Applied, parts: Sequence[InstallmentPart]
) -> LoanState:
    """The inverse of `apply_credit`, for reversals: the dues are owed again and the money
    goes back to the borrower's credit balance it came from (it was never cash)."""
    undone = unapply(loan, applied, parts)
    balances = replace(undone.balances, credit=undone.balances.credit + applied.total)
    return replace(undone, balances=balances)
