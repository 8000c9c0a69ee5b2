"""Replay and backtest: re-decide stored applications and compare.

Replay re-runs each stored application through the engine it was decided with (the pinned
rule pack text, the same model and policy, and the borrower history as it was then) and must
find no difference. A backtest swaps in another rule pack and/or model and measures what would
have changed: approval rate, swap-ins and swap-outs, the expected bad rate of each group, and
how often each rule fires.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lendstack.underwriting.decision import GRANTED


@dataclass(frozen=True, slots=True)
class Difference:
    decision_id: str
    fields: tuple[str, ...]
    """Top-level keys of the decision JSON that differ (outcome, offer, reasons, ...)."""


@dataclass(frozen=True, slots=True)
class ReplayReport:
    checked: int
    differences: tuple[Difference, ...]

    @property
    def ok(self) -> bool:
        return not self.differences

    def as_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "differences": len(self.differences),
            "details": [
                {"decision_id": d.decision_id, "fields": list(d.fields)} for d in self.differences
            ],
        }


def diff_decisions(stored: Mapping[str, Any], fresh: Mapping[str, Any]) -> tuple[str, ...]:
    keys = sorted(set(stored) | set(fresh))
    return tuple(k for k in keys if stored.get(k) != fresh.get(k))


_GROUP_OF = {
    (True, True): "approved_both",
    (False, True): "swap_in",
    (True, False): "swap_out",
    (False, False): "declined_both",
}
_GROUPS = tuple(_GROUP_OF.values())


@dataclass(slots=True)
class _Group:
    count: int = 0
    pd_sum_base: float = 0.0
    pd_sum_new: float = 0.0
    scored: int = 0

    def add(self, base_pd: float | None, new_pd: float | None) -> None:
        self.count += 1
        if base_pd is not None and new_pd is not None:
            self.scored += 1
            self.pd_sum_base += base_pd
            self.pd_sum_new += new_pd

    def as_json(self) -> dict[str, Any]:
        def mean(total: float) -> float | None:
            return round(total / self.scored, 6) if self.scored else None

        return {
            "count": self.count,
            "expected_bad_rate_baseline_model": mean(self.pd_sum_base),
            "expected_bad_rate_challenger_model": mean(self.pd_sum_new),
        }


@dataclass(slots=True)
class BacktestTally:
    """Accumulates (baseline, challenger) decision pairs; O(1) memory per rule."""

    total: int = 0
    groups: dict[str, _Group] = field(default_factory=lambda: {k: _Group() for k in _GROUPS})
    fires_base: Counter[str] = field(default_factory=Counter)
    fires_new: Counter[str] = field(default_factory=Counter)

    def add(self, base: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        self.total += 1
        was, now = base["outcome"] in GRANTED, new["outcome"] in GRANTED
        group = _GROUP_OF[(was, now)]
        self.groups[group].add(_pd(base), _pd(new))
        self.fires_base.update(_fired(base))
        self.fires_new.update(_fired(new))

    def as_json(self) -> dict[str, Any]:
        g = self.groups
        base_rate = _rate(g["approved_both"].count + g["swap_out"].count, self.total)
        new_rate = _rate(g["approved_both"].count + g["swap_in"].count, self.total)
        rules = sorted(set(self.fires_base) | set(self.fires_new))
        return {
            "applications": self.total,
            "approval_rate": {
                "baseline": base_rate,
                "challenger": new_rate,
                "change": round(new_rate - base_rate, 6),
            },
            "swap_in": g["swap_in"].count,
            "swap_out": g["swap_out"].count,
            "groups": {name: grp.as_json() for name, grp in g.items()},
            "rule_fires": [
                {
                    "rule_id": r,
                    "baseline": self.fires_base[r],
                    "challenger": self.fires_new[r],
                    "change": self.fires_new[r] - self.fires_base[r],
                }
                for r in rules
            ],
        }


def _pd(decision: Mapping[str, Any]) -> float | None:
    score = decision.get("score")
    return None if score is None else float(score["pd"])


def _fired(decision: Mapping[str, Any]) -> Iterable[str]:
    """Rules that stopped or shaped this decision: failed checks and caps a reason cites.

    A cap the price ran into (APR, term) declines before the offer-level check runs, so it
    shows up as a reason naming the rule rather than as a failed rule result.
    """
    failed = {r["rule_id"] for r in decision.get("rule_results", ()) if r["verdict"] == "fail"}
    cited = {r["rule_id"] for r in decision.get("reasons", ()) if r.get("rule_id")}
    return failed | cited


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0
