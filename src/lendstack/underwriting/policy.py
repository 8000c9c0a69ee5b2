"""The lender's credit policy as data: pricing inputs, limit curve, cut-offs, products.

Policy is what the lender chooses; the rule pack is what the law allows. Keeping them apart
lets a backtest swap one without touching the other, and lets the decision say which of the
two bound a limit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lendstack.core.datafiles import load_toml, validated
from lendstack.core.errors import ValidationError
from lendstack.servicing import RepaymentMethod

_Rate = Field(ge=0, lt=1)


class _Pricing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    funding_cost: Decimal = _Rate
    operating_cost: Decimal = _Rate
    margin: Decimal = _Rate
    lgd: Decimal = Field(gt=0, le=1)
    grid: Decimal = Field(gt=0, lt=1)


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    affordability_share: Decimal = Field(gt=0, le=1)
    step: Decimal = Field(gt=0)
    pd_curve: tuple[tuple[Decimal, Decimal], ...] = Field(min_length=1)


class _Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_pd: Decimal = Field(gt=0, le=1)
    duplicate_days: int = Field(ge=0, le=365)
    max_model_reasons: int = Field(ge=0, le=4)


class _PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    version: str
    pricing: _Pricing
    limits: _Limits
    decision: _Decision
    products: dict[RepaymentMethod, str]


@dataclass(frozen=True, slots=True)
class PricingPolicy:
    funding_cost: Decimal
    operating_cost: Decimal
    margin: Decimal
    lgd: Decimal
    grid: Decimal


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    affordability_share: Decimal
    step: Decimal
    pd_curve: tuple[tuple[Decimal, Decimal], ...]
    """(PD upper bound, limit) rows, PD increasing and limit non-increasing."""

    def limit_for(self, pd: Decimal) -> Decimal:
        """The curve's limit for `pd`; zero beyond the last row."""
        for bound, limit in self.pd_curve:
            if pd <= bound:
                return limit
        return Decimal(0)


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    version: str
    sha256: str
    pricing: PricingPolicy
    limits: LimitPolicy
    max_pd: Decimal
    duplicate_days: int
    max_model_reasons: int
    products: tuple[tuple[RepaymentMethod, str], ...]

    def product_for(self, method: RepaymentMethod) -> str | None:
        return dict(self.products).get(method)


def parse_policy(text: str, source: str) -> Policy:
    """A validated policy; every error names the file and the offending field."""
    raw = validated(_PolicyFile, load_toml(text, source), source)
    _check_curve(raw.limits.pd_curve, source)
    return Policy(
        id=raw.id,
        version=raw.version,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        pricing=PricingPolicy(**raw.pricing.model_dump()),
        limits=LimitPolicy(**raw.limits.model_dump()),
        max_pd=raw.decision.max_pd,
        duplicate_days=raw.decision.duplicate_days,
        max_model_reasons=raw.decision.max_model_reasons,
        products=tuple(sorted(raw.products.items())),
    )


def _check_curve(curve: tuple[tuple[Decimal, Decimal], ...], source: str) -> None:
    pds = [pd for pd, _ in curve]
    limits = [limit for _, limit in curve]
    if pds != sorted(pds) or limits != sorted(limits, reverse=True) or min(limits) < 0:
        raise ValidationError(
            f"{source}: rows need increasing PD and non-increasing, non-negative limits",
            field="limits.pd_curve",
        )


def load_policy(path: Path | None = None) -> Policy:
    """The policy in `path`, or the built-in default policy."""
    if path is None:
        text = (resources.files("lendstack.underwriting") / "policies" / "default.toml").read_text()
        return parse_policy(text, "default policy")
    try:
        return parse_policy(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}", field="policy") from None


def policy_facts(policy: Policy) -> dict[str, Any]:
    """What a decision record pins about the policy."""
    return {"id": policy.id, "version": policy.version, "sha256": policy.sha256}
