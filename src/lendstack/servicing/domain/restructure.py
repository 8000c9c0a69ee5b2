"""Restructuring (re-aging) of a loan, interest-bearing or not, on the open business date.

Fineract allows re-aging only for zero-interest loans. Here any active loan can be
restructured: what it owes becomes a new schedule from the restructuring date, under the
product's method, day count and rounding, with a term the product offers and (optionally) a
new rate inside the product's range.

* Principal always carries over. Interest (billed unpaid plus earned to the date), fees
  (billed, and those falling due by the date) and penalty are **capitalised** into the new
  principal: the receivables move into principal receivable (Dr 1301, Cr 1302/1303/1304). No
  income is booked or reversed by capitalising, because it was recognised when it accrued.
* With `WAIVE_PENALTY` the penalty is not capitalised but forgiven; with `PRINCIPAL_ONLY`
  interest, fees and penalty are all forgiven. A waived amount **reverses the income** it was
  booked as (Dr 6011/6021/6031, Cr the receivable): close of business recognised it when it
  accrued, so forgiving it takes that income back rather than creating an expense line.
* On a loan in **non-accrual** that income was never recognised: it sits in suspense (1310).
  Capitalising it would turn unearned income into principal, so only `PRINCIPAL_ONLY` is
  allowed there, and the forgiven amounts clear the suspense (Dr 1310) with no P&L effect.
* The old schedule is superseded (a new `schedule_version`); its unpaid installments are
  closed as restructured and the old version stays in storage as history. DPD is re-aged to
  0; the regulatory class is held by the observation rule (`ObservationRule`).

The restructured loan accrues again on its new schedule; its class stays held (see above).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

from lendstack.core.dates import add_months
from lendstack.core.errors import Conflict, ValidationError
from lendstack.core.money import ZERO
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
from lendstack.servicing.domain.prepayment import PayoffQuote, payoff_quote
from lendstack.servicing.domain.products import Product
from lendstack.servicing.domain.schedule import LoanTerms, Schedule, generate

RULES_FILE = Path(__file__).resolve().parent.parent / "restructure" / "cn-2023.toml"


class RestructureOption(StrEnum):
    CAPITALISE = "capitalise"  # interest, fees and penalty join the principal
    WAIVE_PENALTY = "waive-penalty"  # interest and fees join; the penalty is forgiven
    PRINCIPAL_ONLY = "principal-only"  # only the principal is rescheduled; the rest forgiven


@dataclass(frozen=True, slots=True)
class ObservationRule:
    """How long a restructured loan's class is held before it may be upgraded.

    REGULATION.md §7.1 (Order 2023 No. 1): at least 2 repayment periods and at least one
    year. Both must hold; neither may be configured below the regulatory minimum.
    """

    months: int = 12
    on_time_installments: int = 2
    floor: RiskClass = RiskClass.SPECIAL_MENTION

    def __post_init__(self) -> None:
        if self.months < 12:
            raise ValidationError("must be at least 12 months", field="observation_months")
        if self.on_time_installments < 2:
            raise ValidationError("must be at least 2", field="on_time_installments")
        if self.floor.severity < RiskClass.SPECIAL_MENTION.severity:
            raise ValidationError("must be 关注 (special_mention) or worse", field="floor")

    def until(self, on: date) -> date:
        return add_months(on, self.months)

    def floor_for(self, current: RiskClass) -> RiskClass:
        """At least the floor, or the class at restructuring if that is worse."""
        return current if current.severity > self.floor.severity else self.floor


def load_rule(path: Path = RULES_FILE) -> ObservationRule:
    """The observation rule from its TOML file (keys: months, on_time_installments, floor)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}", field="rules") from exc
    return ObservationRule(
        months=int(data["months"]),
        on_time_installments=int(data["on_time_installments"]),
        floor=RiskClass(data["floor"]),
    )


@dataclass(frozen=True, slots=True)
class RestructureTerms:
    on: date
    term_months: int
    rate: Decimal | None
    option: RestructureOption


