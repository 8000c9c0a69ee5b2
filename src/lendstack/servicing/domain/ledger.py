"""Double-entry ledger records: a chart of accounts and journal entries that balance when built.

Entries are immutable. A correction is a reversal (`JournalEntry.reversal`), never an edit.
Amounts are positive `Decimal` fen-precise values; the side says debit or credit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from lendstack.core.errors import UnbalancedEntry
from lendstack.core.money import FEN, ZERO
from lendstack.core.records import quick_init


class AccountType(StrEnum):
    ASSET = "asset"
    CONTRA_ASSET = "contra_asset"
    LIABILITY = "liability"
    INCOME = "income"
    EXPENSE = "expense"


class Account(StrEnum):
    """The general-ledger chart. Codes follow the usual asset/liability/income/expense ranges."""

    CASH = "1001 cash and settlement"
    PRINCIPAL_RECEIVABLE = "1301 principal receivable"
    INTEREST_RECEIVABLE = "1302 interest receivable"
    FEE_RECEIVABLE = "1303 fee receivable"
    PENALTY_RECEIVABLE = "1304 penalty receivable"
    ALLOWANCE = "1309 loan loss allowance"
    INTEREST_SUSPENSE = "1310 non-accrual suspense"
    BORROWER_CREDIT = "2241 borrower credit balance"
    FUNDER_PAYABLE = "2250 funder payable"
    FUNDER_PARTICIPATION = "2260 funder participation"
    INTEREST_INCOME = "6011 interest income"
    FEE_INCOME = "6021 fee income"
    PENALTY_INCOME = "6031 penalty interest income"
    RECOVERY_INCOME = "6051 recovery income"
    CHARGE_OFF_EXPENSE = "6701 charge-off expense"
    PROVISION_EXPENSE = "6702 provision expense"
    LOAN_SALE_LOSS = "6705 loss on sale of loans"
    SETTLEMENT_DISCOUNT = "6706 settlement discount"
    FUNDER_SHARE_EXPENSE = "6411 funder share of income"

    @property
    def code(self) -> str:
        return self.value.split(" ", 1)[0]

    @property
    def kind(self) -> AccountType:
        return _KINDS[self]

    @property
    def debit_normal(self) -> bool:
        return self.kind in (AccountType.ASSET, AccountType.EXPENSE)


_KINDS = {
    Account.CASH: AccountType.ASSET,
    Account.PRINCIPAL_RECEIVABLE: AccountType.ASSET,
    Account.INTEREST_RECEIVABLE: AccountType.ASSET,
    Account.FEE_RECEIVABLE: AccountType.ASSET,
    Account.PENALTY_RECEIVABLE: AccountType.ASSET,
    Account.ALLOWANCE: AccountType.CONTRA_ASSET,
    Account.INTEREST_SUSPENSE: AccountType.CONTRA_ASSET,
    Account.BORROWER_CREDIT: AccountType.LIABILITY,
    Account.FUNDER_PAYABLE: AccountType.LIABILITY,
    Account.FUNDER_PARTICIPATION: AccountType.LIABILITY,
    Account.INTEREST_INCOME: AccountType.INCOME,
    Account.FEE_INCOME: AccountType.INCOME,
    Account.PENALTY_INCOME: AccountType.INCOME,
    Account.RECOVERY_INCOME: AccountType.INCOME,
    Account.CHARGE_OFF_EXPENSE: AccountType.EXPENSE,
    Account.PROVISION_EXPENSE: AccountType.EXPENSE,
    Account.LOAN_SALE_LOSS: AccountType.EXPENSE,
    Account.SETTLEMENT_DISCOUNT: AccountType.EXPENSE,
    Account.FUNDER_SHARE_EXPENSE: AccountType.EXPENSE,
}


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"

    @property
    def opposite(self) -> Side:
        return Side.CREDIT if self is Side.DEBIT else Side.DEBIT


class EventType(StrEnum):
    """The business event an entry records; one money movement is one entry."""

    DISBURSEMENT = "disbursement"
    PAYMENT = "payment"
    RECOVERY = "recovery"
    CREDIT_APPLIED = "credit_applied"
    REVERSAL = "reversal"
    COB_ACCRUAL = "cob_accrual"
    COB_BILLING = "cob_billing"
    COB_PENALTY = "cob_penalty"
    COB_NON_ACCRUAL = "cob_non_accrual"
    COB_CHARGE_OFF = "cob_charge_off"
    COB_FUNDING = "cob_funding"
    BUYBACK = "buyback"
    OPENING_BALANCE = "opening_balance"
    ECL_ALLOWANCE = "ecl_allowance"
    """The change in the loan loss allowance (IFRS 9 ECL), posted by `lendstack risk ecl --post`."""
    SETTLEMENT = "settlement"
    """A negotiated settlement: the loan closed for less than its payoff, the rest forgiven."""
    NPL_SALE = "npl_sale"
    """A non-performing portfolio sold to an AMC: loans derecognised, allowance released."""
    RESTRUCTURE = "restructure"
    """A loan restructured (re-aged): receivables capitalised or waived, a new schedule."""


_DEBIT = Side.DEBIT
"""Read once: on Python 3.11 every `Side.X` goes through the enum class's `__getattr__` hook."""


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class Posting:
    account: Account
    side: Side
    amount: Decimal
    loan_id: int | None = None
    funder_id: str | None = None
    """Room for funder sub-ledgers: co-lending tags each posting with its funder."""

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or self.amount <= ZERO:
            raise UnbalancedEntry(f"posting amount must be a positive Decimal, got {self.amount!r}")
        if self.amount != self.amount.quantize(FEN):
            raise UnbalancedEntry(f"posting amount {self.amount} is more precise than the fen")

    def mirrored(self) -> Posting:
        return Posting(self.account, self.side.opposite, self.amount, self.loan_id, self.funder_id)


