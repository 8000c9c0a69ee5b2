"""Loan products: data files that fix a method, ranges, day count, rounding and waterfall.

Products live in TOML so a risk team can add one without a release. A file is parsed with
pydantic (types, required fields, unknown keys) and then built into a frozen `Product`, whose
own checks hold the business rules (ranges ordered, penalty multiplier within the PBOC band).
Every failure is a `ValidationError` naming the file and the field.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from lendstack.core.datafiles import load_toml, validated
from lendstack.core.daycount import DayCount
from lendstack.core.errors import NotFound, ValidationError
from lendstack.core.money import FEN, Rounding
from lendstack.servicing.domain.schedule import (
    MAX_TERM_MONTHS,
    LoanTerms,
    RepaymentMethod,
    as_enum,
)
from lendstack.servicing.domain.waterfall import DEFAULT_ORDER, Component, validate_order

PENALTY_MULTIPLIER_MIN = Decimal("1.3")
PENALTY_MULTIPLIER_MAX = Decimal("1.5")
"""PBOC 银发〔2003〕251号: overdue penalty rate = contract rate plus 30% to 50%."""

_ZERO_RATE = Decimal(0)


def _check_range(low: Decimal, high: Decimal, name: str, *, below_one: bool) -> None:
    if low < 0:
        raise ValidationError(f"must be >= 0, got {low}", field=f"{name}_min")
    if high < low:
        raise ValidationError(f"{high} is below {name}_min {low}", field=f"{name}_max")
    if below_one and high >= 1:
        raise ValidationError(f"must be < 1, got {high}", field=f"{name}_max")


_MAX_GUARANTEE_FEE = Decimal("0.99")
"""Per period; a sanity bound only: the rule pack's APR cap is what bounds the fee."""


def _check_in(value: Decimal, low: Decimal, high: Decimal, field: str) -> Decimal:
    if not isinstance(value, Decimal | int) or isinstance(value, bool):
        raise ValidationError(f"must be a Decimal, not {type(value).__name__}", field=field)
    if not Decimal(value).is_finite():
        raise ValidationError(f"must be finite, got {value}", field=field)
    if not low <= value <= high:
        raise ValidationError(
            f"{value} is outside this product's range [{low}, {high}]", field=field
        )
    return Decimal(value)


