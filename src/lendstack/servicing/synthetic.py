"""Synthetic loan books: loans disbursed over the year before a date, already serviced to it.

Each loan follows a simple documented behaviour: it pays every installment on its due date
until, for a minority, it stops at a random installment and never pays again. Instead of
replaying a year of daily closes, the state at the as-of date is computed in closed form with
the same rules close of business applies (linear accrual inside a period, billing on due
dates, daily penalty after grace, non-accrual and charge-off thresholds), so a generated book
is exactly the book the real engine would have produced. A test checks that equivalence
against the real services and close.

The history itself is summarised, like a book migrated from another system: the general
ledger gets one opening-balance entry per book instead of a year of daily entries.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from lendstack.core.daycount import year_days
from lendstack.core.money import ZERO, quantize_fen
from lendstack.servicing.domain.booking import contract_for, open_loan, penalty_rate_e8
from lendstack.servicing.domain.delinquency import default_profile
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
    LoanState,
    accrued_share,
    first_period,
)
from lendstack.servicing.domain.products import Product
from lendstack.servicing.domain.schedule import Schedule, generate

# Product mix and behaviour, calibrated to REGULATION.md §10: tickets 3k–20k CNY, terms up
# to 12 months, and a prime-platform share of borrowers who stop paying.
PRODUCT_WEIGHTS = {
    "cash-loan-installment": 45,
    "huabei-installment": 25,
    "guaranteed-installment": 10,
    "consumer-loan-equal-principal": 10,
    "short-term-bullet": 5,
    "business-loan-interest-first": 5,
}
STOP_PAYING_SHARE = 0.06


@dataclass(frozen=True, slots=True)
class SyntheticLoan:
    state: LoanState
    disbursed_net: Decimal
    upfront_fee: Decimal
    collected_principal: Decimal
    collected_interest: Decimal
    collected_fee: Decimal
    charged_off_principal: Decimal


def _rate(rng: random.Random, low: Decimal, high: Decimal) -> Decimal:
    """A rate on a 0.5% grid inside [low, high]: what pricing grids produce."""
    steps = int((high - low) / Decimal("0.005"))
    return low + Decimal("0.005") * rng.randint(0, steps) if steps > 0 else low


def draw_schedule(
    rng: random.Random, product: Product, as_of: date, age_days: int | None = None
) -> Schedule:
    """One loan's terms; disbursed `age_days` before `as_of`, or uniformly in the past year."""
    terms = [t for t in product.terms_allowed if t <= 12] or list(product.terms_allowed)
    amount = Decimal(rng.randrange(30, 201) * 100)
    amount = min(max(amount, product.amount_min), product.amount_max)
    age = rng.randrange(1, 366) if age_days is None else age_days
    start = as_of - timedelta(days=age)
    fee = _rate(rng, product.fee_rate_min, product.fee_rate_max) if product.fee_rate_max else None
    return generate(
        product.terms(
            amount,
            rng.choice(terms),
            _rate(rng, product.rate_min, product.rate_max),
            start,
            fee_rate=fee,
        )
    )


def _daily_penalty(state: LoanState, overdue: Decimal) -> Decimal:
    rate = Decimal(penalty_rate_e8(state.contract)) / 10**8
    days = year_days(state.contract.day_count)
    return quantize_fen(overdue * rate / days, state.contract.rounding)


def _penalty_through(state: LoanState, unpaid: Sequence[InstallmentState], day: date) -> Decimal:
    """Σ over closed days of the daily penalty on principal overdue beyond grace."""
    grace = timedelta(days=state.contract.grace_days)
    starts = sorted({i.due_date + grace + timedelta(days=1) for i in unpaid})
    total = ZERO
    for k, start in enumerate(starts):
        if start > day:
            break
        end = min(starts[k + 1] - timedelta(days=1), day) if k + 1 < len(starts) else day
        overdue = sum((i.principal for i in unpaid if i.due_date + grace < start), ZERO)
        total += _daily_penalty(state, overdue) * ((end - start).days + 1)
    return total


