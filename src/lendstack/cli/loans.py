"""`lendstack product`, `loan` and `pay`: quote, book, inspect and pay loans."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from lendstack.cli.context import app_context
from lendstack.cli.params import parse_amount, parse_date, parse_rate
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.core.daycount import DayCount
from lendstack.core.money import Rounding
from lendstack.servicing import (
    LoanRequest,
    LoanState,
    LoanTerms,
    Payment,
    PrepaymentMode,
    Product,
    RepaymentMethod,
    Schedule,
    StoredPayment,
    book_loan,
    generate,
    get_loan,
    quote,
    quote_payoff,
    reverse_payment,
    take_payment,
)
from lendstack.servicing.views import loan_json, payment_json, payoff_json

FormatOpt = typer.Option(OutputFormat.TABLE, "--format", help="table for people, json for tools.")

product_app = typer.Typer(help="Loan products (data files).", no_args_is_help=True)
loan_app = typer.Typer(help="Quote, book and inspect loans.", no_args_is_help=True)


class _PayGroup(TyperGroup):
    """`lendstack pay LOAN AMOUNT …` posts; `lendstack pay reverse …` reverses."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands:
            args = ["post", *args]
        return super().resolve_command(ctx, args)


pay_app = typer.Typer(cls=_PayGroup, help="Post and reverse payments.", no_args_is_help=True)


def _product_row(p: Product) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "method": p.method.value,
        "terms": list(p.terms_allowed),
        "rate_min": p.rate_min,
        "rate_max": p.rate_max,
        "fee_rate_min": p.fee_rate_min,
        "fee_rate_max": p.fee_rate_max,
        "amount_min": p.amount_min,
        "amount_max": p.amount_max,
        "day_count": p.day_count.value,
        "rounding": p.rounding.value,
        "grace_days": p.grace_days,
        "penalty_multiplier": p.penalty_multiplier,
        "waterfall": [c.value for c in p.waterfall],
        "non_accrual_dpd": p.non_accrual_dpd,
        "charge_off_dpd": p.charge_off_dpd,
    }


@product_app.command("list")
def product_list(ctx: typer.Context, fmt: OutputFormat = FormatOpt) -> None:
    """List the products this installation offers."""
    products = app_context(ctx).catalog.all()
    if fmt is OutputFormat.JSON:
        print_json([_product_row(p) for p in products])
        return
    table = Table("id", "method", "terms", "rate", "amount", "day count", title="Products")
    for p in products:
        terms = ",".join(map(str, p.terms_allowed))
        table.add_row(
            p.id,
            p.method.value,
            terms,
            f"{p.rate_min}–{p.rate_max}",
            f"{p.amount_min}–{p.amount_max}",
            p.day_count.value,
        )
    console.print(table)


@product_app.command("show")
def product_show(ctx: typer.Context, product_id: str, fmt: OutputFormat = FormatOpt) -> None:
    """Show one product's full definition."""
    row = _product_row(app_context(ctx).catalog.get(product_id))
    if fmt is OutputFormat.JSON:
        print_json(row)
        return
    table = Table("field", "value", title=product_id)
    for key, value in row.items():
        table.add_row(key, str(value))
    console.print(table)


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    apr = schedule.apr()
    return {
        "amount": schedule.terms.principal,
        "term_months": schedule.term_months,
        "method": schedule.terms.method.value,
        "annual_rate": schedule.terms.annual_rate,
        "installments": [
            {
                "number": i.number,
                "due_date": i.due_date,
                "principal": i.principal,
                "interest": i.interest,
                "fee": i.fee,
                "total": i.total,
            }
            for i in schedule.installments
        ],
        "apr_irr": apr.apr_irr,
        "apr_effective": apr.apr_effective,
        "apr_simple": apr.apr_simple,
        "upfront_fee": schedule.upfront_fee,
        "total_interest": schedule.total_interest,
        "total_fees": schedule.total_fees + schedule.upfront_fee,
        "total_cost": schedule.total_cost,
    }


