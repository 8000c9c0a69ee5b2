"""Funding partners: the platform's own balance sheet and the banks that co-lend with it.

Partners live in TOML files so the funding desk can add a bank or change a quota without a
release. A file is parsed with pydantic (types, presence, no unknown keys, no negative limits)
and built into a frozen `Funder`, whose own checks hold the business rules (a local bank names
its home region, a bank states the balance-sheet figures its concentration limits hang on).
Every failure is a `ValidationError` that names the partner id and the field.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from lendstack.core.datafiles import load_toml, validated
from lendstack.core.errors import NotFound, ValidationError
from lendstack.core.money import FEN
from lendstack.core.regions import PROVINCES

RATE_QUANTUM = Decimal("0.000001")
"""Rates (funding cost, min APR, fee) are held to 6 places so the allocator can use integers."""


class FunderKind(StrEnum):
    PLATFORM = "platform"
    STATE_OWNED = "state_owned"
    JOINT_STOCK = "joint_stock"
    CITY_COMMERCIAL = "city_commercial"
    RURAL = "rural"
    CONSUMER_FINANCE_COMPANY = "consumer_finance_company"

    @property
    def is_local(self) -> bool:
        """Locally incorporated banks may lend only in their home region (REGULATION.md 2.4)."""
        return self in (FunderKind.CITY_COMMERCIAL, FunderKind.RURAL)


@dataclass(frozen=True, slots=True)
class Appetite:
    """What a funder will take. Empty tuples mean "any"."""

    max_pd: float
    provinces: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    terms: tuple[int, ...] = ()
    purposes: tuple[str, ...] = ()
    min_apr: Decimal = Decimal(0)
    target_share: Decimal = Decimal(1)
    """The largest share of one loan the funder wants; it never takes more."""


@dataclass(frozen=True, slots=True)
class Quotas:
    """CNY the funder commits: per business day and over the whole agreement."""

    daily: Decimal
    total: Decimal


GUARANTEE_FEE_QUANTUM = Decimal("0.00000001")


def guarantee_fee_per_period(annual: Decimal) -> Decimal:
    """The monthly guarantee fee rate on the original principal for an annual rate: annual / 12
    to 8 decimals, half up. One function, so the offer the borrower is quoted and the split of
    the fee collected between guarantor and funders use the same figure."""
    return (annual / 12).quantize(GUARANTEE_FEE_QUANTUM, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Guarantee:
    """A first-loss guarantee on the funder's share; its fee counts in the borrower's APR (2.8)."""

    trigger_dpd: int
    fee_rate: Decimal
    balance: Decimal


@dataclass(frozen=True, slots=True)
class Funder:
    """One source of loan funding. Money in CNY, rates annual."""

    id: str
    name: str
    kind: FunderKind
    appetite: Appetite
    funding_cost: Decimal
    quotas: Quotas
    tier1_net_capital: Decimal = Decimal(0)
    total_loans: Decimal = Decimal(0)
    home_region: str | None = None
    on_platform_list: bool = False
    guarantee: Guarantee | None = None

    @property
    def guarantee_fee_rate(self) -> Decimal:
        """Annual guarantee fee on this funder's part of a loan; 0 without a guarantee."""
        return Decimal(0) if self.guarantee is None else self.guarantee.fee_rate

    def __post_init__(self) -> None:
        if not self.id or self.id != self.id.lower() or not self.id.replace("-", "").isalnum():
            raise ValidationError(f"must be a lower-case slug, got {self.id!r}", field="id")
        object.__setattr__(self, "kind", FunderKind(self.kind))
        self._check_money()
        self._check_rates()
        self._check_region()

    @property
    def is_platform(self) -> bool:
        return self.kind is FunderKind.PLATFORM

    def _check_money(self) -> None:
        for name, value in self._money_fields():
            if not value.is_finite() or value < 0:
                raise ValidationError(f"must be a number >= 0, got {value}", field=name)
            if value != value.quantize(FEN):
                raise ValidationError(f"{value} is more precise than the fen", field=name)
        if not self.is_platform:
            for name in ("tier1_net_capital", "total_loans"):
                if getattr(self, name) <= 0:
                    raise ValidationError(
                        "a co-lending bank needs it > 0: its concentration limits (2.2, 2.3) "
                        "are fractions of it",
                        field=name,
                    )

    def _money_fields(self) -> list[tuple[str, Decimal]]:
        fields = [
            ("tier1_net_capital", self.tier1_net_capital),
            ("total_loans", self.total_loans),
            ("quotas.daily", self.quotas.daily),
            ("quotas.total", self.quotas.total),
        ]
        if self.guarantee is not None:
            fields.append(("guarantee.balance", self.guarantee.balance))
        return fields

    def _check_rates(self) -> None:
        rates = [
            ("funding_cost", self.funding_cost),
            ("appetite.min_apr", self.appetite.min_apr),
        ]
        if self.guarantee is not None:
            rates.append(("guarantee.fee_rate", self.guarantee.fee_rate))
            if self.guarantee.trigger_dpd < 1:
                raise ValidationError("must be >= 1 day", field="guarantee.trigger_dpd")
        for name, rate in rates:
            if not rate.is_finite() or not 0 <= rate < 1:
                raise ValidationError(f"must be an annual rate in [0, 1), got {rate}", field=name)
            if rate != rate.quantize(RATE_QUANTUM):
                raise ValidationError("at most 6 decimal places", field=name)
        share = self.appetite.target_share
        if not 0 < share <= 1:
            raise ValidationError(f"must be in (0, 1], got {share}", field="appetite.target_share")
        if not 0 <= self.appetite.max_pd <= 1:
            raise ValidationError("must be in [0, 1]", field="appetite.max_pd")

    def _check_region(self) -> None:
        if self.kind.is_local and not self.home_region:
            raise ValidationError(
                f"a {self.kind} bank may lend only in its home region (REGULATION.md 2.4)",
                field="home_region",
            )
        regions = [("home_region", self.home_region)] if self.home_region else []
        regions += [("appetite.provinces", p) for p in self.appetite.provinces]
        for field, province in regions:
            if province not in PROVINCES:
                raise ValidationError(f"unknown province {province!r}", field=field)


