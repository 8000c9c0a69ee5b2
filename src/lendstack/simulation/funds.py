"""Where diverted loan money goes: the disbursement-account feed the surveillance watches.

A borrower drawn as "diverted" (`behaviour.diverted`) moves most of each loan into gold
trading (70%) or FX (30%) a few days after disbursement. Those debits are delivered to the
real use-of-funds surveillance (`storage.use_of_funds.SqlUseOfFunds.ingest`) at month-end,
which flags the loans and raises its alerts in `risk_alerts`, exactly as a production feed
would. Draws are hashes of (seed, loan), so the feed is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Engine

from lendstack.risk.surveillance import MerchantCategory, Transaction
from lendstack.risk.surveillance import default_pack as surveillance_pack
from lendstack.simulation.behaviour import uniform
from lendstack.storage.use_of_funds import SqlUseOfFunds

GOLD_SHARE = 0.7
CENT = Decimal("0.01")


@dataclass
class FundsFeed:
    engine: Engine
    seed: int
    pending: list[Transaction] = field(default_factory=list)

    def disbursed(self, loan_id: int, day: date, principal: Decimal) -> None:
        """A diverted borrower's loan: 60–95% of it leaves for gold or FX within 1–5 days."""
        u = uniform(self.seed, loan_id, "funds")
        category = MerchantCategory.GOLD_TRADING if u < GOLD_SHARE else MerchantCategory.FX
        share = Decimal(str(round(0.6 + 0.35 * uniform(self.seed, loan_id, "share"), 4)))
        when = datetime.combine(day + timedelta(days=1 + int(u * 1000) % 5), time(10), UTC)
        amount = (principal * share).quantize(CENT, ROUND_HALF_UP)
        self.pending.append(Transaction(f"sim-{loan_id}", loan_id, when, amount, category))

    def deliver(self) -> int:
        """Hand the month's debits to the surveillance; returns the loans it newly flagged."""
        if not self.pending:
            return 0
        result = SqlUseOfFunds(self.engine, surveillance_pack()).ingest(self.pending, "simulation")
        self.pending = []
        return len(result.flags)
