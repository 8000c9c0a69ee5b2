"""Who may be sold and to whom: the personal NPL batch-transfer pilot's eligibility rules.

The pilot (银保监办便函〔2021〕26号, widened by 〔2022〕1191号, extended to 2026-12-31;
REGULATION.md §7.2) lets a lender transfer *unsecured* personal consumer credit, credit-card
overdrafts and personal business credit classified 次级 (substandard) or worse, in batches, to
the five national AMCs and qualified local AMCs, who may not re-transfer them. A loan's
eligibility is a value (`Verdict` with reasons), not an exception: packaging reports why a
candidate was left out.

Products carry no "category" or "secured" attribute of their own, so the criteria map each
product id to one. A product the map does not know is ineligible: guessing that an unknown
product is unsecured consumer credit would sell what the pilot does not allow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lendstack.core.datafiles import load_toml
from lendstack.core.errors import ValidationError


class Category(StrEnum):
    CONSUMER_CREDIT = "consumer_credit"
    CARD_OVERDRAFT = "card_overdraft"
    PERSONAL_BUSINESS_CREDIT = "personal_business_credit"
    MORTGAGE = "mortgage"
    AUTO = "auto"
    OTHER = "other"


PILOT_CATEGORIES = frozenset(
    {Category.CONSUMER_CREDIT, Category.CARD_OVERDRAFT, Category.PERSONAL_BUSINESS_CREDIT}
)

CLASS_RANK: dict[str, int] = {
    "normal": 0,
    "special_mention": 1,
    "substandard": 2,
    "doubtful": 3,
    "loss": 4,
}
"""The five categories by severity (servicing's RiskClass values)."""

SELLABLE_STATUSES = ("active", "charged_off", "written_off")


@dataclass(frozen=True, slots=True)
class ProductClass:
    category: Category
    secured: bool
    note: str = ""


DEFAULT_PRODUCTS: dict[str, ProductClass] = {
    "cash-loan-installment": ProductClass(Category.CONSUMER_CREDIT, False),
    "consumer-loan-equal-principal": ProductClass(Category.CONSUMER_CREDIT, False),
    "huabei-installment": ProductClass(Category.CONSUMER_CREDIT, False),
    "short-term-bullet": ProductClass(Category.CONSUMER_CREDIT, False),
    "business-loan-interest-first": ProductClass(Category.PERSONAL_BUSINESS_CREDIT, False),
    "guaranteed-installment": ProductClass(
        Category.CONSUMER_CREDIT, True, "guaranteed (保证贷款), not a pure credit loan"
    ),
}
"""The shipped products: all unsecured except the guarantee-company product."""

PILOT_END = date(2026, 12, 31)


@dataclass(frozen=True, slots=True)
class Criteria:
    """What may go into a package. The default is the pilot's rule (`pilot()`)."""

    pilot_end: date
    min_class: str = "substandard"
    categories: frozenset[Category] = PILOT_CATEGORIES
    products: Mapping[str, ProductClass] = field(default_factory=lambda: dict(DEFAULT_PRODUCTS))
    statuses: tuple[str, ...] = SELLABLE_STATUSES
    min_dpd: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "pilot_end": self.pilot_end.isoformat(),
            "min_class": self.min_class,
            "categories": sorted(c.value for c in self.categories),
            "statuses": list(self.statuses),
            "min_dpd": self.min_dpd,
            "products": {
                pid: {"category": p.category.value, "secured": p.secured}
                for pid, p in sorted(self.products.items())
            },
        }

    def canonical(self) -> str:
        return json.dumps(self.as_json(), sort_keys=True, ensure_ascii=False)

    def eligible_products(self) -> tuple[str, ...]:
        """Product ids whose category is allowed and which are unsecured, sorted."""
        return tuple(
            sorted(
                pid
                for pid, p in self.products.items()
                if p.category in self.categories and not p.secured
            )
        )

    def classes(self) -> tuple[str, ...]:
        """The risk classes at or above `min_class`."""
        floor = CLASS_RANK[self.min_class]
        return tuple(c for c, r in CLASS_RANK.items() if r >= floor)


def pilot(pilot_end: date = PILOT_END) -> Criteria:
    return Criteria(pilot_end=pilot_end)


@dataclass(frozen=True, slots=True)
class Candidate:
    loan_id: int
    product_id: str
    status: str
    risk_class: str
    dpd: int
    sold: bool = False
    in_open_portfolio: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    loan_id: int
    reasons: tuple[str, ...]

    @property
    def eligible(self) -> bool:
        return not self.reasons


