"""Funder sub-ledgers: each cash flow of a co-funded loan split into its funders' parts.

A funder's sub-ledger is a list of flows in integer fen. Each flow moves two things:
- its **position**, the funder's part of the loan's outstanding principal;
- its **due**, the cash the funder is owed by (positive) or owes to (negative) the platform,
  which is what the settlement file nets.

Principal-reducing flows (repayment, charge-off) are split by the funders' *positions*, not by
their shares: positions start as the largest-remainder split of the principal and each later
split is exact, so the last repayment takes every position to zero to the fen, whatever
rounding happened before. Income flows (interest, fees, penalties, recoveries, sale proceeds)
are split by the shares in force. A funder earns interest at its own yield (its funding cost,
per partner agreement); the rest of its gross interest share is the platform's spread, kept in
the sub-ledger as a `spread` flow so the two always add up to the loan's interest.

A guarantee payout or buyback transfers a bank's whole position to the platform: the bank is
paid its part (due +), the platform acquires it (position +, due -), and the bank's share of
future income moves to the platform with it.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from lendstack.core.errors import InvariantViolation, ValidationError
from lendstack.core.records import quick_init
from lendstack.funding.split import split_fen


class Flow(StrEnum):
    DISBURSEMENT = "disbursement"
    PRINCIPAL = "principal"
    INTEREST = "interest"
    SPREAD = "spread"
    FEE = "fee"
    PENALTY = "penalty"
    RECOVERY = "recovery"
    SALE = "sale"
    CHARGE_OFF = "charge_off"
    GUARANTEE = "guarantee"
    BUYBACK = "buyback"
    ACQUIRED = "acquired"
    WAIVER = "waiver"
    """Principal forgiven in a negotiated settlement: each funder bears its own position."""
    GUARANTEE_FEE = "guarantee_fee"
    """The guarantor's part of a fee collected (REGULATION.md 2.8): the platform stands behind
    the banks' first-loss guarantees, so it keeps the fee borrowers pay for them, unsplit."""
    CAPITALISED = "capitalised"
    """Interest, fees or penalty a restructuring turned into principal: no cash moves, each
    funder's position grows by its part (docs/collections.md, "Restructuring")."""


POSITION_SIGN: dict[Flow, int] = {
    Flow.DISBURSEMENT: 1,
    Flow.PRINCIPAL: -1,
    Flow.CHARGE_OFF: -1,
    Flow.WAIVER: -1,
    Flow.GUARANTEE: -1,
    Flow.BUYBACK: -1,
    Flow.ACQUIRED: 1,
    Flow.CAPITALISED: 1,
}
"""How a flow moves the funder's principal position (flows not listed leave it alone)."""

DUE_SIGN: dict[Flow, int] = {
    Flow.DISBURSEMENT: -1,
    Flow.PRINCIPAL: 1,
    Flow.INTEREST: 1,
    Flow.FEE: 1,
    Flow.PENALTY: 1,
    Flow.RECOVERY: 1,
    Flow.SALE: 1,
    Flow.GUARANTEE: 1,
    Flow.BUYBACK: 1,
    Flow.ACQUIRED: -1,
}
"""How a flow moves what the platform owes the funder (spread and charge-off move no cash)."""

TRANSFER_KINDS = (Flow.GUARANTEE, Flow.BUYBACK)

INCOME_FLOWS: dict[str, Flow] = {
    "interest": Flow.INTEREST,
    "fee": Flow.FEE,
    "prepayment_fee": Flow.FEE,
    "penalty": Flow.PENALTY,
    "recovery": Flow.RECOVERY,
}
"""A payment's applied components (servicing's `Applied`) and the income flow each becomes."""

SHARE_SCALE = 10_000
"""Shares in force are integers of 1/10,000 (the policy's share quantum)."""


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class Part:
    """One funder's part of one flow, in fen (negative in a reversal)."""

    funder_id: str
    flow: Flow
    fen: int


@quick_init  # a hot record: built through its slots (lendstack.core.records)
@dataclass(frozen=True, slots=True)
class Holding:
    """A funder's stake in one loan: its principal position (fen) and share in force."""

    position: int
    share_units: int
    yield_rate: Decimal
    """The funder's annual yield; the platform's is its loan rate (it keeps all interest)."""


def share_units(share: Decimal) -> int:
    units = share * SHARE_SCALE
    if units != units.to_integral_value():
        raise ValidationError(f"share {share} is finer than 1/{SHARE_SCALE}", field="shares")
    return int(units)


def open_parts(principal_fen: int, shares: Mapping[str, int]) -> list[Part]:
    """The disbursement: each funder's part of the principal by share."""
    parts = split_fen(principal_fen, shares, SHARE_SCALE)
    return [Part(f, Flow.DISBURSEMENT, fen) for f, fen in parts.items() if fen]


