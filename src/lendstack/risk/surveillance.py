"""Use-of-funds surveillance: did a consumer loan end up in gold, FX or securities?

The seed's borrowers "used small loans to speculate on gold or currencies". Consumer loans
may not fund securities, futures, gold or FX speculation, house purchase or lottery
(REGULATION.md §5), so a lender watches the transactions out of the disbursement account,
each tagged with a merchant category. A rule pack (data: `surveillance_config/default.toml`)
lists the forbidden categories and a window: a loan whose funds reach one within
`window_days` of disbursement is flagged. The flag raises an early-warning alert, declines
the borrower's next application, and makes the misuse penalty rate available to servicing:
contract rate × (1 + markup), markup in [0.50, 1.00] (PBOC 银发〔2003〕251号), capped so the
all-in cost stays within the 24 % rule.

Pure: parsing, the pack, flagging and the penalty arithmetic. Storage and the clock are at
the edges (`storage.use_of_funds`, `cli.risk_funds`, `api.transactions`).
"""

from __future__ import annotations

import decimal
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from lendstack.core.datafiles import load_toml
from lendstack.core.errors import NotFound, ValidationError
from lendstack.core.money import parse_amount
from lendstack.risk.alerts import Alert, Metric, Severity

MARKUP_MIN = Decimal("0.50")
MARKUP_MAX = Decimal("1.00")
RATE_STEP = Decimal("0.00000001")
"""Penalty rates are kept to 1e-8, the precision the set-based close computes with."""
MAX_ID = 64


class MerchantCategory(StrEnum):
    GOLD_TRADING = "gold_trading"
    FX = "fx"
    SECURITIES_BROKERAGE = "securities_brokerage"
    FUTURES = "futures"
    CRYPTO = "crypto"
    LOTTERY = "lottery"
    GAMBLING = "gambling"
    REAL_ESTATE = "real_estate"
    CONSUMPTION = "consumption"
    EDUCATION = "education"
    MEDICAL = "medical"
    TRAVEL = "travel"
    UTILITIES = "utilities"
    TRANSFER = "transfer"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Transaction:
    """One debit from a loan's disbursement account. `amount` is CNY, exact to the fen."""

    transaction_id: str
    loan_id: int
    at: datetime
    amount: Decimal
    category: MerchantCategory


FIELDS = ("transaction_id", "loan_id", "timestamp", "amount", "merchant_category")


Row = int | str | None
"""Where a record sits in its feed: a file's row number, an API body path, or nothing."""


def _where(row: Row, name: str) -> str:
    if row is None:
        return name
    return f"row {row}: {name}" if isinstance(row, int) else f"{row}.{name}"


def parse_transaction(raw: Mapping[str, Any], row: Row = None) -> Transaction:
    """A transaction from a feed record (CSV row or JSON object); the error names the field,
    and with `row` the row, e.g. `row 7: amount`."""
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]!r}", field=_where(row, unknown[0]))
    for name in FIELDS:
        if raw.get(name) in (None, ""):
            raise ValidationError("is missing", field=_where(row, name))
    return Transaction(
        _transaction_id(raw["transaction_id"], row),
        _loan_id(raw["loan_id"], row),
        _timestamp(raw["timestamp"], row),
        parse_amount(_text(raw["amount"], row, "amount"), _where(row, "amount")),
        _category(raw["merchant_category"], row),
    )


def _text(value: Any, row: Row, name: str) -> str:
    if isinstance(value, float | bool):
        raise ValidationError("must be a decimal string", field=_where(row, name))
    return str(value).strip()


def _transaction_id(value: Any, row: Row) -> str:
    text = str(value).strip()
    if not 1 <= len(text) <= MAX_ID or not text.isprintable():
        raise ValidationError(
            f"must be 1-{MAX_ID} printable characters", field=_where(row, "transaction_id")
        )
    return text


def _loan_id(value: Any, row: Row) -> int:
    text = str(value).strip()
    if isinstance(value, bool | float) or not text.isdigit() or int(text) < 1:
        raise ValidationError(
            f"must be a positive whole number, got {value!r}", field=_where(row, "loan_id")
        )
    return int(text)


def _timestamp(value: Any, row: Row) -> datetime:
    try:
        at = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(
            f"{value!r} is not an ISO 8601 timestamp", field=_where(row, "timestamp")
        ) from None
    if at.tzinfo is None:
        raise ValidationError("needs a UTC offset, e.g. +08:00", field=_where(row, "timestamp"))
    return at.astimezone(UTC)