def check(loan: Candidate, criteria: Criteria, on: date) -> Verdict:
    """Every reason `loan` may not be packaged on `on` (none: it may)."""
    reasons: list[str] = []
    if on > criteria.pilot_end:
        reasons.append(f"the pilot ended on {criteria.pilot_end}")
    product = criteria.products.get(loan.product_id)
    if product is None:
        reasons.append(f"product {loan.product_id!r} has no category in the criteria")
    elif product.category not in criteria.categories:
        reasons.append(f"category {product.category} is outside the pilot")
    elif product.secured:
        reasons.append(f"product {loan.product_id!r} is secured{_note(product)}")
    if loan.status not in criteria.statuses:
        reasons.append(f"status {loan.status} cannot be sold")
    if CLASS_RANK.get(loan.risk_class, -1) < CLASS_RANK[criteria.min_class]:
        reasons.append(f"classified {loan.risk_class}, better than {criteria.min_class}")
    if loan.status == "active" and loan.dpd < criteria.min_dpd:
        reasons.append(f"{loan.dpd} DPD is below {criteria.min_dpd}")
    if loan.sold:
        reasons.append("already sold (no resale)")
    if loan.in_open_portfolio:
        reasons.append("already in another open portfolio")
    return Verdict(loan.loan_id, tuple(reasons))


def screen(
    product: NDArray[Any],
    status: NDArray[Any],
    risk_class: NDArray[Any],
    dpd: NDArray[np.int64],
    sold: NDArray[np.bool_],
    in_open: NDArray[np.bool_],
    criteria: Criteria,
    on: date,
) -> tuple[NDArray[np.bool_], dict[str, int]]:
    """`check` over whole columns at once: the eligible mask and how many loans each reason
    kept out (the same reasons, word for word), for packages of hundreds of thousands."""
    n = len(product)
    bad = np.zeros(n, dtype=bool)
    counts: dict[str, int] = {}

    def flag(mask: NDArray[np.bool_], reason: str) -> None:
        hits = int(np.count_nonzero(mask))
        if hits:
            counts[reason] = counts.get(reason, 0) + hits
            bad[mask] = True

    if on > criteria.pilot_end:
        flag(np.ones(n, dtype=bool), f"the pilot ended on {criteria.pilot_end}")
    names, index = np.unique(product.astype(str), return_inverse=True)
    for k, pid in enumerate(names):
        reason = _product_reason(str(pid), criteria)
        if reason:
            flag(index == k, reason)
    for st in np.unique(status.astype(str)):
        if st not in criteria.statuses:
            flag(status == st, f"status {st} cannot be sold")
    floor = CLASS_RANK[criteria.min_class]
    for cls in np.unique(risk_class.astype(str)):
        if CLASS_RANK.get(cls, -1) < floor:
            flag(risk_class == cls, f"classified {cls}, better than {criteria.min_class}")
    for level in np.unique(dpd[(status == "active") & (dpd < criteria.min_dpd)]):
        flag((status == "active") & (dpd == level), f"{level} DPD is below {criteria.min_dpd}")
    flag(sold.astype(bool), "already sold (no resale)")
    flag(in_open.astype(bool), "already in another open portfolio")
    return ~bad, counts


def _product_reason(pid: str, criteria: Criteria) -> str | None:
    product = criteria.products.get(pid)
    if product is None:
        return f"product {pid!r} has no category in the criteria"
    if product.category not in criteria.categories:
        return f"category {product.category} is outside the pilot"
    if product.secured:
        return f"product {pid!r} is secured{_note(product)}"
    return None


def _note(product: ProductClass) -> str:
    return f": {product.note}" if product.note else ""


def parse_criteria(text: str, source: str, default_end: date = PILOT_END) -> Criteria:
    """A criteria TOML file; keys left out keep the pilot's values (docs/npl-sale.md)."""
    data = load_toml(text, source)
    base = pilot(default_end)
    try:
        end = data.get("pilot_end", base.pilot_end)
        if not isinstance(end, date):
            raise ValidationError(f"{source}: pilot_end must be a date", field="pilot_end")
        min_class = str(data.get("min_class", base.min_class))
        if min_class not in CLASS_RANK:
            raise ValidationError(f"{source}: unknown class {min_class!r}", field="min_class")
        categories = frozenset(Category(c) for c in data.get("categories", base.categories))
        products = dict(base.products) | _products(data.get("products", {}), source)
        statuses = tuple(str(s) for s in data.get("statuses", base.statuses))
        bad = [s for s in statuses if s not in SELLABLE_STATUSES]
        if bad:
            raise ValidationError(f"{source}: status {bad[0]!r} cannot be sold", field="statuses")
        min_dpd = int(data.get("min_dpd", 0))
    except ValueError as exc:
        raise ValidationError(f"{source}: {exc}", field="categories") from exc
    return Criteria(end, min_class, categories, products, statuses, min_dpd)


def _products(table: Mapping[str, Any], source: str) -> dict[str, ProductClass]:
    out = {}
    for pid, spec in table.items():
        if not isinstance(spec, Mapping) or "category" not in spec:
            raise ValidationError(f"{source}: products.{pid} needs a category", field="products")
        out[pid] = ProductClass(Category(spec["category"]), bool(spec.get("secured", False)))
    return out


__all__ = [
    "CLASS_RANK",
    "DEFAULT_PRODUCTS",
    "PILOT_CATEGORIES",
    "PILOT_END",
    "Candidate",
    "Category",
    "Criteria",
    "ProductClass",
    "Verdict",
    "check",
    "parse_criteria",
    "pilot",
    "screen",
]
