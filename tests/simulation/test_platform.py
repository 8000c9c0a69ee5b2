"""Scenario overrides become real rule-pack rules and policy values the engine enforces."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lendstack.simulation.platform import CapRule, derived_pack, overridden_policy
from lendstack.simulation.scenario import PolicyOverride
from lendstack.underwriting.policy import load_policy
from lendstack.underwriting.rules import default_pack
from lendstack.underwriting.rules.model import LENDER_TYPES
from lendstack.underwriting.rules.pack import parse_pack


def _apr_cap(pack_text: str, on: date, lender: str) -> Decimal:
    pack = parse_pack(pack_text, "derived")
    caps = [
        r.params["max"] for r in pack.select(on, lender).rules if r.kind == "apr_max" and r.enabled
    ]
    return min(Decimal(str(c)) for c in caps)


def test_caps_bind_every_lender_type_from_their_date_only() -> None:
    base = default_pack()
    text = derived_pack(
        base, "tighter-caps", (CapRule(date(2026, 3, 1), Decimal("0.20"), 100_000),)
    )
    pack = parse_pack(text, "derived")
    assert pack.id != base.id
    assert len(pack.rules) == len(base.rules) + 2
    for lender in LENDER_TYPES:
        assert _apr_cap(text, date(2026, 3, 1), lender) == Decimal("0.20")
        assert _apr_cap(text, date(2026, 2, 28), lender) == _apr_cap(
            base.text, date(2026, 2, 28), lender
        )


def test_policy_override_changes_cutoff_limits_and_identity() -> None:
    base = load_policy()
    assert overridden_policy(base, "s", PolicyOverride()) is base
    loose = overridden_policy(
        base, "s", PolicyOverride(Decimal("0.25"), Decimal("1.5"), Decimal("0.65"))
    )
    assert loose.max_pd == Decimal("0.25")
    assert loose.limits.affordability_share == Decimal("0.65")
    assert [lim for _, lim in loose.limits.pd_curve] == [
        lim * Decimal("1.5") for _, lim in base.limits.pd_curve
    ]
    assert loose.sha256 != base.sha256
    assert loose.id != base.id


def test_pricing_overrides_reach_the_policy() -> None:
    base = load_policy()
    cheap = overridden_policy(
        base, "s", PolicyOverride(margin=Decimal("0.005"), lgd=Decimal("0.5"))
    )
    assert cheap.pricing.margin == Decimal("0.005")
    assert cheap.pricing.lgd == Decimal("0.5")
    assert cheap.pricing.funding_cost == base.pricing.funding_cost
    assert cheap.max_pd == base.max_pd
