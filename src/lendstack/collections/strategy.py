"""Collection strategies (data files) and the queue: delinquent loans ranked by expected recovery.

    expected recovery = balance × probability(bucket, balance band) − cost of the day's actions

One strategy serves each stage: a pre-due reminder for current loans whose installment falls
due soon, and one per group of M-buckets. The probability table and every cost come from the
strategy file (strategies/default.toml says where each figure comes from; they are stated
assumptions until a lender puts its own cure rates in). The ranking is vectorised over numpy
arrays and stays in integer fen: probabilities are basis points and every product is rounded
half up, so a million loans rank in well under a second and no float touches money.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from lendstack.collections.contact import Channel, Party
from lendstack.core.datafiles import load_toml, validated
from lendstack.core.errors import NotFound, ValidationError
from lendstack.core.money import from_fen, to_fen
from lendstack.servicing.domain.delinquency import DEFAULT_BUCKETS

Ints = npt.NDArray[np.int64]
BP = 10_000
PRE_DUE = "pre_due"
ROWS = (PRE_DUE, *DEFAULT_BUCKETS.labels[1:])
"""Probability-table rows: row 0 is pre-due (current loans), row i is bucket i (M1 … M7+)."""
UNREACHABLE = "debtor_unreachable"


@dataclass(frozen=True, slots=True)
class Action:
    channel: Channel
    party: Party
    at: time
    attempts: int
    cost_fen: int  # per attempt
    message: str
    when: str | None  # None, or "debtor_unreachable": planned only then

    @property
    def fixed_cost_fen(self) -> int:
        """Cost counted in the ranking; a conditional action is not planned for most loans."""
        return 0 if self.when else self.cost_fen * self.attempts


@dataclass(frozen=True, slots=True)
class Strategy:
    id: str
    rows: tuple[int, ...]  # probability-table rows it serves (0 = pre-due)
    days_before_due: int
    commission_bp: int
    actions: tuple[Action, ...]

    @property
    def fixed_cost_fen(self) -> int:
        return sum(a.fixed_cost_fen for a in self.actions)


@dataclass(frozen=True, slots=True)
class StrategySet:
    id: str
    version: str
    bands_fen: tuple[int, ...]  # upper bounds (exclusive) of all but the last balance band
    probability_bp: tuple[tuple[int, ...], ...]  # [row][band]
    strategies: tuple[Strategy, ...]

    @property
    def label(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def days_before_due(self) -> int:
        return max((s.days_before_due for s in self.strategies), default=0)

    def strategy_of_row(self) -> Ints:
        out = np.full(len(ROWS), -1, dtype=np.int64)
        for index, strategy in enumerate(self.strategies):
            out[list(strategy.rows)] = index
        return out


@dataclass(frozen=True, slots=True)
class Book:
    """The loans a queue may hold, as parallel arrays (one row per loan, any order)."""

    loan_id: Ints
    dpd: Ints
    bucket: Ints
    balance_fen: Ints
    due_in_days: Ints  # days from the queue date to the next due date; -1 when none


@dataclass(frozen=True, slots=True)
class Queue:
    """Ranked loans, best expected recovery first (ties: lower loan id first)."""

    loan_id: Ints
    dpd: Ints
    row: Ints  # probability-table row (0 = pre-due, else the bucket)
    strategy: Ints  # index into StrategySet.strategies
    balance_fen: Ints
    probability_bp: Ints
    cost_fen: Ints
    expected_fen: Ints

    def __len__(self) -> int:
        return int(self.loan_id.shape[0])

    def delinquent(self) -> Queue:
        """Only the overdue loans (pre-due reminders dropped), still in rank order."""
        keep = self.row > 0
        return Queue(*(getattr(self, name)[keep] for name in self.__slots__))


def _half_up(amount: Ints, bp: Ints | int) -> Ints:
    """amount × bp / 10,000, rounded half up, for non-negative integers."""
    result: Ints = (2 * amount * bp + BP) // (2 * BP)
    return result


def rank(book: Book, strategies: StrategySet) -> Queue:
    """Every loan a strategy serves today, ranked by expected recovery (module doc)."""
    pre_due = (book.bucket == 0) & (book.due_in_days >= 0)
    pre_due &= book.due_in_days <= strategies.days_before_due
    row = np.where(book.bucket > 0, np.minimum(book.bucket, len(ROWS) - 1), 0)
    strategy = strategies.strategy_of_row()[row]
    keep = (strategy >= 0) & ((book.bucket > 0) | pre_due)
    row, strategy = row[keep], strategy[keep]
    balance = book.balance_fen[keep]
    band = np.searchsorted(np.asarray(strategies.bands_fen, dtype=np.int64), balance, "right")
    probability = np.asarray(strategies.probability_bp, dtype=np.int64)[row, band]
    gross = _half_up(balance, probability)
    commission = np.asarray([s.commission_bp for s in strategies.strategies], dtype=np.int64)
    fixed = np.asarray([s.fixed_cost_fen for s in strategies.strategies], dtype=np.int64)
    cost = fixed[strategy] + _half_up(gross, commission[strategy])
    expected = gross - cost
    ids = book.loan_id[keep]
    order = np.lexsort((ids, -expected))
    return Queue(
        ids[order],
        book.dpd[keep][order],
        row[order],
        strategy[order],
        balance[order],
        probability[order],
        cost[order],
        expected[order],
    )


def queue_rows(queue: Queue, strategies: StrategySet, limit: int | None) -> list[dict[str, Any]]:
    """The first `limit` entries (all when None) as JSON-ready rows, money as Decimal."""
    count = len(queue) if limit is None else min(limit, len(queue))
    names = [s.id for s in strategies.strategies]
    return [
        {
            "rank": i + 1,
            "loan_id": int(queue.loan_id[i]),
            "bucket": ROWS[int(queue.row[i])] if queue.row[i] else "M0",
            "stage": ROWS[int(queue.row[i])],
            "dpd": int(queue.dpd[i]),
            "strategy": names[int(queue.strategy[i])],
            "balance": from_fen(int(queue.balance_fen[i])),
            "probability": Decimal(int(queue.probability_bp[i])) / BP,
            "cost": from_fen(int(queue.cost_fen[i])),
            "expected_recovery": from_fen(int(queue.expected_fen[i])),
        }
        for i in range(count)
    ]


# --- the strategy file -------------------------------------------------------------------


class _ActionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Channel
    party: Party
    at: time
    attempts: int = Field(default=1, ge=1, le=24)
    cost: Decimal = Field(ge=0)
    message: str
    when: str | None = None


class _StrategyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    stage: str | None = None
    buckets: list[str] = Field(default_factory=list)
    days_before_due: int = Field(default=0, ge=0, le=31)
    commission_rate: Decimal = Field(default=Decimal(0), ge=0, le=1)
    action: list[_ActionFile] = Field(min_length=1)


class _SetFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    version: str
    balance_bands: list[Decimal]
    probability: dict[str, list[Decimal]]
    strategy: list[_StrategyFile] = Field(min_length=1)


def parse_strategies(text: str, source: str) -> StrategySet:
    raw = validated(_SetFile, load_toml(text, source), source)
    bands = tuple(to_fen(b) for b in raw.balance_bands)
    if list(bands) != sorted(set(bands)) or any(b <= 0 for b in bands):
        raise ValidationError(f"{source}: must be positive and rising", field="balance_bands")
    table = tuple(_probability_row(raw, name, len(bands) + 1, source) for name in ROWS)
    strategies = tuple(_strategy(s, source) for s in raw.strategy)
    _check_disjoint(strategies, source)
    return StrategySet(raw.id, raw.version, bands, table, strategies)


def _probability_row(raw: _SetFile, name: str, width: int, source: str) -> tuple[int, ...]:
    values = raw.probability.get(name)
    field = f"probability.{name}"
    if values is None or len(values) != width:
        raise ValidationError(f"{source}: needs {width} values (one per balance band)", field=field)
    if any(not 0 <= v <= 1 for v in values):
        raise ValidationError(f"{source}: probabilities must be in [0, 1]", field=field)
    return tuple(int((v * BP).to_integral_value()) for v in values)


def _strategy(raw: _StrategyFile, source: str) -> Strategy:
    if raw.stage == PRE_DUE and not raw.buckets:
        rows: tuple[int, ...] = (0,)
    elif raw.stage is None and raw.buckets:
        unknown = [b for b in raw.buckets if b not in ROWS[1:]]
        if unknown:
            raise ValidationError(f"{source}: unknown buckets {unknown}", field=f"{raw.id}.buckets")
        rows = tuple(ROWS.index(b) for b in raw.buckets)
    else:
        detail = f"{source}: give either stage = 'pre_due' or buckets"
        raise ValidationError(detail, field=f"{raw.id}.buckets")
    actions = tuple(_action(a, raw.id, source) for a in raw.action)
    commission = int((raw.commission_rate * BP).to_integral_value())
    return Strategy(raw.id, rows, raw.days_before_due, commission, actions)


def _action(raw: _ActionFile, strategy: str, source: str) -> Action:
    if raw.when not in (None, UNREACHABLE):
        raise ValidationError(f"{source}: when must be {UNREACHABLE!r}", field=f"{strategy}.when")
    cost = to_fen(raw.cost)
    return Action(raw.channel, raw.party, raw.at, raw.attempts, cost, raw.message, raw.when)


def _check_disjoint(strategies: tuple[Strategy, ...], source: str) -> None:
    seen: set[int] = set()
    for strategy in strategies:
        if seen & set(strategy.rows):
            detail = f"{source}: a bucket is served by two strategies"
            raise ValidationError(detail, field=f"{strategy.id}.buckets")
        seen |= set(strategy.rows)


def load_strategies(path: Path | str) -> StrategySet:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise NotFound(f"cannot read strategy file {path}: {exc}", field="strategies") from exc
    return parse_strategies(text, str(path))


@functools.cache
def default_strategies() -> StrategySet:
    item = resources.files("lendstack.collections") / "strategies" / "default.toml"
    return parse_strategies(item.read_text(encoding="utf-8"), "strategies/default.toml")