def serviced(state: LoanState, stop_at: int | None, day: date) -> LoanState:
    """The loan after closing `day`, paying on time before installment `stop_at`."""
    items, unpaid = [], []
    for item in state.installments:
        billed = item.due_date <= day
        pays = billed and (stop_at is None or item.number < stop_at)
        # Built directly rather than with dataclasses.replace: this runs millions of times.
        paid = (item.principal, item.interest, item.fee) if pays else (ZERO, ZERO, ZERO)
        items.append(
            InstallmentState(
                item.number,
                item.start_date,
                item.due_date,
                item.principal,
                item.interest,
                item.fee,
                *paid,
                billed=billed,
            )
        )
        if billed and not pays:
            unpaid.append(item)
    period = first_period(tuple(items))
    if period is not None:
        accrued = accrued_share(
            period.interest,
            (day - period.start).days,
            (period.due - period.start).days,
            state.contract.rounding,
        )
        period = replace(period, accrued=accrued)
    return _with_balances(state, tuple(items), unpaid, period, day)


def _with_balances(
    state: LoanState,
    items: tuple[InstallmentState, ...],
    unpaid: list[InstallmentState],
    period: AccrualPeriod | None,
    day: date,
) -> LoanState:
    accrued = period.accrued if period is not None else ZERO
    balances = Balances(
        principal=sum((i.unpaid_principal for i in items), ZERO),
        interest=sum((i.interest for i in unpaid), ZERO) + accrued,
        fee=sum((i.fee for i in unpaid), ZERO),
        penalty=_penalty_through(state, unpaid, day),
    )
    grace = state.contract.grace_days
    oldest = min((i.due_date for i in unpaid), default=None)
    dpd = (day - oldest).days if oldest and day > oldest + timedelta(days=grace) else 0
    done = balances.receivable == ZERO and period is None
    return replace(
        state,
        installments=items,
        period=period,
        balances=balances,
        dpd=dpd,
        risk_class=default_profile().classify(dpd),
        non_accrual=dpd >= state.contract.non_accrual_dpd,
        status=LoanStatus.PAID_OFF if done else LoanStatus.ACTIVE,
        closed_on=max(i.due_date for i in items) if done else None,
    )


def _charge_off_day(state: LoanState, stop_at: int | None) -> date | None:
    if stop_at is None or stop_at > len(state.installments):
        return None
    first_unpaid = state.installments[stop_at - 1].due_date
    return first_unpaid + timedelta(days=state.contract.charge_off_dpd)


def synthetic_loan(
    loan_id: int, product: Product, schedule: Schedule, stop_at: int | None, as_of: date
) -> SyntheticLoan:
    """A loan as the engine would hold it after closing `as_of`."""
    fresh = replace(open_loan(contract_for(product, schedule), schedule), id=loan_id)
    co_day = _charge_off_day(fresh, stop_at)
    charged = co_day is not None and co_day <= as_of
    state = serviced(fresh, stop_at, co_day if charged and co_day else as_of)
    paid = [i for i in state.installments if i.paid_principal]
    charged_principal = ZERO
    if charged:
        charged_principal = state.balances.principal
        state = replace(
            state,
            status=LoanStatus.CHARGED_OFF,
            charged_off=state.balances.receivable,
            balances=Balances(),
            closed_on=co_day,
            period=None,
        )
    return SyntheticLoan(
        state=state,
        disbursed_net=schedule.net_disbursement,
        upfront_fee=schedule.upfront_fee,
        collected_principal=sum((i.principal for i in paid), ZERO),
        collected_interest=sum((i.interest for i in paid), ZERO),
        collected_fee=sum((i.fee for i in paid), ZERO),
        charged_off_principal=charged_principal,
    )


@dataclass(frozen=True, slots=True)
class BookSpec:
    """What to generate: the same spec and seed always give the same book."""

    count: int
    seed: int
    as_of: date
    age_days: int | None = None  # fix every loan's age, e.g. to compare young and old books


