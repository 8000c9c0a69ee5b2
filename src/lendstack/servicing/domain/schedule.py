"""Installment schedules: `generate(terms) -> Schedule`, a pure function over frozen values.

Fineract's users complain about rounding they cannot configure and a hard-coded 365-day year;
here both come from the terms (and so from the product), and every amount is a `Decimal`
rounded to the fen exactly once. The invariants a ledger relies on are checked when a
`Schedule` is built: principal portions sum to the principal, and no portion is negative.

Conventions (see docs/servicing-domain.md):

* due dates are `due_dates(anchor, term_months, after=start_date)`; for a fresh loan the
  anchor is the start date, so installment k falls on add_months(start, k);
* interest of a period = opening balance × annual rate × year_fraction(period start, due),
  rounded with the product's mode; only the annuity amount uses the monthly rate annual/12;
* a per-period fee = principal × fee_rate (rounded) on every installment, for every method;
* the last installment takes the remaining principal, absorbing all rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, localcontext
from enum import StrEnum
from functools import lru_cache
from typing import TypeVar

from lendstack.core.dates import due_dates, periods_between
from lendstack.core.daycount import DayCount, day_count_days, simple_interest, year_days
from lendstack.core.errors import InvariantViolation, ValidationError
from lendstack.core.money import FEN, ZERO, Rounding, from_fen, quantize_fen, to_fen
from lendstack.core.rates import AprDisclosure, disclose

MAX_TERM_MONTHS = 360


class RepaymentMethod(StrEnum):
    EQUAL_INSTALLMENT = "equal-installment"  # 等额本息
    EQUAL_PRINCIPAL = "equal-principal"  # 等额本金
    INTEREST_FREE_FEE = "interest-free-fee"  # 分期手续费 (Huabei-style)
    INTEREST_FIRST = "interest-first"  # 先息后本
    BULLET = "bullet"  # 到期一次还本付息


LEVEL_METHODS = frozenset(
    {
        RepaymentMethod.EQUAL_INSTALLMENT,
        RepaymentMethod.EQUAL_PRINCIPAL,
        RepaymentMethod.INTEREST_FREE_FEE,
    }
)
"""Methods with a level amount per period, so a prepayment can shorten the term."""


class PrepaymentMode(StrEnum):
    SHORTEN_TERM = "shorten-term"  # keep the installment, pay off sooner
    LOWER_INSTALLMENT = "lower-installment"  # keep the maturity, pay less each month


def _decimal(value: object, name: str) -> Decimal:
    """Accept Decimal or int; refuse float and bool so no binary fraction reaches money."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ValidationError(f"must be a Decimal, not {type(value).__name__}", field=name)
    result = Decimal(value)
    if not result.is_finite():
        raise ValidationError("must be finite", field=name)
    return result


def _rate(value: object, name: str) -> Decimal:
    rate = _decimal(value, name)
    if not 0 <= rate < 1:
        raise ValidationError(f"must be in [0, 1), got {rate}", field=name)
    return rate


def _fen_amount(value: object, name: str) -> Decimal:
    amount = _decimal(value, name)
    if amount <= 0:
        raise ValidationError(f"must be > 0, got {amount}", field=name)
    if amount != amount.quantize(FEN):
        raise ValidationError(f"{amount} is more precise than the fen (0.01)", field=name)
    return amount.quantize(FEN)