@dataclass(frozen=True, slots=True)
class Restructured:
    """The outcome: the loan after, its entry and the figures the record keeps."""

    loan: LoanState
    entry: JournalEntry | None
    """None when nothing moves: a current loan with nothing to capitalise is only re-termed."""
    schedule: Schedule
    old_principal: Decimal
    capitalised_interest: Decimal
    capitalised_fee: Decimal
    capitalised_penalty: Decimal
    waived_interest: Decimal
    waived_fee: Decimal
    waived_penalty: Decimal
    class_before: RiskClass
    dpd_before: int

    @property
    def capitalised(self) -> Decimal:
        return self.capitalised_interest + self.capitalised_fee + self.capitalised_penalty

    @property
    def new_principal(self) -> Decimal:
        return self.loan.balances.principal


def _check(loan: LoanState, product: Product, terms: RestructureTerms) -> Decimal:
    """The new rate, after refusing what cannot be restructured (each error names its field)."""
    if loan.status is not LoanStatus.ACTIVE:
        raise Conflict(f"loan {loan.id} is {loan.status}; only an active loan", field="loan")
    if loan.non_accrual and terms.option is not RestructureOption.PRINCIPAL_ONLY:
        raise Conflict(
            f"loan {loan.id} is in non-accrual: its interest, fees and penalty were never"
            " income and cannot be capitalised; restructure it principal-only",
            field="option",
        )
    if product.id != loan.contract.product_id:
        raise ValidationError("is not the loan's product", field="product")
    if isinstance(terms.term_months, bool) or terms.term_months not in product.terms_allowed:
        allowed = ", ".join(str(t) for t in product.terms_allowed)
        raise ValidationError(
            f"{terms.term_months} months not offered (allowed: {allowed})", field="term"
        )
    rate = loan.contract.annual_rate if terms.rate is None else terms.rate
    if not product.rate_min <= rate <= product.rate_max:
        raise ValidationError(
            f"{rate} is outside [{product.rate_min}, {product.rate_max}]", field="rate"
        )
    return rate


def _new_contract(
    contract: LoanContract, product: Product, principal: Decimal, rate: Decimal, t: RestructureTerms
) -> LoanContract:
    """The restructuring agreement replaces the contract terms from the date on."""
    return replace(
        contract,
        principal=principal,
        annual_rate=rate,
        term_months=t.term_months,
        anchor_date=t.on,
        penalty_rate=product.penalty_rate(rate),
    )


@dataclass(frozen=True, slots=True)
class _Split:
    """What happens to each receivable: capitalised or waived (they add up to the quote)."""

    interest: Decimal
    fee: Decimal
    penalty: Decimal
    waived_interest: Decimal
    waived_fee: Decimal
    waived_penalty: Decimal

    @property
    def capitalised(self) -> Decimal:
        return self.interest + self.fee + self.penalty


def _split(quote: PayoffQuote, option: RestructureOption) -> _Split:
    keep_income = option is not RestructureOption.PRINCIPAL_ONLY
    keep_penalty = option is RestructureOption.CAPITALISE
    i = quote.interest if keep_income else ZERO
    f = quote.fee if keep_income else ZERO
    p = quote.penalty if keep_penalty else ZERO
    return _Split(i, f, p, quote.interest - i, quote.fee - f, quote.penalty - p)


