"""The pure funder sub-ledger: every flow split to the fen, positions that end at exactly zero."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lendstack.core.errors import InvariantViolation, ValidationError
from lendstack.funding.subledger import (
    SHARE_SCALE,
    Flow,
    Holding,
    Part,
    after_transfer,
    apply_parts,
    charge_off_parts,
    due,
    open_parts,
    payment_parts,
    reversed_parts,
    transfer_parts,
)

RATE = Decimal("0.18")


def holdings_after_open(
    principal: int, units: dict[str, int], yields: dict[str, Decimal]
) -> dict[str, Holding]:
    held: dict[str, int] = defaultdict(int)
    for part in open_parts(principal, units):
        held[part.funder_id] += part.fen
    return {f: Holding(held[f], u, yields[f]) for f, u in units.items()}


def total(parts: list[Part], *flows: Flow) -> int:
    return sum(p.fen for p in parts if p.flow in flows)


@st.composite
def plans(draw: st.DrawFn) -> dict[str, int]:
    """2 or 3 funders, each ≥ 30 %, in units of 1/10,000 summing to exactly 1."""
    n = draw(st.integers(2, 3))
    low = 3000
    free = SHARE_SCALE - low * n
    cuts = sorted(draw(st.lists(st.integers(0, free), min_size=n - 1, max_size=n - 1)))
    extras = [b - a for a, b in zip([0, *cuts], [*cuts, free], strict=True)]
    return {f"f{i}": low + extra for i, extra in enumerate(extras)}


@given(
    plans(),
    st.integers(1, 50_000_000),
    st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**5), st.integers(0, 10**4)), max_size=12
    ),
    st.lists(st.sampled_from(["0.03", "0.05", "0.18", "0.30"]), min_size=3, max_size=3),
)
@settings(max_examples=300, deadline=None)
def test_every_split_sums_to_its_flow_and_positions_end_at_zero(
    units: dict[str, int], principal: int, payments: list[tuple[int, int, int]], rates: list[str]
) -> None:
    yields = {f: Decimal(r) for f, r in zip(sorted(units), rates, strict=False)}
    holdings = holdings_after_open(principal, units, yields)
    assert sum(h.position for h in holdings.values()) == principal
    remaining = principal
    for pay_principal, interest, fee in payments:
        pay_principal = min(pay_principal, remaining)
        applied = {"principal": pay_principal, "interest": interest, "fee": fee}
        parts = payment_parts(applied, holdings, RATE)
        assert total(parts, Flow.PRINCIPAL) == pay_principal
        assert total(parts, Flow.INTEREST, Flow.SPREAD) == interest
        assert total(parts, Flow.FEE) == fee
        assert all(p.fen > 0 for p in parts)
        holdings = apply_parts(holdings, parts)
        remaining -= pay_principal
        assert sum(h.position for h in holdings.values()) == remaining
        # a reversal is the exact undo: positions return, fen for fen
        undone = apply_parts(holdings, reversed_parts(parts))
        assert sum(h.position for h in undone.values()) == remaining + pay_principal
    payoff = payment_parts({"principal": remaining}, holdings, RATE)
    assert all(h.position == 0 for h in apply_parts(holdings, payoff).values())


@given(plans(), st.integers(1, 10**9))
def test_charge_off_writes_each_position_off(units: dict[str, int], principal: int) -> None:
    holdings = holdings_after_open(principal, units, dict.fromkeys(units, RATE))
    parts = charge_off_parts(holdings)
    assert total(parts, Flow.CHARGE_OFF) == principal
    assert all(h.position == 0 for h in apply_parts(holdings, parts).values())
    assert due(parts) == 0  # a loss moves no cash between the platform and a bank


def test_funder_earns_its_own_yield_and_the_platform_keeps_the_spread() -> None:
    holdings = {
        "bank": Holding(700_00, 7000, Decimal("0.045")),
        "platform": Holding(300_00, 3000, RATE),
    }
    parts = payment_parts({"interest": 1000_00}, holdings, RATE)
    by = {(p.funder_id, p.flow): p.fen for p in parts}
    # bank's gross share 700.00 at 4.5 % of an 18 % loan: 175.00 earned, 525.00 spread
    assert by[("bank", Flow.INTEREST)] == 175_00
    assert by[("bank", Flow.SPREAD)] == 525_00
    assert by[("platform", Flow.INTEREST)] == 300_00
    assert ("platform", Flow.SPREAD) not in by


def test_interest_fraction_of_a_fen_stays_with_the_platform() -> None:
    holdings = {"bank": Holding(1, 10000, Decimal("0.05"))}
    parts = payment_parts({"interest": 1}, holdings, Decimal("0.18"))
    assert parts == [Part("bank", Flow.SPREAD, 1)]  # 0.28 fen earned rounds down to 0


def test_transfer_pays_the_bank_and_moves_its_stake_and_share_to_the_platform() -> None:
    holdings = {
        "bank": Holding(6_999, 7000, Decimal("0.04")),
        "platform": Holding(3_001, 3000, RATE),
    }
    parts = transfer_parts("bank", "platform", 6_999, Flow.GUARANTEE)
    after = apply_parts(holdings, parts)
    assert after["bank"].position == 0
    assert after["platform"].position == 10_000
    assert due([p for p in parts if p.funder_id == "bank"]) == 6_999
    assert after_transfer(holdings, "bank", "platform") == {"bank": 0, "platform": 10000}


def test_principal_beyond_the_positions_is_refused() -> None:
    holdings = {"bank": Holding(100, 10000, RATE)}
    with pytest.raises(InvariantViolation):
        payment_parts({"principal": 101}, holdings, RATE)
    with pytest.raises(InvariantViolation):
        apply_parts(holdings, [Part("bank", Flow.CHARGE_OFF, 101)])


def test_transfer_of_nothing_or_of_a_non_transfer_is_refused() -> None:
    with pytest.raises(ValidationError):
        transfer_parts("bank", "platform", 0, Flow.BUYBACK)
    with pytest.raises(ValidationError):
        transfer_parts("bank", "platform", 10, Flow.PRINCIPAL)
