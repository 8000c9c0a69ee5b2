"""The loan tape: the documented field set a buyer prices an NPL package from, and its checks.

A tape is column-oriented (field name -> sequence of values, one per loan), because packages
run to hundreds of thousands of loans and every consumer of it (CSV, Parquet, valuation) reads
whole columns. `FIELDS` is the one definition of the tape: name, type, whether a buyer needs it
(mandatory), and what it means; docs/npl-sale.md is generated from the same list in spirit and
kept in step by a test. Money is integer fen in the tape (exact; the files show yuan).

Two checks, with different meanings:
- `validate` finds values that break the tape's own invariants (a claim that is not the sum of
  its parts, a negative balance, an unknown class). Those are bugs: packaging refuses to write.
- `completeness` counts *missing* values of mandatory fields (a loan booked without a profile
  has no region; age is not captured at booking). Those are gaps the buyer must be told about,
  so they are reported, not refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lendstack.collections.npl_eligibility import CLASS_RANK


class Kind(StrEnum):
    INT = "int"
    FEN = "fen"
    TEXT = "text"
    DATE = "date"


@dataclass(frozen=True, slots=True)
class TapeField:
    name: str
    kind: Kind
    mandatory: bool
    meaning: str


FIELDS: tuple[TapeField, ...] = (
    TapeField("loan_id", Kind.INT, True, "the seller's loan id"),
    TapeField("product_id", Kind.TEXT, True, "product the loan was booked under"),
    TapeField("category", Kind.TEXT, True, "pilot category: consumer_credit, card_overdraft, "
              "personal_business_credit"),
    TapeField("status", Kind.TEXT, True, "active (on book, 次级 or worse) or charged_off"),
    TapeField("principal", Kind.FEN, True, "unpaid principal (for a charged-off loan: at "
              "charge-off, less recoveries applied last to principal)"),
    TapeField("interest", Kind.FEN, True, "unpaid interest (charged-off: the rest of the claim "
              "that is not principal or fee, penalty included)"),
    TapeField("fee", Kind.FEN, True, "unpaid fees"),
    TapeField("penalty", Kind.FEN, True, "unpaid penalty interest (0 for charged-off loans, "
              "whose penalty is inside interest)"),
    TapeField("claim", Kind.FEN, True, "principal + interest + fee + penalty: the debt sold"),
    TapeField("recovered", Kind.FEN, False, "cash recovered since charge-off"),
    TapeField("dpd", Kind.INT, True, "days past due on the package date"),
    TapeField("risk_class", Kind.TEXT, True, "five-category class (次级/可疑/损失)"),
    TapeField("default_date", Kind.DATE, True, "first day at 90+ DPD (the NPL threshold)"),
    TapeField("months_since_default", Kind.INT, True, "whole months from default_date"),
    TapeField("charge_off_date", Kind.DATE, False, "date charged off, if it was"),
    TapeField("disbursement_date", Kind.DATE, True, "date the loan was disbursed"),
    TapeField("days_since_last_payment", Kind.INT, True, "days since the last posted payment "
              "(books without payment rows: since the due date of the last installment paid "
              "on); missing if the borrower never paid"),
    TapeField("payments", Kind.INT, True, "posted payments over the loan's life (books "
              "without payment rows: installments with money paid on them)"),
    TapeField("contact_attempts", Kind.INT, False, "collection contact attempts logged "
              "(missing when no collections contact log exists)"),
    TapeField("region", Kind.TEXT, True, "borrower's province"),
    TapeField("age_band", Kind.TEXT, True, "borrower's age band (18-24, 25-34, ... 55+)"),
    TapeField("funder_shares", Kind.TEXT, True, "co-lending shares in force, "
              "'funder:share;…' (platform alone if not co-funded)"),
)  # fmt: skip

FIELD_NAMES = tuple(f.name for f in FIELDS)
MANDATORY = tuple(f.name for f in FIELDS if f.mandatory)

AGE_BANDS = ((18, 24), (25, 34), (35, 44), (45, 54))


def age_band(age: int | None) -> str | None:
    """The tape's age band; None (missing) when the age is unknown or under 18."""
    if age is None or age < 18:
        return None
    for low, high in AGE_BANDS:
        if low <= age <= high:
            return f"{low}-{high}"
    return "55+"