CHUNK = 5_000


def generate_chunk(job: tuple[dict[str, Product], BookSpec, int]) -> list[SyntheticLoan]:
    """Chunk `index` of a book: its own seed, so any number of workers gives the same book."""
    products, spec, index = job
    size = min(CHUNK, spec.count - index * CHUNK)
    chunk = replace(spec, count=size, seed=spec.seed * 1_000_003 + index)
    return list(generate_book(products, chunk, index * CHUNK + 1))


def chunk_jobs(
    products: dict[str, Product], spec: BookSpec
) -> list[tuple[dict[str, Product], BookSpec, int]]:
    return [(products, spec, i) for i in range(-(-spec.count // CHUNK))]


def generate_book(
    products: dict[str, Product], spec: BookSpec, first_id: int = 1
) -> Iterator[SyntheticLoan]:
    """`spec.count` loans, deterministic for the spec's seed."""
    rng = random.Random(spec.seed)
    ids, weights = list(PRODUCT_WEIGHTS), list(PRODUCT_WEIGHTS.values())
    for n in range(spec.count):
        product = products[rng.choices(ids, weights)[0]]
        schedule = draw_schedule(rng, product, spec.as_of, spec.age_days)
        stops = rng.random() < STOP_PAYING_SHARE
        stop_at = rng.randint(1, len(schedule.installments)) if stops else None
        yield synthetic_loan(first_id + n, product, schedule, stop_at, spec.as_of)


@dataclass
class OpeningTotals:
    """Sums over a generated book for its opening-balance entry."""

    principal: Decimal = ZERO
    interest: Decimal = ZERO
    fee: Decimal = ZERO
    penalty: Decimal = ZERO
    suspense: Decimal = ZERO
    cash: Decimal = ZERO  # collected minus disbursed: negative means net cash out
    interest_income: Decimal = ZERO
    fee_income: Decimal = ZERO
    penalty_income: Decimal = ZERO
    charge_off: Decimal = ZERO

    def add(self, loan: SyntheticLoan) -> None:
        b = loan.state.balances
        self.principal += b.principal
        self.interest += b.interest
        self.fee += b.fee
        self.penalty += b.penalty
        collected = loan.collected_principal + loan.collected_interest + loan.collected_fee
        self.cash += collected - loan.disbursed_net
        self.interest_income += loan.collected_interest
        self.fee_income += loan.upfront_fee + loan.collected_fee
        self.charge_off += loan.charged_off_principal
        if loan.state.non_accrual and loan.state.status is LoanStatus.ACTIVE:
            self.suspense += b.income_receivable
        else:
            self.interest_income += b.interest
            self.fee_income += b.fee
            self.penalty_income += b.penalty

    def merge(self, other: OpeningTotals) -> None:
        for name in vars(other):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def entry(self, as_of: date, reference: str) -> JournalEntry | None:
        return entry_or_none(
            EventType.OPENING_BALANCE,
            as_of,
            reference,
            [
                leg(Account.PRINCIPAL_RECEIVABLE, Side.DEBIT, self.principal),
                leg(Account.INTEREST_RECEIVABLE, Side.DEBIT, self.interest),
                leg(Account.FEE_RECEIVABLE, Side.DEBIT, self.fee),
                leg(Account.PENALTY_RECEIVABLE, Side.DEBIT, self.penalty),
                leg(Account.CHARGE_OFF_EXPENSE, Side.DEBIT, self.charge_off),
                leg(Account.CASH, Side.DEBIT, self.cash),
                leg(Account.INTEREST_SUSPENSE, Side.CREDIT, self.suspense),
                leg(Account.INTEREST_INCOME, Side.CREDIT, self.interest_income),
                leg(Account.FEE_INCOME, Side.CREDIT, self.fee_income),
                leg(Account.PENALTY_INCOME, Side.CREDIT, self.penalty_income),
            ],
        )
