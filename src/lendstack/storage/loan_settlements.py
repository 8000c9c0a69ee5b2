"""Negotiated settlements in storage: the record beside the settlement payment, and each
funder's remaining principal position written off with it (`Flow.WAIVER`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, insert, select

from lendstack.core.money import from_fen, to_fen
from lendstack.funding.subledger import Flow
from lendstack.servicing.domain.settlement import Waived
from lendstack.storage.schema import loan_settlements
from lendstack.storage.subledger import SubLedger

_KINDS = ("penalty", "interest", "fee", "principal")


class SqlLoanSettlements:
    """The unit of work's settlement port, on the settlement's connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def record(
        self, loan_id: int, payment_id: int, on: date, payoff: Decimal, amount: Decimal,
        waived: Waived,
    ) -> None:  # fmt: skip
        row = {
            "loan_id": loan_id,
            "payment_id": payment_id,
            "business_date": on,
            "payoff_fen": to_fen(payoff),
            "amount_fen": to_fen(amount),
            **{f"waived_{k}_fen": to_fen(getattr(waived, k)) for k in _KINDS},
        }
        self.conn.execute(insert(loan_settlements), row)
        ledger = SubLedger(self.conn)
        if ledger.holdings(loan_id):
            ledger.charge_off(loan_id, on, Flow.WAIVER)

    def get(self, loan_id: int) -> tuple[Decimal, Waived] | None:
        row = self.conn.execute(
            select(loan_settlements).where(loan_settlements.c.loan_id == loan_id)
        ).first()
        if row is None:
            return None
        waived = Waived(**{k: from_fen(getattr(row, f"waived_{k}_fen")) for k in _KINDS})
        return from_fen(row.payoff_fen), waived


__all__ = ["SqlLoanSettlements"]