def print_schedule(schedule: Schedule, title: str) -> None:
    table = Table("#", "due", "principal", "interest", "fee", "total", title=title)
    for i in schedule.installments:
        table.add_row(
            str(i.number),
            str(i.due_date),
            str(i.principal),
            str(i.interest),
            str(i.fee),
            str(i.total),
        )
    console.print(table)
    apr = schedule.apr()
    console.print(
        f"APR (IRR, nominal = monthly IRR × 12): [bold]{_pct(apr.apr_irr)}[/]   "
        f"effective annual: {_pct(apr.apr_effective)}   simple annualised: {_pct(apr.apr_simple)}"
    )
    console.print(
        f"total interest {schedule.total_interest}  fees {schedule.total_fees + schedule.upfront_fee}"
        f"  total cost {schedule.total_cost}"
    )


def _pct(rate: Decimal) -> str:
    return f"{(rate * 100).quantize(Decimal('0.0001'))}%"


@loan_app.command("quote")
def loan_quote(
    ctx: typer.Context,
    amount: str = typer.Option(..., help="Principal in CNY, e.g. 12000 or 12000.50."),
    term: int = typer.Option(..., help="Term in months."),
    rate: str = typer.Option("0", help="Annual contract rate as a fraction, e.g. 0.18."),
    method: RepaymentMethod | None = typer.Option(
        None, help="Repayment method (without --product)."
    ),
    product: str | None = typer.Option(None, help="Quote within a product's ranges instead."),
    fee_rate: str | None = typer.Option(None, help="Per-period fee as a share of principal."),
    upfront_fee_rate: str | None = typer.Option(None, help="Service fee taken at disbursement."),
    day_count: DayCount = typer.Option(DayCount.ACT_365F, help="Day count (without --product)."),
    rounding: Rounding = typer.Option(Rounding.HALF_UP, help="Rounding (without --product)."),
    start: str | None = typer.Option(None, "--date", help="Disbursement date; default today."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Quote an installment loan: the full schedule and its true APR, every fee included."""
    principal = parse_amount(amount, "amount")
    on = parse_date(start) if start else date.today()
    if product is not None:
        request = LoanRequest(
            product,
            principal,
            term,
            parse_rate(rate, "rate"),
            on,
            parse_rate(fee_rate, "fee_rate"),
            parse_rate(upfront_fee_rate, "upfront_fee_rate"),
        )
        schedule = quote(app_context(ctx).catalog, request)
    else:
        schedule = generate(
            _free_terms(
                principal, term, rate, method, fee_rate, upfront_fee_rate, day_count, rounding, on
            )
        )
    if fmt is OutputFormat.JSON:
        print_json(schedule_json(schedule))
    else:
        print_schedule(schedule, f"Quote: {principal} CNY over {term} months")


def _free_terms(
    principal: Decimal,
    term: int,
    rate: str,
    method: RepaymentMethod | None,
    fee_rate: str | None,
    upfront: str | None,
    day_count: DayCount,
    rounding: Rounding,
    on: date,
) -> LoanTerms:
    from lendstack.core.errors import ValidationError

    if method is None:
        raise ValidationError("give --method or --product", field="method")
    return LoanTerms(
        principal=principal,
        annual_rate=parse_rate(rate, "rate") or Decimal(0),
        term_months=term,
        method=method,
        start_date=on,
        day_count=day_count,
        rounding=rounding,
        fee_rate=parse_rate(fee_rate, "fee_rate") or Decimal(0),
        upfront_fee_rate=parse_rate(upfront, "upfront_fee_rate") or Decimal(0),
    )


@loan_app.command("book")
def loan_book(
    ctx: typer.Context,
    product: str = typer.Option(..., help="Product id (see `lendstack product list`)."),
    amount: str = typer.Option(..., help="Principal in CNY."),
    term: int = typer.Option(..., help="Term in months."),
    rate: str | None = typer.Option(None, help="Annual rate; default the product's minimum."),
    start: str = typer.Option(..., "--date", help="Disbursement date (the open business date)."),
    fee_rate: str | None = typer.Option(None, help="Per-period fee rate."),
    upfront_fee_rate: str | None = typer.Option(None, help="Upfront service fee rate."),
    reference: str | None = typer.Option(
        None, help="External reference; makes booking idempotent."
    ),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Disburse a loan: contract, schedule and disbursement entry in one transaction."""
    actx = app_context(ctx)
    request = LoanRequest(
        product,
        parse_amount(amount, "amount"),
        term,
        parse_rate(rate, "rate"),
        parse_date(start),
        parse_rate(fee_rate, "fee_rate"),
        parse_rate(upfront_fee_rate, "upfront_fee_rate"),
    )
    loan = book_loan(actx.uow(), actx.catalog, request, reference)
    render_loan(loan, fmt)


def render_loan(loan: LoanState, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.JSON:
        print_json(loan_json(loan))
        return
    c, b = loan.contract, loan.balances
    console.print(
        f"[bold]Loan {loan.id}[/] {c.product_id} {c.principal} CNY @ {c.annual_rate} "
        f"{c.method.value} {c.term_months}m from {c.disbursement_date} — {loan.status.value}, "
        f"DPD {loan.dpd}, {loan.risk_class.value} ({loan.risk_class.chinese})"
    )
    console.print(
        f"balances: principal {b.principal}  interest {b.interest}  fee {b.fee}  "
        f"penalty {b.penalty}  credit {b.credit}"
    )
    table = Table("#", "due", "principal", "interest", "fee", "paid", "billed")
    for i in loan.installments:
        paid = i.paid_principal + i.paid_interest + i.paid_fee
        table.add_row(
            str(i.number),
            str(i.due_date),
            str(i.principal),
            str(i.interest),
            str(i.fee),
            str(paid),
            "yes" if i.billed else "",
        )
    console.print(table)


@loan_app.command("show")
def loan_show(ctx: typer.Context, loan_id: int, fmt: OutputFormat = FormatOpt) -> None:
    """A loan's contract, balances, delinquency and schedule."""
    render_loan(get_loan(app_context(ctx).uow(), loan_id), fmt)


@loan_app.command("payoff-quote")
def loan_payoff_quote(
    ctx: typer.Context,
    loan_id: int,
    on: str = typer.Option(..., "--date", help="Payoff date."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """What it takes to close the loan on a date."""
    q = quote_payoff(app_context(ctx).uow(), loan_id, parse_date(on))
    if fmt is OutputFormat.JSON:
        print_json(payoff_json(q))
        return
    for key, value in payoff_json(q).items():
        console.print(f"{key:>15}: {value}")


def _render_payments(payments: tuple[StoredPayment, ...], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.JSON:
        print_json([payment_json(p) for p in payments])
        return
    for p in payments:
        parts = ", ".join(f"{k} {v}" for k, v in p.applied.as_dict().items() if v)
        console.print(f"payment {p.id} on loan {p.loan_id}: {p.amount} CNY ({p.kind}) → {parts}")


# Unknown options pass through as arguments, so `pay 1 -5` reaches the amount check and is
# refused as a negative amount rather than as an unknown option "-5".
@pay_app.command("post", context_settings={"ignore_unknown_options": True})
def pay_post(
    ctx: typer.Context,
    loan_id: int,
    amount: str,
    on: str = typer.Option(..., "--date", help="Value date (the open business date)."),
    idempotency_key: str = typer.Option(..., help="Unique per payment; a retry has no effect."),
    prepay: PrepaymentMode | None = typer.Option(None, help="Prepay ahead of schedule, and how."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Post a payment (or a prepayment) on a loan."""
    payment = Payment(
        loan_id, parse_amount(amount, "amount"), parse_date(on), idempotency_key, prepay
    )
    stored = take_payment(app_context(ctx).uow(), payment)
    if fmt is OutputFormat.JSON:
        print_json(payment_json(stored))
    else:
        _render_payments((stored,), fmt)


@pay_app.command("reverse")
def pay_reverse(
    ctx: typer.Context,
    payment_id: int,
    on: str = typer.Option(..., "--date", help="Business date of the reversal (open date)."),
    fmt: OutputFormat = FormatOpt,
) -> None:
    """Reverse a payment; later payments on the loan are re-applied in order."""
    redone = reverse_payment(app_context(ctx).uow(), payment_id, parse_date(on))
    if fmt is OutputFormat.JSON:
        print_json({"reversed": payment_id, "reapplied": [payment_json(p) for p in redone]})
        return
    console.print(f"payment {payment_id} reversed; {len(redone)} later payment(s) re-applied")
    _render_payments(redone, fmt)