def _no_bool(value: Any) -> Any:
    """TOML `true` is not a number; pydantic's lax mode would read it as 1."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


Amount = Annotated[Decimal, BeforeValidator(_no_bool), Field(ge=0, allow_inf_nan=False)]
Rate = Annotated[Decimal, BeforeValidator(_no_bool), Field(ge=0, lt=1, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _AppetiteFile(_Strict):
    max_pd: Annotated[Decimal, BeforeValidator(_no_bool), Field(ge=0, le=1)]
    provinces: list[StrictStr] = []
    products: list[StrictStr] = []
    terms: list[Annotated[StrictInt, Field(ge=1, le=360)]] = []
    purposes: list[StrictStr] = []
    min_apr: Rate = Decimal(0)
    target_share: Annotated[Decimal, BeforeValidator(_no_bool), Field(gt=0, le=1)] = Decimal(1)


class _QuotasFile(_Strict):
    daily: Amount
    total: Amount


class _GuaranteeFile(_Strict):
    trigger_dpd: Annotated[StrictInt, Field(ge=1, le=3650)]
    fee_rate: Rate
    balance: Amount


class _FunderFile(_Strict):
    """The on-disk shape: types, presence and signs; business rules live in `Funder`."""

    id: StrictStr
    name: StrictStr
    kind: FunderKind
    tier1_net_capital: Amount = Decimal(0)
    total_loans: Amount = Decimal(0)
    home_region: StrictStr | None = None
    on_platform_list: StrictBool = False
    funding_cost: Rate
    appetite: _AppetiteFile
    quotas: _QuotasFile
    guarantee: _GuaranteeFile | None = None

    def build(self) -> Funder:
        a, q, g = self.appetite, self.quotas, self.guarantee
        appetite = Appetite(
            float(a.max_pd), tuple(sorted(set(a.provinces))), tuple(sorted(set(a.products))),
            tuple(sorted(set(a.terms))), tuple(sorted(set(a.purposes))), a.min_apr, a.target_share,
        )  # fmt: skip
        guarantee = None if g is None else Guarantee(g.trigger_dpd, g.fee_rate, g.balance)
        return Funder(
            id=self.id, name=self.name, kind=self.kind, appetite=appetite,
            funding_cost=self.funding_cost, quotas=Quotas(q.daily, q.total),
            tier1_net_capital=self.tier1_net_capital, total_loans=self.total_loans,
            home_region=self.home_region, on_platform_list=self.on_platform_list,
            guarantee=guarantee,
        )  # fmt: skip


def parse_partner(data: dict[str, Any], source: str) -> Funder:
    """A funder from parsed TOML; every error names the partner id (or `source`) and the field."""
    who = f"partner {data.get('id')!r}" if isinstance(data.get("id"), str) else source
    where = f"{who} ({source})"
    shape = validated(_FunderFile, data, where)
    try:
        return shape.build()
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc.message}", field=exc.field) from exc


def parse_partner_text(text: str, source: str) -> Funder:
    """TOML floats are read as Decimal, so no binary float touches a limit or a rate."""
    return parse_partner(load_toml(text, source), source)


def _unique(funders: list[Funder], where: str) -> tuple[Funder, ...]:
    seen: set[str] = set()
    for funder in funders:
        if funder.id in seen:
            raise ValidationError(f"partner id {funder.id!r} appears twice in {where}", field="id")
        seen.add(funder.id)
    return tuple(sorted(funders, key=lambda f: f.id))


def load_partners(directory: Path) -> tuple[Funder, ...]:
    """Every `*.toml` partner file in `directory`, sorted by id; ids must be unique."""
    folder = Path(directory)
    if not folder.is_dir():
        raise NotFound(f"no partner directory {folder}", field="partners")
    funders = []
    for path in sorted(folder.glob("*.toml")):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise NotFound(f"cannot read partner file {path}: {exc}", field="partners") from exc
        funders.append(parse_partner_text(text, path.name))
    return _unique(funders, str(folder))


@functools.cache
def builtin_partners() -> tuple[Funder, ...]:
    """The sample partners shipped in lendstack/funding/partners (read once per process)."""
    folder = resources.files("lendstack") / "funding" / "partners"
    items = sorted((t for t in folder.iterdir() if t.name.endswith(".toml")), key=lambda t: t.name)
    funders = [parse_partner_text(t.read_text("utf-8"), t.name) for t in items]
    return _unique(funders, "the built-in partners")