def payment_parts(
    components: Mapping[str, int],
    holdings: Mapping[str, Holding],
    loan_rate: Decimal,
    guarantee: Part | None = None,
) -> list[Part]:
    """Split one payment's applied components (fen) between the loan's funders.

    `guarantee` is the guarantor's part of the fee collected (`guarantee_fee_part`): it goes
    to the guarantor whole and only the rest of the fee is split by share.
    """
    split = LoanSplit(
        ((f, h.position, h.share_units, h.yield_rate) for f, h in holdings.items()), loan_rate
    )
    return [Part(*part) for part in split.parts(components, guarantee)]


PartValues = tuple[str, Flow, int]
"""A `Part`'s (funder id, flow, fen): the batch path writes parts straight into rows, so it
takes them as plain tuples, without building a record for each."""


class LoanSplit:
    """One loan's funders, made ready once for a run of its payments (a day's batch may hold
    several of one loan): their ids in order, the shares in force and yields, and the
    positions, which `pay` moves part by part as `apply_parts` would.

    `payment_parts` is `parts` of a fresh one, so the split's rules are written here once;
    a day's batch keeps one per loan instead of rebuilding holdings for every payment.
    """

    __slots__ = ("_loan_rate", "_shares", "_start", "_yields", "positions")

    def __init__(self, stakes: Iterable[tuple[str, int, int, Decimal]], loan_rate: Decimal) -> None:
        """`stakes`: (funder id, position in fen, share units in force, yield) per funder."""
        ordered = sorted(stakes)  # by funder id (unique): the order every split hands out in
        self.positions = {f: position for f, position, _, _ in ordered}
        """Each funder's position now, in fen, by funder id."""
        self._start = dict(self.positions)
        self._shares = {f: units for f, _, units, _ in ordered if units}
        """The income flows' weights: the same for every flow and payment of the loan."""
        self._yields = {f: rate for f, _, _, rate in ordered}
        self._loan_rate = loan_rate

    def parts(
        self, components: Mapping[str, int], guarantee: Part | None = None
    ) -> list[PartValues]:
        """The payment's parts (`payment_parts`), leaving the positions as they are."""
        parts: list[PartValues] = []
        fee = components.get("fee", 0)
        if guarantee is not None and guarantee.fen:
            fee -= guarantee.fen
            parts.append((guarantee.funder_id, guarantee.flow, guarantee.fen))
        principal = components.get("principal", 0)
        if principal:
            parts += _by_position(principal, self.positions, _PRINCIPAL)
        for component, flow in INCOME_FLOWS.items():
            fen = fee if component == "fee" else components.get(component, 0)
            if not fen:
                continue
            split = split_fen(fen, self._shares, SHARE_SCALE)
            if flow is _INTEREST:
                yields, loan_rate = self._yields, self._loan_rate
                for funder_id, gross in split.items():
                    if gross:
                        parts += _interest(funder_id, gross, yields[funder_id], loan_rate)
            else:
                parts += [(funder_id, flow, gross) for funder_id, gross in split.items() if gross]
        return parts

    def pay(self, components: Mapping[str, int], guarantee: Part | None = None) -> list[PartValues]:
        """`parts` of the payment, with the positions moved by them."""
        parts = self.parts(components, guarantee)
        _move(self.positions, parts)
        return parts

    def moved(self) -> list[tuple[str, int]]:
        """(funder id, position) of each position the payments so far moved, by funder id."""
        start = self._start
        return [(f, p) for f, p in self.positions.items() if p != start[f]]


def guarantee_fee_part(
    guarantor: str, fee_fen: int, fee_rate: Decimal, guarantee_rate: Decimal
) -> Part | None:
    """The guarantor's part of a per-period fee collected: the fee in proportion of the loan's
    guarantee fee rate to its whole fee rate, rounded half up (the rest stays the product's
    fee, split by share, so the two add up to the fee to the fen)."""
    if fee_fen <= 0 or guarantee_rate <= 0:
        return None
    if not 0 < guarantee_rate <= fee_rate:
        raise InvariantViolation(
            f"guarantee fee rate {guarantee_rate} exceeds the loan's {fee_rate}"
        )
    fen = (Decimal(fee_fen) * guarantee_rate / fee_rate).to_integral_value(decimal.ROUND_HALF_UP)
    return Part(guarantor, Flow.GUARANTEE_FEE, int(fen))


def charge_off_parts(holdings: Mapping[str, Holding], flow: Flow = Flow.CHARGE_OFF) -> list[Part]:
    """A charge-off (or a settlement's waiver) writes every funder's remaining position off:
    each bears its own loss."""
    return [Part(f, flow, h.position) for f, h in sorted(holdings.items()) if h.position]


