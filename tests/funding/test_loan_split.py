"""`LoanSplit`, the one-per-loan form of the payment split, against the split it replaced.

A day's batch keeps one `LoanSplit` per loan and moves its positions payment by payment; the
code before it rebuilt the holdings for every payment (`payment_parts`, then `apply_parts`).
The old code is kept here, verbatim but for names, as the reference: for any run of payments
the new path must give the same parts, in the same order, and the same positions.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendstack.core.errors import InvariantViolation
from lendstack.funding.split import split_fen
from lendstack.funding.subledger import (
    INCOME_FLOWS,
    POSITION_SIGN,
    SHARE_SCALE,
    Flow,
    Holding,
    LoanSplit,
    Part,
    apply_parts,
    guarantee_fee_part,
    payment_parts,
)

# --- the reference: the split as it was before `LoanSplit` --------------------------------


def _old_split_fen(total_fen: int, shares_bp: Mapping[str, int], scale: int) -> dict[str, int]:
    ids = sorted(shares_bp)
    floors = {k: total_fen * shares_bp[k] // scale for k in ids}
    leftover = total_fen - sum(floors.values())
    order = sorted(ids, key=lambda k: (-(total_fen * shares_bp[k] % scale), k))
    for funder_id in order[:leftover]:
        floors[funder_id] += 1
    return floors


def _old_payment_parts(
    components: Mapping[str, int],
    holdings: Mapping[str, Holding],
    loan_rate: Decimal,
    guarantee: Part | None = None,
) -> list[Part]:
    parts: list[Part] = []
    if guarantee is not None and guarantee.fen:
        components = {**components, "fee": components.get("fee", 0) - guarantee.fen}
        parts.append(guarantee)
    principal = components.get("principal", 0)
    if principal:
        weights = {f: h.position for f, h in holdings.items() if h.position}
        total = sum(weights.values())
        if principal > total:
            raise InvariantViolation("principal exceeds the positions")
        split = _old_split_fen(principal, weights, total)
        parts += [Part(f, Flow.PRINCIPAL, v) for f, v in split.items() if v]
    shares: dict[str, int] | None = None
    for component, flow in INCOME_FLOWS.items():
        fen = components.get(component, 0)
        if not fen:
            continue
        if shares is None:
            shares = {f: h.share_units for f, h in holdings.items() if h.share_units}
        for funder_id, gross in _old_split_fen(fen, shares, SHARE_SCALE).items():
            if flow is Flow.INTEREST:
                parts += _old_interest(funder_id, gross, holdings[funder_id].yield_rate, loan_rate)
            elif gross:
                parts.append(Part(funder_id, flow, gross))
    return parts


def _old_interest(
    funder_id: str, gross: int, yield_rate: Decimal, loan_rate: Decimal
) -> list[Part]:
    if gross == 0:
        return []
    if yield_rate >= loan_rate or loan_rate <= 0:
        return [Part(funder_id, Flow.INTEREST, gross)]
    earned = int(
        (Decimal(gross) * yield_rate / loan_rate).to_integral_value(rounding=decimal.ROUND_FLOOR)
    )
    out = [Part(funder_id, Flow.INTEREST, earned)] if earned else []
    if gross - earned:
        out.append(Part(funder_id, Flow.SPREAD, gross - earned))
    return out


def _old_apply_parts(holdings: Mapping[str, Holding], parts: list[Part]) -> dict[str, Holding]:
    positions = {f: h.position for f, h in holdings.items()}
    for part in parts:
        sign = POSITION_SIGN.get(part.flow, 0)
        if sign:
            positions[part.funder_id] += sign * part.fen
    for funder_id, position in positions.items():
        if position < 0:
            raise InvariantViolation(f"funder {funder_id!r} position would be {position} fen")
    return {f: Holding(positions[f], h.share_units, h.yield_rate) for f, h in holdings.items()}


# --- strategies ----------------------------------------------------------------------------

RATES = ["0", "0.02", "0.034", "0.115", "0.135", "0.18", "0.36"]
IDS = ["platform", "big-state-bank", "harbour", "westlake", "a", "z"]


@st.composite
def loans(draw: st.DrawFn) -> tuple[dict[str, Holding], Decimal]:
    """1 to 4 funders (ids in any order), shares in units summing to the scale (some zero,
    as after a transfer), positions of any size (some zero), yields around the loan rate."""
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=4, unique=True))
    cuts = sorted(draw(st.lists(st.integers(0, SHARE_SCALE), min_size=len(ids) - 1)))
    cuts = cuts[: len(ids) - 1]
    units = [b - a for a, b in zip([0, *cuts], [*cuts, SHARE_SCALE], strict=True)]
    units += [0] * (len(ids) - len(units))
    holdings = {
        f: Holding(
            draw(st.integers(0, 10**9) | st.just(0)),
            u,
            Decimal(draw(st.sampled_from(RATES))),
        )
        for f, u in zip(ids, units, strict=True)
    }
    return holdings, Decimal(draw(st.sampled_from(RATES)))


components = st.fixed_dictionaries(
    {},
    optional={
        "principal": st.integers(0, 10**8),
        "interest": st.integers(0, 10**7),
        "fee": st.integers(0, 10**6),
        "prepayment_fee": st.integers(0, 10**5),
        "penalty": st.integers(0, 10**5),
        "recovery": st.integers(0, 10**6),
        "credit": st.integers(0, 10**4),
    },
)


def _guarantee(applied: Mapping[str, int], rates: tuple[str, str] | None) -> Part | None:
    if rates is None or applied.get("fee", 0) <= 0:
        return None
    fee_rate, share = (Decimal(r) for r in rates)
    return guarantee_fee_part("platform", applied["fee"], fee_rate, fee_rate * share)


# --- properties ----------------------------------------------------------------------------


@given(
    loans(),
    st.lists(
        st.tuples(
            components,
            st.none()
            | st.tuples(st.sampled_from(["0.0075", "0.02"]), st.sampled_from(["1", "0.3"])),
        ),
        min_size=1,
        max_size=6,
    ),
)
@settings(max_examples=400, deadline=None)
def test_a_run_of_payments_gives_the_old_parts_and_positions(
    loan: tuple[dict[str, Holding], Decimal],
    payments: list[tuple[dict[str, int], tuple[str, str] | None]],
) -> None:
    holdings, rate = loan
    split = LoanSplit(
        ((f, h.position, h.share_units, h.yield_rate) for f, h in holdings.items()), rate
    )
    for applied, guarantee_rates in payments:
        guarantee = _guarantee(applied, guarantee_rates)
        try:
            old = _old_payment_parts(applied, holdings, rate, guarantee)
            after = _old_apply_parts(holdings, old)
        except InvariantViolation:
            with pytest.raises(InvariantViolation):
                split.pay(applied, guarantee)
            return
        assert payment_parts(applied, holdings, rate, guarantee) == old
        assert apply_parts(holdings, old) == after
        assert [Part(*p) for p in split.pay(applied, guarantee)] == old
        assert split.positions == {f: h.position for f, h in sorted(after.items())}
        holdings = after
    start = {f: h.position for f, h in loan[0].items()}
    assert split.moved() == [
        (f, h.position) for f, h in sorted(holdings.items()) if h.position != start[f]
    ]


@given(
    st.integers(-(10**9), 10**9),
    st.dictionaries(st.sampled_from(IDS), st.integers(0, 10**6), max_size=5),
    st.integers(1, 10**6),
)
@settings(max_examples=400, deadline=None)
def test_split_fen_gives_the_old_parts(total: int, shares: dict[str, int], scale: int) -> None:
    assert split_fen(total, shares, scale) == _old_split_fen(total, shares, scale)
