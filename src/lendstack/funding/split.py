"""Split one cash flow between a loan's funders, to the fen, by largest remainder.

Every flow of a co-funded loan (disbursement, principal, interest, fees, penalties, recoveries,
sale proceeds) is shared by the same shares. Rounding each part on its own would let the parts
drift a fen away from the whole, and the funders' sub-ledgers would stop reconciling with the
loan. Largest remainder gives each funder its floor in fen and hands the leftover fen, one each,
to the largest fractional remainders, so the parts always add up to the amount exactly.

Negative amounts (reversals) are split as the negation of the positive split, so a reversal
undoes its original fen for fen.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from decimal import Decimal
from typing import TypeVar

from lendstack.core.errors import ValidationError
from lendstack.core.money import FEN, Rounding, quantize_fen

_ONE = Decimal(1)
K = TypeVar("K", int, str)


def check_shares(shares: Mapping[str, Decimal]) -> None:
    """Shares must be Decimal, non-negative and sum to exactly 1; else `ValidationError`."""
    if not shares:
        raise ValidationError("a loan needs at least one funder", field="shares")
    for funder_id, share in shares.items():
        if not isinstance(share, Decimal) or isinstance(share, bool):
            raise ValidationError(f"share of {funder_id!r} must be Decimal", field="shares")
        if not share.is_finite() or share < 0:
            raise ValidationError(f"share of {funder_id!r} is {share}", field="shares")
    total = sum(shares.values(), Decimal(0))
    if total != _ONE:
        raise ValidationError(f"shares sum to {total}, not 1", field="shares")


def split(amount: Decimal, shares: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Parts per funder (same keys, sorted by id) that sum exactly to `amount`.

    Ties between equal remainders go to the funder id that sorts first, so the same flow always
    splits the same way whatever order the mapping arrives in.
    """
    check_shares(shares)
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValidationError("must be a finite Decimal", field="amount")
    if amount != quantize_fen(amount, Rounding.DOWN):
        raise ValidationError(f"{amount} is more precise than the fen", field="amount")
    fen = int(abs(amount) / FEN)
    sign = -1 if amount < 0 else 1
    parts = _largest_remainder(fen, shares)
    return {k: (Decimal(sign * v) * FEN).quantize(FEN) for k, v in parts.items()}


def _largest_remainder(total: int, shares: Mapping[str, Decimal]) -> dict[str, int]:
    """Integer parts of `total` (>= 0) in proportion to `shares`, summing to `total`."""
    ids = sorted(shares)
    floors: dict[str, int] = {}
    remainders: list[tuple[Decimal, str]] = []
    for funder_id in ids:
        exact = total * shares[funder_id]
        floor = int(exact.to_integral_value(rounding=decimal.ROUND_FLOOR))
        floors[funder_id] = floor
        remainders.append((exact - floor, funder_id))
    leftover = total - sum(floors.values())
    remainders.sort(key=lambda item: (-item[0], item[1]))
    for _, funder_id in remainders[:leftover]:
        floors[funder_id] += 1
    return floors


def split_fen(total_fen: int, shares_bp: Mapping[K, int], scale: int = 10_000) -> dict[K, int]:
    """The integer fast path used by the allocator: shares in units of 1/`scale`.

    Same rule as `split` (largest remainder, ties by id), in pure integer arithmetic, so the
    allocator can check capacities in fen without building Decimals on the hot path.
    """
    ids = sorted(shares_bp)
    floors = {k: total_fen * shares_bp[k] // scale for k in ids}
    leftover = total_fen - sum(floors.values())
    if leftover:  # else every part is exact: no remainders to rank
        ranked = sorted([(-(total_fen * shares_bp[k] % scale), k) for k in ids])
        for _, funder_id in ranked[:leftover]:
            floors[funder_id] += 1
    return floors
