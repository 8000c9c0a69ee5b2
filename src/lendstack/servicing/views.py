"""Loans, payoff quotes and payments as plain dicts: the one JSON shape the CLI and API share.

Values stay Decimal and date; each entry point's JSON encoder writes them as decimal and ISO
strings. One builder per shape, so `lendstack loan show --format json` and
`GET /v1/loans/{id}` cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from lendstack.servicing.domain.loan import LoanState
from lendstack.servicing.domain.prepayment import PayoffQuote
from lendstack.servicing.ports import StoredPayment


def loan_json(loan: LoanState) -> dict[str, Any]:
    c, b = loan.contract, loan.balances
    return {
        "id": loan.id,
        "product_id": c.product_id,
        "status": loan.status.value,
        "principal": c.principal,
        "annual_rate": c.annual_rate,
        "term_months": c.term_months,
        "method": c.method.value,
        "disbursement_date": c.disbursement_date,
        "balances": {
            "principal": b.principal,
            "interest": b.interest,
            "fee": b.fee,
            "penalty": b.penalty,
            "credit": b.credit,
        },
        "dpd": loan.dpd,
        "risk_class": loan.risk_class.value,
        "risk_class_cn": loan.risk_class.chinese,
        "non_accrual": loan.non_accrual,
        "charged_off": loan.charged_off,
        "recovered": loan.recovered,
        "installments": [
            {
                "number": i.number,
                "due_date": i.due_date,
                "principal": i.principal,
                "interest": i.interest,
                "fee": i.fee,
                "paid_principal": i.paid_principal,
                "paid_interest": i.paid_interest,
                "paid_fee": i.paid_fee,
                "billed": i.billed,
            }
            for i in loan.installments
        ],
    }


def payoff_json(q: PayoffQuote) -> dict[str, Any]:
    return {
        "loan_id": q.loan_id,
        "date": q.on,
        "principal": q.principal,
        "interest": q.interest,
        "fee": q.fee,
        "penalty": q.penalty,
        "prepayment_fee": q.prepayment_fee,
        "total": q.total,
    }


def payment_json(p: StoredPayment) -> dict[str, Any]:
    return {
        "id": p.id,
        "loan_id": p.loan_id,
        "kind": p.kind,
        "date": p.value_date,
        "amount": p.amount,
        "status": p.status,
        "idempotency_key": p.idempotency_key,
        "applied": p.applied.as_dict(),
    }