def _category(value: Any, row: Row) -> MerchantCategory:
    try:
        return MerchantCategory(str(value).strip())
    except ValueError:
        known = ", ".join(c.value for c in MerchantCategory)
        raise ValidationError(
            f"unknown category {value!r} (known: {known})", field=_where(row, "merchant_category")
        ) from None


# --- the pack -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SurveillancePack:
    id: str
    version: str
    window_days: int
    min_amount: Decimal
    forbidden: frozenset[MerchantCategory]
    misuse_markup: Decimal
    penalty_rate_cap: Decimal
    severity: Severity
    product_markup: tuple[tuple[str, Decimal], ...] = ()

    def markup_for(self, product_id: str) -> Decimal:
        """The misuse markup for a product: its own if the pack sets one, else the default."""
        return dict(self.product_markup).get(product_id, self.misuse_markup)


_KEYS = frozenset(
    {"id", "version", "source", "window_days", "min_amount", "forbidden", "misuse_markup",
     "penalty_rate_cap", "severity", "product_markup"}
)  # fmt: skip


def load_pack(source: Path | str) -> SurveillancePack:
    """A pack from a TOML file (`Path`) or TOML text (`str`); bad values name `pack.<key>`."""
    if isinstance(source, Path):
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise NotFound(f"cannot read pack {source}: {exc}", field="pack") from exc
        return parse_pack(load_toml(text, str(source)))
    return parse_pack(load_toml(source, "pack"))


@functools.cache
def default_pack() -> SurveillancePack:
    item = resources.files("lendstack.risk") / "surveillance_config" / "default.toml"
    return parse_pack(load_toml(item.read_text("utf-8"), "default.toml"))


def parse_pack(data: Mapping[str, Any]) -> SurveillancePack:
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValidationError("unknown key", field=f"pack.{unknown[0]}")
    for key in _KEYS - {"source", "product_markup"}:
        if key not in data:
            raise ValidationError("is missing", field=f"pack.{key}")
    window = data["window_days"]
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise ValidationError(
            f"must be a whole number >= 0, got {window!r}", field="pack.window_days"
        )
    return SurveillancePack(
        str(data["id"]),
        str(data["version"]),
        window,
        parse_amount(_pack_text(data["min_amount"], "min_amount"), "pack.min_amount"),
        _forbidden(data["forbidden"]),
        _markup(data["misuse_markup"], "pack.misuse_markup"),
        _rate(data["penalty_rate_cap"], "pack.penalty_rate_cap"),
        _severity(data["severity"]),
        _product_markups(data.get("product_markup", {})),
    )


