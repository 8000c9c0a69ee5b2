"""The day's compliant contact plan: what the strategies want, filtered by the rule pack.

For each strategy action and the loans its strategy serves in the queue, the action's own
facts (channel, party, time of day, wording) are checked once by `contact.static_refusals`;
the log-dependent rules run as array operations over all those loans at once:

- calls: attempts already unanswered today to the same number plus the planned ones may not
  exceed the pack's maximum; the excess is refused (`MAX_ATTEMPTS`) with its count;
- emergency contacts: refused (`DEBTOR_REACHABLE`) unless the log shows the debtor
  unreachable. An action marked `when = "debtor_unreachable"` is the strategy's own
  condition: it is simply not wanted for reachable debtors, so it yields no refusal.

Nothing is dropped silently: every wanted attempt is either in `planned` or in `refused`
with a reason code and the rule id that bound it. The plan is in queue order (best expected
recovery first). The plan never consents on the debtor's behalf: consent is logged only when
a contact is recorded, so a strategy that asks for quiet hours is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from lendstack.collections.contact import (
    Party,
    Reason,
    Refusal,
    RulePack,
    static_refusals,
)
from lendstack.collections.strategy import UNREACHABLE, Action, Ints, Queue, StrategySet

Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class LogFacts:
    """What the contact log says about the plan's day, by loan (sorted unique ids)."""

    debtor_calls_loan: Ints  # loans with unanswered calls to the debtor's number today
    debtor_calls_count: Ints
    emergency_calls_loan: Ints
    emergency_calls_count: Ints
    unreachable_loan: Ints  # debtors the log shows unreachable

    @staticmethod
    def empty() -> LogFacts:
        none = np.zeros(0, dtype=np.int64)
        return LogFacts(none, none, none, none, none)


@dataclass(frozen=True, slots=True)
class Plan:
    planned: pl.DataFrame  # rank, loan_id, strategy, channel, party, at, attempts
    refused: pl.DataFrame  # the same columns plus reason, rule_id, detail

    def summary(self) -> dict[str, object]:
        by_channel = self.planned.group_by("channel").agg(pl.col("attempts").sum()).sort("channel")
        by_reason = self.refused.group_by("reason").agg(pl.col("attempts").sum()).sort("reason")
        return {
            "planned_contacts": self.planned.height,
            "planned_attempts": int(self.planned["attempts"].sum() or 0),
            "planned_attempts_by_channel": dict(by_channel.iter_rows()),
            "refused_contacts": self.refused.height,
            "refused_attempts_by_reason": dict(by_reason.iter_rows()),
        }


def lookup(ids: Ints, keys: Ints, values: Ints) -> Ints:
    """values[keys == id] for each id, 0 where the id is not a key (`keys` sorted, unique)."""
    if keys.shape[0] == 0:
        return np.zeros(ids.shape[0], dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, ids), keys.shape[0] - 1)
    found: Ints = np.where(keys[at] == ids, values[at], 0)
    return found


def plan(queue: Queue, strategies: StrategySet, pack: RulePack, facts: LogFacts) -> Plan:
    planned: list[pl.DataFrame] = []
    refused: list[pl.DataFrame] = []
    rank = np.arange(1, len(queue) + 1, dtype=np.int64)
    unreachable = np.isin(queue.loan_id, facts.unreachable_loan)
    for index, strategy in enumerate(strategies.strategies):
        mine = queue.strategy == index
        for order, action in enumerate(strategy.actions):
            wanted = mine & unreachable if action.when == UNREACHABLE else mine
            block = _Block(strategy.id, order, action, rank[wanted], queue.loan_id[wanted])
            ok, no = _check_action(block, pack, facts, unreachable[wanted])
            planned += ok
            refused += no
    return Plan(_frame(planned, False), _frame(refused, True))


