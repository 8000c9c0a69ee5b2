"""The buyer allowlist: who may buy a personal NPL batch (national and qualified local AMCs).

Buyers are data (`buyers/default.toml`, or a lender's own file). The pilot restricts personal
batches to asset management companies, so a buyer whose `kind` is not an AMC kind can be
listed (a lender may track other counterparties) but `require_buyer` refuses to sell to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from lendstack.core.datafiles import load_toml
from lendstack.core.errors import NotFound, ValidationError

DEFAULT_BUYERS = Path(__file__).parent / "buyers" / "default.toml"


class BuyerKind(StrEnum):
    NATIONAL_AMC = "national_amc"
    LOCAL_AMC = "local_amc"
    FINANCIAL_ASSET_INVESTMENT = "financial_asset_investment"
    OTHER = "other"


ALLOWED_KINDS = frozenset({BuyerKind.NATIONAL_AMC, BuyerKind.LOCAL_AMC})
"""Personal batches go to AMCs only (REGULATION.md §7.2)."""


@dataclass(frozen=True, slots=True)
class Buyer:
    id: str
    name: str
    name_en: str
    kind: BuyerKind
    region: str | None = None

    @property
    def allowed(self) -> bool:
        return self.kind in ALLOWED_KINDS

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "name_en": self.name_en,
            "kind": self.kind.value,
            "region": self.region,
            "allowed": self.allowed,
        }


@dataclass(frozen=True, slots=True)
class BuyerList:
    buyers: tuple[Buyer, ...]
    illustrative: bool
    source: str

    def get(self, buyer_id: str) -> Buyer:
        for buyer in self.buyers:
            if buyer.id == buyer_id:
                return buyer
        known = ", ".join(b.id for b in self.buyers)
        raise NotFound(f"no buyer {buyer_id!r} on the allowlist (known: {known})", field="buyer")


def parse_buyers(text: str, source: str) -> BuyerList:
    data = load_toml(text, source)
    rows = data.get("buyer", [])
    if not isinstance(rows, list) or not rows:
        raise ValidationError(f"{source}: needs at least one [[buyer]]", field="buyer")
    buyers = tuple(_buyer(row, source, i) for i, row in enumerate(rows))
    ids = [b.id for b in buyers]
    if len(set(ids)) != len(ids):
        raise ValidationError(f"{source}: buyer ids must be unique", field="buyer.id")
    return BuyerList(buyers, bool(data.get("illustrative", False)), str(data.get("source", "")))


def _buyer(row: Any, source: str, index: int) -> Buyer:
    if not isinstance(row, dict):
        raise ValidationError(f"{source}: buyer {index} is not a table", field="buyer")
    for key in ("id", "name", "kind"):
        if not row.get(key):
            raise ValidationError(f"{source}: buyer {index} needs {key}", field=f"buyer.{key}")
    try:
        kind = BuyerKind(row["kind"])
    except ValueError:
        raise ValidationError(
            f"{source}: buyer {row['id']!r} has unknown kind {row['kind']!r}", field="buyer.kind"
        ) from None
    region = row.get("region")
    return Buyer(str(row["id"]), str(row["name"]), str(row.get("name_en", "")), kind,
                 None if region is None else str(region))  # fmt: skip


def load_buyers(path: Path | None = None) -> BuyerList:
    """The buyers in `path`, or the shipped default list."""
    target = path or DEFAULT_BUYERS
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read {target}: {exc.strerror}", field="buyers") from exc
    return parse_buyers(text, str(target))


def require_buyer(buyers: BuyerList, buyer_id: str) -> Buyer:
    """The buyer, if it may buy a personal batch; otherwise a clear error naming `buyer`."""
    buyer = buyers.get(buyer_id)
    if not buyer.allowed:
        raise ValidationError(
            f"buyer {buyer_id!r} is a {buyer.kind}; personal NPL batches go to AMCs only",
            field="buyer",
        )
    return buyer


__all__ = [
    "ALLOWED_KINDS",
    "DEFAULT_BUYERS",
    "Buyer",
    "BuyerKind",
    "BuyerList",
    "load_buyers",
    "parse_buyers",
    "require_buyer",
]
