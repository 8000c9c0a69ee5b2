"""Servicing: products, schedules, the double-entry ledger, payments and close of business.

Other capabilities use these public names only; the modules behind them may move.
"""

from lendstack.servicing.cob import STEPS, CloseStore, CobStep, close_day, close_through
from lendstack.servicing.domain.booking import Opening
from lendstack.servicing.domain.ledger import Account, EventType, JournalEntry, Posting, Side
from lendstack.servicing.domain.lifecycle import LoanStatus
from lendstack.servicing.domain.loan import LoanContract, LoanState
from lendstack.servicing.domain.prepayment import PayoffQuote
from lendstack.servicing.domain.products import Product, ProductCatalog
from lendstack.servicing.domain.schedule import (
    LoanTerms,
    PrepaymentMode,
    RepaymentMethod,
    Schedule,
    generate,
)
from lendstack.servicing.ports import LoanProfile, PlanTerms, StoredPayment, UnitOfWork
from lendstack.servicing.services import (
    Booking,
    LoanRequest,
    Payment,
    book_loan,
    book_loans,
    get_loan,
    opening,
    quote,
    quote_payoff,
    quote_payoffs,
    reverse_payment,
    take_payment,
    take_payments,
)

__all__ = [
    "STEPS",
    "Account",
    "Booking",
    "CloseStore",
    "CobStep",
    "EventType",
    "JournalEntry",
    "LoanContract",
    "LoanProfile",
    "LoanRequest",
    "LoanState",
    "LoanStatus",
    "LoanTerms",
    "Opening",
    "Payment",
    "PayoffQuote",
    "PlanTerms",
    "Posting",
    "PrepaymentMode",
    "Product",
    "ProductCatalog",
    "RepaymentMethod",
    "Schedule",
    "Side",
    "StoredPayment",
    "UnitOfWork",
    "book_loan",
    "book_loans",
    "close_day",
    "close_through",
    "generate",
    "get_loan",
    "opening",
    "quote",
    "quote_payoff",
    "quote_payoffs",
    "reverse_payment",
    "take_payment",
    "take_payments",
]