def transfer_parts(bank_id: str, platform_id: str, position: int, kind: Flow) -> list[Part]:
    """A guarantee payout or buyback: the bank is paid its position, the platform takes it."""
    if kind not in TRANSFER_KINDS:
        raise ValidationError(f"{kind} is not a transfer", field="kind")
    if position <= 0:
        raise ValidationError(f"partner {bank_id!r} holds nothing of this loan", field="funder")
    return [Part(bank_id, kind, position), Part(platform_id, Flow.ACQUIRED, position)]


def capitalised_parts(fen: int, holdings: Mapping[str, Holding]) -> list[Part]:
    """A restructuring's capitalised amount, split by position like the principal it joins,
    so every funder's share of the loan stays what it was."""
    weights = {f: h.position for f, h in holdings.items() if h.position}
    total = sum(weights.values())
    if fen <= 0 or total == 0:
        return []
    return [Part(f, Flow.CAPITALISED, v) for f, v in split_fen(fen, weights, total).items() if v]


def reversed_parts(parts: Iterable[Part]) -> list[Part]:
    """The exact undo of a payment's split, fen for fen."""
    return [Part(p.funder_id, p.flow, -p.fen) for p in parts]


def apply_parts(holdings: Mapping[str, Holding], parts: Iterable[Part]) -> dict[str, Holding]:
    """Holdings after `parts`; a position that would go negative is an invariant breach."""
    positions = {f: h.position for f, h in holdings.items()}
    _move(positions, [(p.funder_id, p.flow, p.fen) for p in parts])
    return {f: Holding(positions[f], h.share_units, h.yield_rate) for f, h in holdings.items()}


def _move(positions: dict[str, int], parts: Iterable[PartValues]) -> None:
    """Move `positions` (fen, by funder) by `parts`, in place; none may go negative."""
    for funder_id, flow, fen in parts:
        sign = POSITION_SIGN.get(flow, 0)
        if sign:  # a guarantor need not hold a position
            positions[funder_id] += sign * fen
    for funder_id, position in positions.items():
        if position < 0:
            raise InvariantViolation(f"funder {funder_id!r} position would be {position} fen")


def after_transfer(
    holdings: Mapping[str, Holding], bank_id: str, platform_id: str
) -> dict[str, int]:
    """Shares in force once the bank's stake passed to the platform."""
    units = {f: h.share_units for f, h in holdings.items()}
    units[platform_id] = units.get(platform_id, 0) + units[bank_id]
    units[bank_id] = 0
    return units


def due(parts: Iterable[Part]) -> int:
    """Net cash the platform owes over `parts` (negative: the funder owes the platform)."""
    return sum(DUE_SIGN.get(p.flow, 0) * p.fen for p in parts)


def _by_position(fen: int, positions: Mapping[str, int], flow: Flow) -> list[PartValues]:
    weights = {f: p for f, p in positions.items() if p}
    total = sum(weights.values())
    if fen > total:
        raise InvariantViolation(f"{flow} of {fen} fen exceeds the funders' positions ({total})")
    return [(f, flow, v) for f, v in split_fen(fen, weights, total).items() if v]


def _interest(
    funder_id: str, gross: int, yield_rate: Decimal, loan_rate: Decimal
) -> list[PartValues]:
    """The funder's interest at its own yield; the platform keeps the rest as spread.

    Rounded down to the fen: a fraction of a fen of interest stays with the platform.
    """
    if gross == 0:
        return []
    if yield_rate >= loan_rate or loan_rate <= 0:
        return [(funder_id, _INTEREST, gross)]
    earned = int(
        (Decimal(gross) * yield_rate / loan_rate).to_integral_value(rounding=decimal.ROUND_FLOOR)
    )
    out: list[PartValues] = [(funder_id, _INTEREST, earned)] if earned else []
    if gross - earned:
        out.append((funder_id, _SPREAD, gross - earned))
    return out


_PRINCIPAL, _INTEREST, _SPREAD = Flow.PRINCIPAL, Flow.INTEREST, Flow.SPREAD
"""Read once: on Python 3.11 every `Flow.X` goes through the enum class's `__getattr__` hook."""


__all__ = [
    "DUE_SIGN",
    "INCOME_FLOWS",
    "POSITION_SIGN",
    "SHARE_SCALE",
    "Flow",
    "Holding",
    "LoanSplit",
    "Part",
    "PartValues",
    "after_transfer",
    "apply_parts",
    "capitalised_parts",
    "charge_off_parts",
    "due",
    "guarantee_fee_part",
    "open_parts",
    "payment_parts",
    "reversed_parts",
    "share_units",
    "transfer_parts",
]
