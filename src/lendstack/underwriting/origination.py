"""From an accepted offer to a booked loan: the hand-off from underwriting to servicing.

The loan is booked with exactly the offer's terms (product, amount, term, contract rate and
fee rate, starting on the application date) and carries the decision id as its reference,
so booking the same decision twice returns the same loan and every loan traces back to the
decision, rule pack and model that approved it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from lendstack.core.errors import Conflict
from lendstack.servicing import LoanRequest, LoanState, ProductCatalog, UnitOfWork, book_loan
from lendstack.underwriting.decision import GRANTED

BOOKABLE = GRANTED


def loan_request(record: Mapping[str, Any]) -> LoanRequest:
    """The servicing request that reproduces the decision's offer."""
    decision = record["decision"]
    if decision["outcome"] not in BOOKABLE or decision["offer"] is None:
        raise Conflict(
            f"decision {record['decision_id']} is {decision['outcome']}: nothing to book",
            field="decision_id",
        )
    offer = decision["offer"]
    return LoanRequest(
        product_id=offer["product_id"],
        amount=Decimal(offer["amount"]),
        term_months=int(offer["term_months"]),
        rate=Decimal(offer["annual_interest_rate"]),
        start=date.fromisoformat(record["application"]["application_date"]),
        fee_rate=Decimal(offer["fees"]["per_period_fee_rate"]),
    )


def originate(uow: UnitOfWork, catalog: ProductCatalog, record: Mapping[str, Any]) -> LoanState:
    """Book the loan a decision offered; idempotent on the decision id."""
    return book_loan(uow, catalog, loan_request(record), reference=str(record["decision_id"]))