@dataclass(frozen=True, slots=True)
class Product:
    """A loan product. Rates are annual (fee rates per period); amounts are CNY."""

    id: str
    name: str
    method: RepaymentMethod
    terms_allowed: tuple[int, ...]
    rate_min: Decimal
    rate_max: Decimal
    fee_rate_min: Decimal
    fee_rate_max: Decimal
    upfront_fee_rate_min: Decimal
    upfront_fee_rate_max: Decimal
    amount_min: Decimal
    amount_max: Decimal
    day_count: DayCount
    rounding: Rounding
    grace_days: int
    penalty_multiplier: Decimal
    waterfall: tuple[Component, ...] = DEFAULT_ORDER
    non_accrual_dpd: int = 90
    charge_off_dpd: int = 180
    prepayment_fee_rate: Decimal = _ZERO_RATE
    penalty_base_rate: Decimal = _ZERO_RATE
    description: str = ""
    write_off_days: int | None = None
    """Days after charge-off at which close of business writes the loan off (核销): it leaves
    the charged-off (off-balance-sheet, still pursued) book for good. None: never by itself."""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "method", as_enum(RepaymentMethod, self.method, "method"))
        set_(self, "day_count", as_enum(DayCount, self.day_count, "day_count"))
        set_(self, "rounding", as_enum(Rounding, self.rounding, "rounding"))
        self._check_terms()
        _check_range(self.rate_min, self.rate_max, "rate", below_one=True)
        _check_range(self.fee_rate_min, self.fee_rate_max, "fee_rate", below_one=True)
        _check_range(
            self.upfront_fee_rate_min, self.upfront_fee_rate_max, "upfront_fee_rate", below_one=True
        )
        _check_range(self.amount_min, self.amount_max, "amount", below_one=False)
        self._check_amounts()
        self._check_servicing()
        set_(self, "waterfall", validate_order(self.waterfall))

    def _check_terms(self) -> None:
        if not self.id or not self.id.replace("-", "").isalnum() or self.id != self.id.lower():
            raise ValidationError(f"must be a lower-case slug, got {self.id!r}", field="id")
        terms = self.terms_allowed
        if not terms or list(terms) != sorted(set(terms)):
            raise ValidationError("must be a non-empty, increasing list", field="terms_allowed")
        if terms[0] < 1 or terms[-1] > MAX_TERM_MONTHS:
            raise ValidationError(f"terms must be 1..{MAX_TERM_MONTHS}", field="terms_allowed")
        if self.method is RepaymentMethod.INTEREST_FREE_FEE and self.rate_max != 0:
            raise ValidationError(
                "an interest-free-fee product charges no interest", field="rate_max"
            )

    def _check_amounts(self) -> None:
        if self.amount_min <= 0:
            raise ValidationError(f"must be > 0, got {self.amount_min}", field="amount_min")
        for name in ("amount_min", "amount_max"):
            value: Decimal = getattr(self, name)
            if value != value.quantize(FEN):
                raise ValidationError(f"{value} is more precise than the fen", field=name)

    def _check_servicing(self) -> None:
        if not PENALTY_MULTIPLIER_MIN <= self.penalty_multiplier <= PENALTY_MULTIPLIER_MAX:
            raise ValidationError(
                f"{self.penalty_multiplier} is outside 1.3–1.5: PBOC 银发〔2003〕251号 sets the "
                "overdue penalty rate at the contract rate plus 30% to 50%",
                field="penalty_multiplier",
            )
        if not 0 <= self.grace_days <= 30:
            raise ValidationError(f"must be 0..30, got {self.grace_days}", field="grace_days")
        if self.write_off_days is not None and self.write_off_days < 1:
            # a loan is charged off and written off on different dates (one status event a day)
            raise ValidationError("must be >= 1 day after charge-off", field="write_off_days")
        if not 1 <= self.non_accrual_dpd <= self.charge_off_dpd:
            raise ValidationError(
                "need 1 <= non_accrual_dpd <= charge_off_dpd", field="non_accrual_dpd"
            )
        for name in ("prepayment_fee_rate", "penalty_base_rate"):
            if not 0 <= getattr(self, name) < 1:
                raise ValidationError("must be in [0, 1)", field=name)

    def penalty_rate(self, contract_rate: Decimal) -> Decimal:
        """Annual overdue penalty rate: max(contract rate, penalty_base_rate) × multiplier.

        The base rate exists for zero-interest products (Huabei-style fee installments), whose
        contract rate of 0 would otherwise make lateness free.
        """
        return max(contract_rate, self.penalty_base_rate) * self.penalty_multiplier

    def terms(
        self,
        amount: Decimal,
        term_months: int,
        rate: Decimal,
        start: date,
        fee_rate: Decimal | None = None,
        upfront_fee_rate: Decimal | None = None,
        guarantee_fee_rate: Decimal = Decimal(0),
    ) -> LoanTerms:
        """Loan terms inside this product's ranges; omitted fee rates take the range minimum.

        `guarantee_fee_rate` is a co-lender's first-loss guarantee fee per period, on the
        original principal. It is charged with the product's own per-period fee (so it is in
        every APR figure, REGULATION.md 2.8) but is not bounded by the product's fee range:
        the partner agreement sets it, and the rule pack's APR cap bounds the total.
        """
        self._check_term(term_months)
        fee = _check_in(
            self.fee_rate_min if fee_rate is None else fee_rate,
            self.fee_rate_min,
            self.fee_rate_max,
            "fee_rate",
        ) + _check_in(guarantee_fee_rate, Decimal(0), _MAX_GUARANTEE_FEE, "guarantee_fee_rate")
        upfront = self.upfront_fee_rate_min if upfront_fee_rate is None else upfront_fee_rate
        return LoanTerms(
            principal=self._check_amount(amount),
            annual_rate=_check_in(rate, self.rate_min, self.rate_max, "rate"),
            term_months=term_months,
            method=self.method,
            start_date=start,
            day_count=self.day_count,
            rounding=self.rounding,
            fee_rate=fee,
            upfront_fee_rate=_check_in(
                upfront, self.upfront_fee_rate_min, self.upfront_fee_rate_max, "upfront_fee_rate"
            ),
        )

    def _check_term(self, term_months: int) -> None:
        if isinstance(term_months, bool) or term_months not in self.terms_allowed:
            allowed = ", ".join(str(t) for t in self.terms_allowed)
            message = f"{term_months!r} months not offered (allowed: {allowed})"
            raise ValidationError(message, field="term")

    def _check_amount(self, amount: Decimal) -> Decimal:
        principal = _check_in(amount, self.amount_min, self.amount_max, "amount")
        if principal != principal.quantize(FEN):
            raise ValidationError(
                f"{principal} is more precise than the fen (0.01)", field="amount"
            )
        return principal