@dataclass(frozen=True, slots=True)
class LoanTerms:
    """Everything `generate` needs; validated and normalised when built.

    `term_months` counts the monthly periods from `start_date` to maturity. With
    `installment_amount` set (re-amortisation "shorten term") it is an upper bound and the
    count is derived. That amount is the level payment (principal + interest) for equal
    installment and the level principal for equal principal and interest-free-fee.
    """

    principal: Decimal
    annual_rate: Decimal
    term_months: int
    method: RepaymentMethod
    start_date: date
    day_count: DayCount = DayCount.ACT_365F
    rounding: Rounding = Rounding.HALF_UP
    fee_rate: Decimal = Decimal(0)
    upfront_fee_rate: Decimal = Decimal(0)
    anchor_date: date | None = None
    first_number: int = 1
    installment_amount: Decimal | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "principal", _fen_amount(self.principal, "principal"))
        set_(self, "annual_rate", _rate(self.annual_rate, "rate"))
        set_(self, "fee_rate", _rate(self.fee_rate, "fee_rate"))
        set_(self, "upfront_fee_rate", _rate(self.upfront_fee_rate, "upfront_fee_rate"))
        set_(self, "method", as_enum(RepaymentMethod, self.method, "method"))
        set_(self, "day_count", as_enum(DayCount, self.day_count, "day_count"))
        set_(self, "rounding", as_enum(Rounding, self.rounding, "rounding"))
        self._check_shape()
        if self.installment_amount is not None:
            amount = _fen_amount(self.installment_amount, "installment_amount")
            set_(self, "installment_amount", amount)
            if self.method not in LEVEL_METHODS:
                raise ValidationError(
                    f"a {self.method} loan has no level installment to keep",
                    field="installment_amount",
                )

    def _check_shape(self) -> None:
        for name in ("start_date", "anchor_date"):
            value = getattr(self, name)
            if not (value is None and name == "anchor_date") and type(value) is not date:
                raise ValidationError(f"must be a date, not {type(value).__name__}", field=name)
        term = self.term_months
        if isinstance(term, bool) or not isinstance(term, int):
            raise ValidationError("must be an integer number of months", field="term")
        if not 1 <= term <= MAX_TERM_MONTHS:
            raise ValidationError(f"must be 1..{MAX_TERM_MONTHS} months, got {term}", field="term")
        if self.method is RepaymentMethod.INTEREST_FREE_FEE and self.annual_rate != 0:
            raise ValidationError("an interest-free-fee loan charges no interest", field="rate")
        if self.anchor_date is not None and self.anchor_date > self.start_date:
            raise ValidationError("the anchor cannot follow the start date", field="anchor_date")
        if isinstance(self.first_number, bool) or self.first_number < 1:
            raise ValidationError("must be >= 1", field="first_number")

    @property
    def anchor(self) -> date:
        return self.start_date if self.anchor_date is None else self.anchor_date

    @property
    def monthly_rate(self) -> Decimal:
        return self.annual_rate / 12

    def round(self, value: Decimal) -> Decimal:
        return quantize_fen(value, self.rounding)


_E = TypeVar("_E", bound=StrEnum)


def as_enum(kind: type[_E], value: object, name: str) -> _E:
    """`value` as a member of `kind`, or a ValidationError listing the allowed values."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str) and value in kind._value2member_map_:
        return kind(value)
    allowed = ", ".join(m.value for m in kind)
    raise ValidationError(f"unknown value {value!r}; expected one of {allowed}", field=name)


@dataclass(frozen=True, slots=True)
class Installment:
    """One scheduled repayment; `start_date` is the period's start (the previous due date)."""

    number: int
    start_date: date
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee

    @property
    def days(self) -> int:
        return (self.due_date - self.start_date).days


