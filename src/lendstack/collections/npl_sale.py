"""Booking an NPL sale: the price split to loans and funders to the fen, and the journal entry.

The price is one number for the whole package; everything downstream needs it per loan (the
funders' sub-ledgers split each loan's cash by that loan's shares) and per funder (settlement).
Both splits are largest-remainder over integer weights, so the parts always add back to the
whole to the fen:
- loans get the price in proportion to their claim (what the buyer bought of each);
- each loan's part is split between its funders by their shares in force, as any recovery
  would be; a loan that is not co-funded is the platform's alone.

The platform's entry derecognises the loans at their carrying amount: the receivables leave at
gross, income parked in non-accrual suspense and the loans' allowance are used against them,
cash comes in, and what is left is the loss (or, negative, the gain) on sale. The funders' side
is their sub-ledger flows (a `charge_off` of any remaining position, then the `sale` proceeds),
which close of business posts to the GL like every other funder flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from lendstack.core.errors import ValidationError
from lendstack.core.money import from_fen
from lendstack.servicing.domain.ledger import Account, EventType, JournalEntry, Side, leg

K = TypeVar("K", int, str)

PLATFORM_OWN = "platform"
"""Where the proceeds of a loan with no funding plan go: the platform's own book."""


def split_weighted(total: int, weights: Mapping[K, int]) -> dict[K, int]:
    """`total` fen split in proportion to non-negative integer weights, largest remainder.

    Ties in the remainder go to the smaller key, so the split is deterministic. All-zero
    weights split equally (a package of fully recovered claims still has its price shared).
    """
    if total < 0:
        raise ValidationError(f"cannot split a negative amount {total}", field="price")
    if not weights:
        if total:
            raise ValidationError("nothing to split the amount over", field="price")
        return {}
    if any(w < 0 for w in weights.values()):
        raise ValidationError("weights must not be negative", field="weights")
    base = sum(weights.values())
    use = dict(weights) if base else dict.fromkeys(weights, 1)
    base = sum(use.values())
    floors = {k: total * w // base for k, w in use.items()}
    left = total - sum(floors.values())
    order = sorted(use, key=lambda k: (-(total * use[k] % base), k))
    for k in order[:left]:
        floors[k] += 1
    return floors


def funder_split(
    loan_prices: Mapping[int, int], shares: Mapping[int, Mapping[str, int]]
) -> dict[int, dict[str, int]]:
    """Each loan's price split by its funders' shares in force (platform alone if none)."""
    out: dict[int, dict[str, int]] = {}
    for loan_id, fen in sorted(loan_prices.items()):
        held = {f: u for f, u in shares.get(loan_id, {}).items() if u > 0}
        out[loan_id] = split_weighted(fen, held) if held else {PLATFORM_OWN: fen}
    return out


def proceeds_by_funder(split: Mapping[int, Mapping[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for parts in split.values():
        for funder_id, fen in parts.items():
            totals[funder_id] = totals.get(funder_id, 0) + fen
    return dict(sorted(totals.items()))


@dataclass(frozen=True, slots=True)
class SaleTotals:
    """What leaves the books (fen): receivables, the suspense and allowance used, the price."""

    principal: int
    interest: int
    fee: int
    penalty: int
    suspense: int
    allowance: int
    price: int

    @property
    def carrying(self) -> int:
        """Net carrying amount: gross receivables less suspense and allowance."""
        gross = self.principal + self.interest + self.fee + self.penalty
        return gross - self.suspense - self.allowance

    @property
    def loss(self) -> int:
        """Loss on sale (negative: a gain)."""
        return self.carrying - self.price


def sale_entry(totals: SaleTotals, day: date, reference: str) -> JournalEntry:
    """Dr cash, suspense, allowance; Cr receivables; the difference to 6705 loss on sale."""
    legs = [
        leg(Account.CASH, Side.DEBIT, from_fen(totals.price)),
        leg(Account.INTEREST_SUSPENSE, Side.DEBIT, from_fen(totals.suspense)),
        leg(Account.ALLOWANCE, Side.DEBIT, from_fen(totals.allowance)),
        leg(Account.LOAN_SALE_LOSS, Side.DEBIT, from_fen(totals.loss)),
        leg(Account.PRINCIPAL_RECEIVABLE, Side.CREDIT, from_fen(totals.principal)),
        leg(Account.INTEREST_RECEIVABLE, Side.CREDIT, from_fen(totals.interest)),
        leg(Account.FEE_RECEIVABLE, Side.CREDIT, from_fen(totals.fee)),
        leg(Account.PENALTY_RECEIVABLE, Side.CREDIT, from_fen(totals.penalty)),
    ]
    kept = tuple(p for p in legs if p is not None)
    if len(kept) < 2:
        # A zero price for charged-off loans with no allowance left moves nothing at all; a
        # sale that cannot be seen in the ledger is refused rather than recorded blind.
        raise ValidationError(
            "the sale moves no money: a zero price for loans carried at zero", field="price"
        )
    return JournalEntry(EventType.NPL_SALE, day, reference, kept)


__all__ = [
    "PLATFORM_OWN",
    "SaleTotals",
    "funder_split",
    "proceeds_by_funder",
    "sale_entry",
    "split_weighted",
]