class _ProductFile(BaseModel):
    """The on-disk shape; types and presence only, business rules live in `Product`."""

    model_config = ConfigDict(extra="forbid")

    id: StrictStr
    name: StrictStr
    description: StrictStr = ""
    method: RepaymentMethod
    terms_allowed: list[StrictInt]
    rate_min: Decimal
    rate_max: Decimal
    fee_rate_min: Decimal = _ZERO_RATE
    fee_rate_max: Decimal = _ZERO_RATE
    upfront_fee_rate_min: Decimal = _ZERO_RATE
    upfront_fee_rate_max: Decimal = _ZERO_RATE
    amount_min: Decimal
    amount_max: Decimal
    day_count: DayCount
    rounding: Rounding
    grace_days: StrictInt
    penalty_multiplier: Decimal
    waterfall: list[StrictStr] | None = None
    non_accrual_dpd: StrictInt = 90
    charge_off_dpd: StrictInt = 180
    prepayment_fee_rate: Decimal = _ZERO_RATE
    penalty_base_rate: Decimal = _ZERO_RATE
    write_off_days: StrictInt | None = None

    def build(self) -> Product:
        fields = self.model_dump(exclude={"terms_allowed", "waterfall"})
        order = DEFAULT_ORDER if self.waterfall is None else validate_order(self.waterfall)
        return Product(**fields, terms_allowed=tuple(self.terms_allowed), waterfall=order)


def parse_product(data: dict[str, Any], source: str) -> Product:
    """A product from parsed TOML `data`; every error names `source` and the field."""
    shape = validated(_ProductFile, data, source)
    try:
        return shape.build()
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc.message}", field=exc.field) from exc


def _parse_text(text: str, source: str) -> Product:
    return parse_product(load_toml(text, source), source)


def load_product(path: Path) -> Product:
    """Read one product TOML file. TOML floats are parsed as Decimal, never as binary floats."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NotFound(f"cannot read product file {path}: {exc}", field="product") from exc
    return _parse_text(text, str(path))


@functools.cache
def builtin_products() -> tuple[Product, ...]:
    """The products shipped in lendstack/servicing/products (read once per process)."""
    folder = resources.files("lendstack") / "servicing" / "products"
    items = sorted((t for t in folder.iterdir() if t.name.endswith(".toml")), key=lambda t: t.name)
    return tuple(_parse_text(t.read_text("utf-8"), t.name) for t in items)


def _by_id(products: Iterable[Product], where: str) -> dict[str, Product]:
    found: dict[str, Product] = {}
    for product in products:
        if product.id in found:
            raise ValidationError(f"product id {product.id!r} appears twice in {where}", field="id")
        found[product.id] = product
    return found


class ProductCatalog:
    """The built-in products, overridden (by id) and extended by an optional directory."""

    __slots__ = ("_products",)

    def __init__(self, extra_dir: Path | None = None) -> None:
        products = _by_id(builtin_products(), "the built-in products")
        if extra_dir is not None:
            files = sorted(Path(extra_dir).glob("*.toml"))
            products |= _by_id((load_product(f) for f in files), str(extra_dir))
        self._products: dict[str, Product] = products

    def get(self, product_id: str) -> Product:
        try:
            return self._products[product_id]
        except KeyError:
            known = ", ".join(sorted(self._products))
            raise NotFound(f"no product {product_id!r} (known: {known})", field="product") from None

    def all(self) -> tuple[Product, ...]:
        return tuple(self._products[k] for k in sorted(self._products))

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._products

    def __len__(self) -> int:
        return len(self._products)