@dataclass(frozen=True, slots=True)
class Schedule:
    """A loan's installments; built only with principal portions summing to the principal."""

    terms: LoanTerms
    installments: tuple[Installment, ...]

    def __post_init__(self) -> None:
        if not self.installments:
            raise InvariantViolation("a schedule needs at least one installment")
        if self.total_principal != self.terms.principal:
            raise InvariantViolation(
                f"principal portions sum to {self.total_principal}, not {self.terms.principal}"
            )
        for inst in self.installments:
            if min(inst.principal, inst.interest, inst.fee) < 0:
                raise InvariantViolation(f"installment {inst.number} has a negative portion")

    @property
    def total_principal(self) -> Decimal:
        return sum((i.principal for i in self.installments), ZERO)

    @property
    def total_interest(self) -> Decimal:
        return sum((i.interest for i in self.installments), ZERO)

    @property
    def total_fees(self) -> Decimal:
        """Per-period fees only; the upfront fee is reported separately."""
        return sum((i.fee for i in self.installments), ZERO)

    @property
    def upfront_fee(self) -> Decimal:
        return self.terms.round(self.terms.principal * self.terms.upfront_fee_rate)

    @property
    def total_cost(self) -> Decimal:
        """Everything the borrower pays beyond the principal: the APR numerator."""
        return self.total_interest + self.total_fees + self.upfront_fee

    @property
    def net_disbursement(self) -> Decimal:
        return self.terms.principal - self.upfront_fee

    @property
    def maturity_date(self) -> date:
        return self.installments[-1].due_date

    @property
    def term_months(self) -> int:
        """Monthly grid periods from start to maturity (a bullet of n months has n)."""
        t = self.terms
        return _periods_between(t.anchor, t.start_date, self.maturity_date)

    def cash_flows(self) -> tuple[Decimal, ...]:
        """Borrower's monthly flows: [net disbursement, −payment month 1, …, −payment month n].

        Months without a payment (inside a bullet) are zeros, so index = month number.
        """
        t = self.terms
        grid = _due_dates(t.anchor, self.term_months, t.start_date)
        owed = dict.fromkeys(grid, ZERO)
        for inst in self.installments:
            owed[inst.due_date] += inst.total
        return (self.net_disbursement, *(-owed[d] for d in grid))

    def apr(self) -> AprDisclosure:
        return _disclosed(self.cash_flows(), self.terms.principal, self.term_months)


_REMEMBERED = 16_384
"""Schedules (a few KB each) and APRs kept: a month's offers for a 100k-borrower simulation
(about 12k quotes) are still there when the month's loans are booked."""

_disclosed = lru_cache(maxsize=_REMEMBERED)(disclose)
"""`disclose` remembered: an offer's APR is solved when it is priced and again when it is
booked (a root search each time); equal flows give the equal, immutable disclosure."""


_GRIDS_REMEMBERED = 4_096
"""Due-date grids kept: one per (anchor, start, count), so a year of daily start dates
times the products' terms fits."""


@lru_cache(maxsize=_GRIDS_REMEMBERED)
def _due_dates(anchor: date, count: int, after: date) -> tuple[date, ...]:
    """`due_dates` remembered: every loan starting on a day with the same term shares one grid
    (each schedule, and each APR's cash flows, needs it)."""
    return due_dates(anchor, count, after=after)


@lru_cache(maxsize=_GRIDS_REMEMBERED)
def _periods_between(anchor: date, after: date, end: date) -> int:
    """`periods_between` remembered: a schedule's `term_months` is asked for by its cash
    flows, its APR and every offer's terms and JSON, and loans starting on a day with the same
    term share it."""
    return periods_between(anchor, after, end)


@lru_cache(maxsize=_GRIDS_REMEMBERED)
def _period_grid(anchor: date, start: date, count: int) -> tuple[tuple[date, date], ...]:
    dates = _due_dates(anchor, count, start)
    starts = (start, *dates[:-1])
    return tuple(zip(starts, dates, strict=True))


@lru_cache(maxsize=_GRIDS_REMEMBERED)
def _day_grid(
    anchor: date, start: date, count: int, dc: DayCount
) -> tuple[tuple[date, date, Decimal], ...]:
    return tuple(
        (a, b, Decimal(day_count_days(dc, a, b))) for a, b in _period_grid(anchor, start, count)
    )


def _periods_with_days(terms: LoanTerms, count: int) -> tuple[tuple[date, date, Decimal], ...]:
    """(period start, due date, days under the day count) of each of `count` periods; the
    days are counted once per grid, not once per schedule."""
    return _day_grid(terms.anchor, terms.start_date, count, terms.day_count)


def _interest(terms: LoanTerms, balance: Decimal, start: date, end: date) -> Decimal:
    return terms.round(simple_interest(balance, terms.annual_rate, terms.day_count, start, end))


def _interest_for(terms: LoanTerms, balance: Decimal, days: Decimal) -> Decimal:
    """`_interest` over a period of `days` (from `_periods_with_days`): simple_interest's own
    expression, operation for operation, so the same digits."""
    return _period_interest(terms)(balance, days)


