"""`lendstack collections settle`: close a loan for a negotiated amount (see
`servicing.domain.settlement`)."""

from __future__ import annotations

from decimal import Decimal

import typer

from lendstack.cli.context import app_context
from lendstack.cli.params import parse_amount, parse_date, parse_rate
from lendstack.cli.render import OutputFormat, console, print_json
from lendstack.servicing.settle import DEFAULT_MAX_DISCOUNT, Settled, Settlement, settle_loan
from lendstack.servicing.views import payment_json


def settle(
    ctx: typer.Context,
    loan_id: int = typer.Argument(..., help="The loan id."),
    amount: str = typer.Option(..., "--amount", help="The agreed amount, e.g. 6500.00."),
    on: str = typer.Option(..., "--date", help="The settlement date (the open business date)."),
    idempotency_key: str = typer.Option(..., help="Unique per settlement; a retry has no effect."),
    max_discount: str = typer.Option(
        str(DEFAULT_MAX_DISCOUNT),
        "--max-discount",
        help="The largest share of the payoff that may be forgiven (collector's authority).",
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", help="table or json."),
) -> None:
    """Settle a loan for less than its payoff: the cash closes it, the rest is forgiven
    (penalty, then interest, then fees, then principal), funders bear their own shares."""
    settlement = Settlement(
        loan_id,
        parse_amount(amount, "amount"),
        parse_date(on),
        idempotency_key,
        parse_rate(max_discount, "max_discount") or Decimal(0),
    )
    settled = settle_loan(app_context(ctx).uow(), settlement)
    if fmt is OutputFormat.JSON:
        print_json(settled_json(settled))
        return
    w = settled.waived
    console.print(
        f"loan {loan_id} settled for {settlement.amount} against a payoff of {settled.payoff}: "
        f"forgiven {w.total} (penalty {w.penalty}, interest {w.interest}, fee {w.fee}, "
        f"principal {w.principal})" + (" [already booked]" if settled.replayed else "")
    )


def settled_json(settled: Settled) -> dict[str, object]:
    return {
        "payment": payment_json(settled.payment),
        "payoff": str(settled.payoff),
        "waived": {k: str(v) for k, v in settled.waived.as_dict().items()},
        "waived_total": str(settled.waived.total),
        "replayed": settled.replayed,
    }


__all__ = ["settle", "settled_json"]