@dataclass(frozen=True, slots=True)
class Completeness:
    """Missing values of each mandatory field; `complete` when none is missing."""

    rows: int
    missing: tuple[tuple[str, int], ...]

    @property
    def complete(self) -> bool:
        return not self.missing

    def as_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "complete": self.complete,
            "missing": [
                {"field": name, "missing": n, "share": round(n / self.rows, 4) if self.rows else 0}
                for name, n in self.missing
            ],
        }


def missing_count(values: Any) -> int:
    """Missing values in a column: None or "" in text, NaT in dates; numbers are never missing
    unless the column is text-typed (a nullable integer column holds None)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        return int(np.count_nonzero(np.isnat(arr)))
    if arr.dtype.kind in "OUS":
        as_obj = arr.astype(object)
        empty = (as_obj == None) | (as_obj == "")  # noqa: E711 - elementwise, not identity
        return int(np.count_nonzero(empty))
    if arr.dtype.kind == "f":
        return int(np.count_nonzero(np.isnan(arr)))
    return 0


def completeness(columns: Mapping[str, Any]) -> Completeness:
    rows = len(columns["loan_id"]) if "loan_id" in columns else 0
    missing = []
    for name in MANDATORY:
        values = columns.get(name)
        n = rows if values is None else missing_count(values)
        if n:
            missing.append((name, n))
    return Completeness(rows, tuple(missing))


def validate(columns: Mapping[str, Any]) -> list[str]:
    """Broken invariants of a tape (empty when it is sound): unknown or absent columns, ragged
    columns, negative money, claims that are not the sum of their parts, unknown classes."""
    problems = [f"unknown field {name!r}" for name in columns if name not in FIELD_NAMES]
    problems += [f"field {name!r} is absent" for name in FIELD_NAMES if name not in columns]
    if problems:
        return problems
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        return [f"columns have different lengths {sorted(lengths)}"]
    ids = np.asarray(columns["loan_id"])
    money = {f.name: np.asarray(columns[f.name], dtype=np.int64) for f in FIELDS
             if f.kind is Kind.FEN}  # fmt: skip
    for name, values in money.items():
        problems += _at(ids, values < 0, f"{name} is negative")
    parts = money["principal"] + money["interest"] + money["fee"] + money["penalty"]
    problems += _at(ids, parts != money["claim"], "claim is not its parts' sum")
    classes = np.asarray(columns["risk_class"], dtype=object)
    problems += _at(ids, ~np.isin(classes, list(CLASS_RANK)), "unknown class")
    problems += _at(ids, np.asarray(columns["dpd"], dtype=np.int64) < 0, "negative DPD")
    return problems


def _at(ids: NDArray[Any], mask: NDArray[np.bool_], what: str) -> list[str]:
    hits = ids[mask]
    if not len(hits):
        return []
    more = f" (and {len(hits) - 3} more)" if len(hits) > 3 else ""
    return [f"loan {', '.join(str(i) for i in hits[:3])}: {what}{more}"]


def claims(
    active: NDArray[np.bool_],
    balances: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]],
    charged: NDArray[np.int64],
    recovered: NDArray[np.int64],
    unpaid: tuple[NDArray[np.int64], NDArray[np.int64]],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """(principal, interest, fee, penalty) still owed per loan, in fen.

    On book: its balances. Charged off: the balances were zeroed and the total kept in
    `charged`; principal is the schedule's unpaid principal, fee its billed unpaid fees
    (each capped by what is left of the charge-off), interest the rest (penalty inside it),
    and recoveries are applied to fee, then interest, then principal last, so the tape never
    shows more principal than is still owed.
    """
    principal = np.minimum(unpaid[0], charged)
    fee = np.minimum(unpaid[1], charged - principal)
    interest = charged - principal - fee
    to_fee = np.minimum(recovered, fee)
    to_interest = np.minimum(recovered - to_fee, interest)
    to_principal = np.minimum(recovered - to_fee - to_interest, principal)
    off = (principal - to_principal, interest - to_interest, fee - to_fee, np.zeros_like(fee))
    return tuple(np.where(active, b, o) for b, o in zip(balances, off, strict=True))  # type: ignore[return-value]


__all__ = [
    "FIELDS",
    "FIELD_NAMES",
    "MANDATORY",
    "Completeness",
    "Kind",
    "TapeField",
    "age_band",
    "claims",
    "completeness",
    "missing_count",
    "validate",
]