def _entry(
    loan: LoanState, quote: PayoffQuote, split: _Split, reference: str
) -> JournalEntry | None:
    lid, suspense = loan.id, loan.non_accrual
    # accrued-but-unrecognised income lives in suspense: it is credited and waived there
    income = {
        a: Account.INTEREST_SUSPENSE if suspense else a
        for a in (Account.INTEREST_INCOME, Account.FEE_INCOME, Account.PENALTY_INCOME)
    }
    legs = [
        # bring receivables up to the date (what close of business has not accrued or billed)
        leg(Account.INTEREST_RECEIVABLE, Side.DEBIT, quote.accrual_due, lid),
        leg(income[Account.INTEREST_INCOME], Side.CREDIT, quote.accrual_due, lid),
        leg(Account.FEE_RECEIVABLE, Side.DEBIT, quote.fees_due, lid),
        leg(income[Account.FEE_INCOME], Side.CREDIT, quote.fees_due, lid),
        # every receivable leaves in full: into principal, or waived
        leg(Account.PRINCIPAL_RECEIVABLE, Side.DEBIT, split.capitalised, lid),
        leg(income[Account.INTEREST_INCOME], Side.DEBIT, split.waived_interest, lid),
        leg(income[Account.FEE_INCOME], Side.DEBIT, split.waived_fee, lid),
        leg(income[Account.PENALTY_INCOME], Side.DEBIT, split.waived_penalty, lid),
        leg(Account.INTEREST_RECEIVABLE, Side.CREDIT, quote.interest, lid),
        leg(Account.FEE_RECEIVABLE, Side.CREDIT, quote.fee, lid),
        leg(Account.PENALTY_RECEIVABLE, Side.CREDIT, quote.penalty, lid),
    ]
    return entry_or_none(EventType.RESTRUCTURE, quote.on, reference, legs)


def restructure(
    loan: LoanState,
    product: Product,
    terms: RestructureTerms,
    rule: ObservationRule,
    reference: str,
) -> Restructured:
    """Turn what the loan owes on `terms.on` into a new schedule from that date."""
    rate = _check(loan, product, terms)
    quote = payoff_quote(loan, terms.on)
    split = _split(quote, terms.option)
    principal = quote.principal + split.capitalised
    if principal <= ZERO:
        raise Conflict(f"loan {loan.id} owes nothing to restructure", field="loan")
    contract = _new_contract(loan.contract, product, principal, rate, terms)
    schedule = generate(_terms(contract))
    items = tuple(InstallmentState.scheduled(i) for i in schedule.installments)
    after = replace(
        loan,
        contract=contract,
        balances=Balances(principal=principal, credit=loan.balances.credit),
        installments=items,
        period=first_period(items),
        schedule_version=loan.schedule_version + 1,
        dpd=0,
        risk_class=rule.floor_for(loan.risk_class),
        non_accrual=False,
    )
    return Restructured(
        loan=after,
        entry=_entry(loan, quote, split, reference),
        schedule=schedule,
        old_principal=quote.principal,
        capitalised_interest=split.interest,
        capitalised_fee=split.fee,
        capitalised_penalty=split.penalty,
        waived_interest=split.waived_interest,
        waived_fee=split.waived_fee,
        waived_penalty=split.waived_penalty,
        class_before=loan.risk_class,
        dpd_before=loan.dpd,
    )


def restructured_on(loan: LoanState) -> date | None:
    """The date of the loan's last restructuring: its anchor moved past the disbursement."""
    contract = loan.contract
    return contract.anchor_date if contract.anchor_date > contract.disbursement_date else None


def check_reversible(loan: LoanState, value_dates: tuple[date, ...]) -> None:
    """A payment up to a restructuring cannot be reversed: the schedule it was applied to
    was replaced, and the amounts it settled were capitalised into the new principal."""
    since = restructured_on(loan)
    if since is not None and any(d <= since for d in value_dates):
        raise Conflict(
            f"loan {loan.id} was restructured on {since}; a payment up to that date cannot "
            "be reversed",
            field="payment_id",
        )


def _terms(contract: LoanContract) -> LoanTerms:
    """The new schedule: starts and is anchored on the restructuring date, numbered from 1."""
    return replace(contract.terms(), start_date=contract.anchor_date, upfront_fee_rate=ZERO)


__all__ = [
    "ObservationRule",
    "RestructureOption",
    "RestructureTerms",
    "Restructured",
    "check_reversible",
    "load_rule",
    "restructure",
    "restructured_on",
]