def _pack_text(value: Any, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValidationError(f"must be a decimal string, got {value!r}", field=f"pack.{key}")
    return str(value)


def _decimal(value: Any, field: str) -> Decimal:
    try:
        number = Decimal(_pack_text(value, field.removeprefix("pack.")))
    except decimal.InvalidOperation:
        raise ValidationError(f"{value!r} is not a number", field=field) from None
    if not number.is_finite():
        raise ValidationError("must be finite", field=field)
    return number


def _markup(value: Any, field: str) -> Decimal:
    markup = _decimal(value, field)
    if not MARKUP_MIN <= markup <= MARKUP_MAX:
        raise ValidationError(
            f"{markup} is outside [0.50, 1.00]: PBOC 银发〔2003〕251号 sets the misuse penalty at "
            "contract rate +50% to +100%",
            field=field,
        )
    return markup


def _rate(value: Any, field: str) -> Decimal:
    rate = _decimal(value, field)
    if not Decimal(0) < rate <= Decimal(1):
        raise ValidationError(f"must be in (0, 1], got {rate}", field=field)
    return rate


def _forbidden(value: Any) -> frozenset[MerchantCategory]:
    if not isinstance(value, list) or not value:
        raise ValidationError("must be a non-empty list of categories", field="pack.forbidden")
    out = set()
    for item in value:
        try:
            out.add(MerchantCategory(item))
        except ValueError:
            raise ValidationError(f"unknown category {item!r}", field="pack.forbidden") from None
    return frozenset(out)


def _severity(value: Any) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        raise ValidationError(
            f"must be warn or critical, got {value!r}", field="pack.severity"
        ) from None


def _product_markups(value: Any) -> tuple[tuple[str, Decimal], ...]:
    if not isinstance(value, Mapping):
        raise ValidationError("must be a table", field="pack.product_markup")
    return tuple(sorted((str(k), _markup(v, f"pack.product_markup.{k}")) for k, v in value.items()))


# --- flagging -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flag:
    """A loan whose funds reached a forbidden category: its first offending transaction."""

    loan_id: int
    transaction_id: str
    category: MerchantCategory
    amount: Decimal
    at: datetime
    disbursed: date
    days_after: int
    offending: int
    """How many of the loan's transactions offend (the first one is kept)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "loan_id": self.loan_id,
            "transaction_id": self.transaction_id,
            "category": self.category.value,
            "amount": str(self.amount),
            "at": self.at.isoformat(),
            "disbursed": self.disbursed.isoformat(),
            "days_after": self.days_after,
            "offending": self.offending,
        }


def offends(tx: Transaction, disbursed: date, pack: SurveillancePack) -> bool:
    """Forbidden category, at least `min_amount`, on day 0..window_days after disbursement."""
    days = (tx.at.date() - disbursed).days
    return (
        tx.category in pack.forbidden
        and tx.amount >= pack.min_amount
        and 0 <= days <= pack.window_days
    )


def flags_for(
    transactions: Iterable[Transaction], disbursed: Mapping[int, date], pack: SurveillancePack
) -> tuple[Flag, ...]:
    """One flag per loan with an offending transaction (the earliest; ties by id)."""
    found: dict[int, list[Transaction]] = {}
    for tx in transactions:
        day = disbursed.get(tx.loan_id)
        if day is not None and offends(tx, day, pack):
            found.setdefault(tx.loan_id, []).append(tx)
    out = []
    for loan_id, txs in sorted(found.items()):
        first = min(txs, key=lambda t: (t.at, t.transaction_id))
        day = disbursed[loan_id]
        out.append(
            Flag(
                loan_id, first.transaction_id, first.category, first.amount, first.at, day,
                (first.at.date() - day).days, len(txs),
            )
        )  # fmt: skip
    return tuple(out)


def flag_alert(flag: Flag, pack: SurveillancePack) -> Alert:
    """The early-warning alert for a flag: id `funds_misuse:<day>:loan-<id>`, so re-running
    surveillance over the same feed stores nothing new."""
    return Alert(
        Metric.FUNDS_MISUSE,
        pack.severity,
        float(flag.amount),
        float(pack.min_amount),
        flag.at.date(),
        cohorts=(flag.disbursed.replace(day=1),),
        loan_ids=(flag.loan_id,),
        loan_count=1,
        subject=f"loan-{flag.loan_id}",
        detail={
            "days_after_disbursement": float(flag.days_after),
            "window_days": float(pack.window_days),
        },
    )


# --- the misuse penalty rate --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MisusePenalty:
    contract_rate: Decimal
    markup: Decimal
    rate: Decimal
    """contract rate × (1 + markup), to 1e-8 (ROUND_HALF_UP)."""
    cap: Decimal
    applied_rate: Decimal
    """min(rate, cap): what servicing may charge."""

    @property
    def capped(self) -> bool:
        return self.applied_rate < self.rate

    def as_json(self) -> dict[str, Any]:
        return {
            "contract_rate": str(self.contract_rate),
            "markup": str(self.markup),
            "rate": str(self.rate),
            "cap": str(self.cap),
            "applied_rate": str(self.applied_rate),
            "capped": self.capped,
        }


def misuse_penalty(contract_rate: Decimal, markup: Decimal, cap: Decimal) -> MisusePenalty:
    """The annual penalty rate for misused funds (PBOC 2003: contract rate +50% to +100%).

    Exact decimal arithmetic, one explicit rounding to 1e-8; the markup is checked against
    [0.50, 1.00] here too, so no caller can apply an out-of-range one.
    """
    if contract_rate < 0:
        raise ValidationError(f"must be >= 0, got {contract_rate}", field="contract_rate")
    _markup(markup, "markup")
    rate = (contract_rate * (1 + markup)).quantize(RATE_STEP, rounding=ROUND_HALF_UP)
    return MisusePenalty(contract_rate, markup, rate, cap, min(rate, cap))


__all__ = [
    "FIELDS",
    "Flag",
    "MerchantCategory",
    "MisusePenalty",
    "SurveillancePack",
    "Transaction",
    "default_pack",
    "flag_alert",
    "flags_for",
    "load_pack",
    "misuse_penalty",
    "offends",
    "parse_pack",
    "parse_transaction",
]
