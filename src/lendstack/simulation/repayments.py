"""Posting what borrowers pay, day by day, through the real payment service.

Each business day, before its close, every active loan with an unpaid billed installment is
looked at: the borrower's choice for that installment (`behaviour.due_choice`, drawn once per
loan and due date) says whether they pay today, pay the loan off, or stay in arrears (and
maybe cure at a 30-day mark). The day's payments go through
`lendstack.servicing.take_payments` as one batch (then the payoffs as a second), so the
ledger, funder splits and idempotency are exactly those of a real payment, at a few
statements a day instead of a few per payment; the idempotency key is `sim:<loan>:<date>`,
so re-posting a day is harmless.

The work of a day is the loans billed and unpaid, a small slice of the book, and is
independent per loan: it partitions by loan id (the later Dask path).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Engine, text

from lendstack.core.money import ZERO, from_fen
from lendstack.servicing import Payment, PrepaymentMode, quote_payoffs, take_payments
from lendstack.simulation.behaviour import (
    Action,
    BorrowerRisk,
    DueChoice,
    cures,
    due_choice,
    miss_probability,
)
from lendstack.simulation.scenario import Scenario
from lendstack.storage.mapping import to_day
from lendstack.storage.repositories import SqlUnitOfWork

OWED_SQL = (
    "SELECT l.id, l.oldest_due, l.bal_penalty + COALESCE(SUM(i.principal_fen + i.interest_fen"
    " + i.fee_fen - i.paid_principal_fen - i.paid_interest_fen - i.paid_fee_fen), 0)"
    " FROM loans l LEFT JOIN installments i ON i.loan_id = l.id"
    " AND i.version = l.schedule_version AND i.billed = TRUE"
    " WHERE l.status = 'active' AND l.oldest_due IS NOT NULL AND l.oldest_due < :d"
    " GROUP BY l.id, l.oldest_due, l.bal_penalty ORDER BY l.id"
)
"""Each loan in arrears or just billed, with what it owes today in fen: the penalty plus every
billed installment's unpaid part, the total `owed_by_component` gives (tested equal), read
for all of the day's loans in one statement instead of loading each loan."""


@dataclass
class Repayments:
    """Borrower behaviour over the book; remembers each (loan, due date) choice it drew."""

    engine: Engine
    scenario: Scenario
    risk: BorrowerRisk
    seed: int
    borrower_of: dict[int, int] = field(default_factory=dict)
    """loan id → borrower index in the population."""
    choices: dict[tuple[int, int], DueChoice] = field(default_factory=dict)
    tally: Counter[str] = field(default_factory=Counter)

    def choice(self, loan_id: int, due_day: int, month: int) -> DueChoice:
        key = (loan_id, due_day)
        made = self.choices.get(key)
        if made is None:
            borrower = self.borrower_of.get(loan_id)
            p_miss = (
                0.0
                if borrower is None
                else miss_probability(self.risk, borrower, self.scenario, month)
            )
            made = due_choice(self.seed, loan_id, due_day, p_miss, self.scenario)
            self.choices[key] = made
        return made

    def post_day(self, day: date, month: int) -> int:
        """Post the day's payments, in two batches (what is owed, then the payoffs of those
        who prepay); returns how many were posted."""
        today = to_day(day)
        with self.engine.connect() as conn:
            rows = conn.execute(text(OWED_SQL), {"d": today}).all()
        owed: list[tuple[Payment, str]] = []
        payoffs: list[int] = []
        for loan_id, oldest, owed_fen in rows:
            made = self.choice(int(loan_id), int(oldest), month)
            late = today - int(oldest)
            kind = None
            if made.action is Action.DEFAULT:
                if cures(self.seed, loan_id, int(oldest), late, self.scenario, self.risk):
                    kind = "cure"
            elif late >= made.lag_days:
                kind = made.action.value
                if made.action is Action.PREPAY:
                    kind = "pay"
                    payoffs.append(int(loan_id))
            if kind is not None and owed_fen > 0:
                key = f"sim:{loan_id}:{day}"
                owed.append((Payment(int(loan_id), from_fen(int(owed_fen)), day, key), kind))
        if owed:  # an empty batch writes nothing: skip its transaction
            take_payments(SqlUnitOfWork(self.engine), [p for p, _ in owed])
        self.tally.update(kind for _, kind in owed)
        return len(owed) + self._pay_off(payoffs, day)

    def _pay_off(self, loan_ids: list[int], day: date) -> int:
        """The rest of each prepaying loan, early (the payoff quote's total)."""
        if not loan_ids:  # most days: nothing to quote nor post, so no transaction to open
            return 0
        quotes = quote_payoffs(SqlUnitOfWork(self.engine), loan_ids, day)
        batch = [
            Payment(
                loan_id, q.total, day, f"sim:{loan_id}:{day}:payoff", PrepaymentMode.SHORTEN_TERM
            )
            for loan_id, q in sorted(quotes.items())
            if q.total > ZERO
        ]
        if batch:
            take_payments(SqlUnitOfWork(self.engine), batch)
        self.tally["prepay"] += len(batch)
        return len(batch)