def _period_interest(terms: LoanTerms) -> Callable[[Decimal, Decimal], Decimal]:
    """`_interest_for` of these terms as a function of (balance, days), the rate, year and
    rounding looked up once: a schedule asks it for every period."""
    rate, year = terms.annual_rate, Decimal(year_days(terms.day_count))
    mode = terms.rounding.decimal_mode
    return lambda balance, days: (balance * rate * days / year).quantize(FEN, rounding=mode)


def annuity_payment(principal: Decimal, monthly_rate: Decimal, n: int) -> Decimal:
    """Unrounded level payment A = P·r(1+r)^n / ((1+r)^n − 1), or P/n at a zero rate."""
    with localcontext() as ctx:
        ctx.prec = 50
        if monthly_rate == 0:
            return principal / n
        growth = (1 + monthly_rate) ** n
        payment = principal * monthly_rate * growth / (growth - 1)
    return +payment


def _level_amount(terms: LoanTerms) -> Decimal:
    """The installment kept level: given, or derived from the term (annuity or P/n)."""
    if terms.installment_amount is not None:
        return terms.installment_amount
    n = terms.term_months
    if terms.method is RepaymentMethod.EQUAL_INSTALLMENT:
        return terms.round(annuity_payment(terms.principal, terms.monthly_rate, n))
    return terms.round(terms.principal / n)


def _amortize(terms: LoanTerms) -> list[Installment]:
    """Equal installment, equal principal and interest-free-fee: a level amount per period.

    A level can repay the principal before the last period: rounded up on a tiny loan
    (1.00 over 27 months at 0.04), or, for a long loan under an actual-day convention, because
    31-day months charge more interest than the annuity assumes and such periods pay that
    interest in full. The level then drops to the largest fen amount that still leaves
    principal for the last period, so no schedule ends in empty installments.
    """
    return _viable_level(terms)[1]


def _viable_level(terms: LoanTerms) -> tuple[Decimal, list[Installment]]:
    """The level actually used, with the installments it gives."""
    level = _level_amount(terms)
    rows = _run_level(terms, level)
    if terms.installment_amount is None and _exhausted_early(rows):
        level = _largest_viable_level(terms, level)
        rows = _run_level(terms, level)
    return level, rows


def _exhausted_early(rows: list[Installment]) -> bool:
    return len(rows) > 1 and rows[-1].principal == 0


def _largest_viable_level(terms: LoanTerms, level: Decimal) -> Decimal:
    """Bisection over fen: a level of 0 always leaves the principal to the last period, and a
    larger level only repays sooner, so the boundary is unique."""
    ok, too_big = 0, to_fen(level)
    while too_big - ok > 1:
        mid = (ok + too_big) // 2
        if _exhausted_early(_run_level(terms, from_fen(mid))):
            too_big = mid
        else:
            ok = mid
    return from_fen(ok)


def _run_level(terms: LoanTerms, level: Decimal) -> list[Installment]:
    """Principal = level − interest (annuity) or the level itself, kept within [0, balance].

    The last period takes the remaining balance. With a given installment amount ("shorten
    term") the loop stops once the balance is repaid, which derives the count; `term_months`
    still bounds it, so a term never lengthens.
    """
    fee = terms.round(terms.principal * terms.fee_rate)
    annuity = terms.method is RepaymentMethod.EQUAL_INSTALLMENT
    derived = terms.installment_amount is not None
    balance, rows = terms.principal, list[Installment]()
    periods = _periods_with_days(terms, terms.term_months)
    interest_for = _period_interest(terms)
    for index, (start, due, days) in enumerate(periods):
        interest = interest_for(balance, days)
        wanted = level - interest if annuity else level
        last = index == len(periods) - 1
        part = balance if last else min(balance, max(ZERO, wanted))
        rows.append(Installment(terms.first_number + index, start, due, part, interest, fee))
        balance -= part
        if derived and balance == 0:
            break
    return rows