@dataclass(frozen=True, slots=True)
class _Block:
    strategy: str
    order: int
    action: Action
    rank: Ints
    loan_id: Ints

    def frame(self, mask: Mask | None, attempts: Ints, refusal: Refusal | None) -> pl.DataFrame:
        rank = self.rank if mask is None else self.rank[mask]
        loans = self.loan_id if mask is None else self.loan_id[mask]
        a = self.action
        columns: dict[str, object] = {
            "rank": rank,
            "loan_id": loans,
            "action": np.full(rank.shape[0], self.order, dtype=np.int64),
            "attempts": attempts,
        }
        frame = pl.DataFrame(columns).with_columns(
            strategy=pl.lit(self.strategy),
            channel=pl.lit(a.channel.value),
            party=pl.lit(a.party.value),
            at=pl.lit(a.at.strftime("%H:%M")),
        )
        if refusal is None:
            return frame
        return frame.with_columns(
            reason=pl.lit(refusal.reason.value),
            rule_id=pl.lit(refusal.rule_id),
            detail=pl.lit(refusal.detail),
        )


def _check_action(
    block: _Block, pack: RulePack, facts: LogFacts, unreachable: Mask
) -> tuple[list[pl.DataFrame], list[pl.DataFrame]]:
    """(planned frames, refused frames) for one action over its loans."""
    a = block.action
    n = block.loan_id.shape[0]
    full = np.full(n, a.attempts, dtype=np.int64)
    static = static_refusals(a.channel, a.party, a.at, False, a.message, pack)
    if static:
        # one row per wanted contact, naming every rule it breaks, so no attempt counts twice
        joined = Refusal(
            static[0].reason,
            ",".join(r.rule_id for r in static),
            "; ".join(r.detail for r in static),
        )
        reasons = ",".join(r.reason.value for r in static)
        return [], [block.frame(None, full, joined).with_columns(reason=pl.lit(reasons))]
    refused: list[pl.DataFrame] = []
    open_ = np.ones(n, dtype=bool)
    if a.party is Party.EMERGENCY:
        reachable = ~unreachable
        refused += _refuse(block, reachable, full, pack, Reason.DEBTOR_REACHABLE)
        open_ &= unreachable
    allowed = _allowed_attempts(block, pack, facts, full)
    excess = full - allowed
    refused += _refuse(block, open_ & (excess > 0), excess, pack, Reason.MAX_ATTEMPTS)
    go = open_ & (allowed > 0)
    return [block.frame(go, allowed[go], None)], refused


def _allowed_attempts(block: _Block, pack: RulePack, facts: LogFacts, full: Ints) -> Ints:
    if block.action.channel not in pack.call_channels:
        return full
    if block.action.party is Party.EMERGENCY:
        keys, counts = facts.emergency_calls_loan, facts.emergency_calls_count
    else:
        keys, counts = facts.debtor_calls_loan, facts.debtor_calls_count
    before = lookup(block.loan_id, keys, counts)
    allowed: Ints = np.clip(pack.max_unanswered - before, 0, full)
    return allowed


def _refuse(
    block: _Block,
    mask: Mask,
    attempts: Ints,
    pack: RulePack,
    reason: Reason,
) -> list[pl.DataFrame]:
    if not mask.any():
        return []
    return [block.frame(mask, attempts[mask], Refusal(reason, pack.rule(reason), _DETAIL[reason]))]


_DETAIL = {
    Reason.MAX_ATTEMPTS: "would exceed the unanswered calls allowed to this number today",
    Reason.DEBTOR_REACHABLE: "emergency contacts only when the debtor cannot be reached",
}


_COLUMNS = ["rank", "loan_id", "strategy", "action", "channel", "party", "at", "attempts"]
_REFUSAL_COLUMNS = [*_COLUMNS, "reason", "rule_id", "detail"]


def _frame(parts: list[pl.DataFrame], refusals: bool) -> pl.DataFrame:
    columns = _REFUSAL_COLUMNS if refusals else _COLUMNS
    if not parts:
        schema = {
            c: pl.Int64 if c in ("rank", "loan_id", "action", "attempts") else pl.Utf8
            for c in columns
        }
        return pl.DataFrame(schema=schema)
    return pl.concat([p.select(columns) for p in parts]).sort("rank", "action")