def debit(account: Account, amount: Decimal, loan_id: int | None = None) -> Posting:
    return Posting(account, Side.DEBIT, amount, loan_id)


def credit(account: Account, amount: Decimal, loan_id: int | None = None) -> Posting:
    return Posting(account, Side.CREDIT, amount, loan_id)


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A balanced set of postings for one business event. It cannot exist unbalanced."""

    event: EventType
    business_date: date
    reference: str
    postings: tuple[Posting, ...]
    reverses: int | None = field(default=None)

    def __post_init__(self) -> None:
        if len(self.postings) < 2:
            raise UnbalancedEntry(f"entry {self.reference} needs at least two postings")
        # one pass, the side read from a module constant: an entry is built for every
        # payment, and two generator sums reading `Side.DEBIT` per posting cost six times it
        debits = credits = ZERO
        for p in self.postings:
            if p.side is _DEBIT:
                debits += p.amount
            else:  # a side is a debit or a credit
                credits += p.amount
        if debits != credits:
            raise UnbalancedEntry(f"entry {self.reference}: debits {debits} != credits {credits}")

    @property
    def total(self) -> Decimal:
        return sum((p.amount for p in self.postings if p.side is Side.DEBIT), ZERO)

    def reversal(self, entry_id: int, business_date: date, reference: str) -> JournalEntry:
        """The mirror entry that cancels this one, dated on the open business date."""
        mirrored = tuple(p.mirrored() for p in self.postings)
        return JournalEntry(EventType.REVERSAL, business_date, reference, mirrored, entry_id)


def entry_or_none(
    event: EventType, business_date: date, reference: str, postings: Iterable[Posting | None]
) -> JournalEntry | None:
    """Build an entry from optional postings, dropping zero legs; None when nothing moves."""
    kept = tuple(p for p in postings if p is not None)
    return JournalEntry(event, business_date, reference, kept) if kept else None


def leg(
    account: Account,
    side: Side,
    amount: Decimal,
    loan_id: int | None = None,
    funder_id: str | None = None,
) -> Posting | None:
    """A posting, or None for a zero amount: set-based steps often move nothing on an account."""
    if amount == ZERO:
        return None
    if amount < ZERO:
        return Posting(account, side.opposite, -amount, loan_id, funder_id)
    return Posting(account, side, amount, loan_id, funder_id)
