"""Small, hand-written funders for scenario tests (the sample files are tested on their own)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from lendstack.funding import Appetite, Funder, FunderKind, LoanRequest, Quotas

DAY = date(2026, 3, 2)
BIG = Decimal("1000000000.00")


def funder(
    funder_id: str,
    kind: FunderKind = FunderKind.JOINT_STOCK,
    cost: str = "0.03",
    *,
    tier1: str = "1000000000.00",
    total_loans: str = "10000000000.00",
    daily: Decimal = BIG,
    listed: bool = True,
    region: str | None = None,
    **appetite: object,
) -> Funder:
    """A funder with generous defaults; override only what a test is about."""
    return Funder(
        id=funder_id, name=funder_id, kind=kind,
        appetite=Appetite(**{"max_pd": 0.2, "target_share": Decimal("0.70"), **appetite}),  # type: ignore[arg-type]
        funding_cost=Decimal(cost), quotas=Quotas(daily, BIG * 10),
        tier1_net_capital=Decimal(tier1), total_loans=Decimal(total_loans),
        home_region=region, on_platform_list=listed,
    )  # fmt: skip


def platform(cost: str = "0.05", daily: Decimal = BIG) -> Funder:
    return funder("platform", FunderKind.PLATFORM, cost, tier1="0", total_loans="0",
                  daily=daily, target_share=Decimal("1"))  # fmt: skip


def request(loan_id: str = "L1", amount: str = "10000.00", **kw: object) -> LoanRequest:
    fields: dict[str, object] = {
        "pd": 0.02, "apr": Decimal("0.18"), "province": "Guangdong",
        "product": "cash-loan-installment", "term": 12, "purpose": "travel", "day": DAY,
    }  # fmt: skip
    fields.update(kw)
    return LoanRequest(loan_id, Decimal(amount), **fields)  # type: ignore[arg-type]


@pytest.fixture
def panel() -> list[Funder]:
    """Platform, two national banks and a Zhejiang city bank."""
    return [
        platform(),
        funder("alpha-bank", FunderKind.STATE_OWNED, "0.028"),
        funder("beta-bank", FunderKind.JOINT_STOCK, "0.034"),
        funder("west-city", FunderKind.CITY_COMMERCIAL, "0.020", region="Zhejiang"),
    ]