def _interest_first(terms: LoanTerms) -> list[Installment]:
    fee = terms.round(terms.principal * terms.fee_rate)
    periods = _periods_with_days(terms, terms.term_months)
    last = len(periods) - 1
    interest_for = _period_interest(terms)
    return [
        Installment(
            terms.first_number + i,
            start,
            due,
            terms.principal if i == last else ZERO,
            interest_for(terms.principal, days),
            fee,
        )
        for i, (start, due, days) in enumerate(periods)
    ]


def _bullet(terms: LoanTerms) -> list[Installment]:
    """One repayment at maturity; the per-period fee accrues for every month of the term."""
    maturity = _due_dates(terms.anchor, terms.term_months, terms.start_date)[-1]
    interest = _interest(terms, terms.principal, terms.start_date, maturity)
    fee = terms.round(terms.principal * terms.fee_rate * terms.term_months)
    inst = Installment(
        terms.first_number, terms.start_date, maturity, terms.principal, interest, fee
    )
    return [inst]


def generate(terms: LoanTerms) -> Schedule:
    """The schedule of `terms`. Pure: the same terms always give the same schedule, so it is
    remembered (an offer's schedule is built when it is priced and again when it is booked;
    `Schedule` is immutable, so sharing one is safe)."""
    return _generate(repr(terms), terms)


@lru_cache(maxsize=_REMEMBERED)
def _generate(exact: str, terms: LoanTerms) -> Schedule:
    """`exact`, the terms' repr, keeps apart terms equal as numbers but written differently
    (a rate of 0.18 and of 0.180 hash alike): the schedule carries the caller's own terms."""
    if terms.method is RepaymentMethod.INTEREST_FIRST:
        rows = _interest_first(terms)
    elif terms.method is RepaymentMethod.BULLET:
        rows = _bullet(terms)
    else:
        _check_amortizes(terms)
        rows = _amortize(terms)
    return Schedule(terms, tuple(rows))


def _check_amortizes(terms: LoanTerms) -> None:
    """A kept installment must exceed a full month's interest, or the loan never amortises."""
    if terms.installment_amount is None or terms.method is not RepaymentMethod.EQUAL_INSTALLMENT:
        return
    if terms.installment_amount <= terms.principal * terms.monthly_rate:
        raise ValidationError(
            f"{terms.installment_amount} does not cover a month's interest on {terms.principal}",
            field="installment_amount",
        )


def level_installment(schedule: Schedule) -> Decimal:
    """The amount a prepayment in "shorten term" mode keeps level for `schedule`'s method."""
    terms = schedule.terms
    if terms.method not in LEVEL_METHODS:
        raise ValidationError(f"a {terms.method} loan has no level installment", field="mode")
    return _viable_level(terms)[0]


def reamortize(
    schedule: Schedule, remaining_principal: Decimal, restart: date, mode: PrepaymentMode
) -> Schedule:
    """The tail schedule after a partial prepayment on `restart`.

    The tail keeps the original anchor (so its due dates are the original ones, the first period
    a stub from `restart`), continues the installment numbering, and runs to the original
    maturity. SHORTEN_TERM keeps the level installment and derives a shorter count;
    LOWER_INSTALLMENT keeps the count and recomputes the installment. Interest accrued before
    `restart` is the caller's to settle with the prepayment.
    """
    original = schedule.terms
    mode = as_enum(PrepaymentMode, mode, "mode")
    if not original.start_date <= restart < schedule.maturity_date:
        raise ValidationError(
            f"must fall in [{original.start_date}, {schedule.maturity_date})", field="restart"
        )
    remaining = schedule.term_months - periods_between(
        original.anchor, original.start_date, restart
    )
    keep = level_installment(schedule) if mode is PrepaymentMode.SHORTEN_TERM else None
    first = next(i.number for i in schedule.installments if i.due_date > restart)
    tail = replace(
        original,
        principal=remaining_principal,
        start_date=restart,
        anchor_date=original.anchor,
        term_months=remaining,
        first_number=first,
        installment_amount=keep,
        upfront_fee_rate=Decimal(0),
    )
    return generate(tail)
