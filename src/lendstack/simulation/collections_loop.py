"""Collections in the loop: the month-end hook that works the delinquent book.

At each month-end, on the open business date after it (the first of the next month), the hook
does what a collections team does with the real capability (`lendstack.collections`,
`storage.collections`, docs/collections.md):

1. reads the book and ranks the delinquent loans by expected recovery (`read_book`, `rank`);
2. builds the day's compliant contact plan from the shipped strategies and the collection
   rule pack, with the log's facts (`log_facts`, `plan`): refusals are counted by reason;
3. makes the planned attempts: each outcome is drawn from the seed (a call is answered with
   `collections.answer_rate`, an SMS / push delivered with `delivery_rate`; an agent stops
   calling once answered), every attempt is checked by the rule engine (`check`) against the
   log so far and appended to the contact log (`collection_contacts`) as `record_contact`
   does, in one batch;
4. a debtor who answers promises to pay what is overdue with `promise_rate`: the promises
   are recorded with `record_promises` (due `promise_days` later, all in one transaction),
   and the close of business marks each kept or broken from the payments, as in production;
5. tells behaviour who was reached (`BorrowerRisk.contacts`): their cure draws in the next 31
   days are lifted, and a promiser pays on the promise's date with `promise_keep`
   (`behaviour.cures`).

Simplification (docs/simulation.md): production plans every day; here one plan per month-end
works the whole delinquent book, because the month loop's extension point is the month-end
and a daily plan would multiply the cost by 30. Monthly it costs a few set-based queries and
one batch insert, so it scales to the 100k-borrower runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Engine, insert, text

from lendstack.collections import (
    Attempt,
    Channel,
    History,
    Outcome,
    Party,
    RulePack,
    StrategySet,
    check,
    default_pack,
    default_strategies,
    local_time,
    plan,
    rank,
)
from lendstack.core.money import from_fen
from lendstack.simulation.behaviour import BorrowerRisk, Contact, uniform
from lendstack.simulation.metrics import MonthMetrics
from lendstack.simulation.repayments import OWED_SQL, Repayments
from lendstack.simulation.scenario import Collections
from lendstack.storage import collections as store
from lendstack.storage.mapping import to_day
from lendstack.storage.schema import collection_contacts

REACHED = frozenset({Outcome.ANSWERED, Outcome.DELIVERED})


@dataclass
class CollectionsLoop:
    """`MonthEndHook`: queue, compliant plan, contacts and promises for the delinquent book."""

    repay: Repayments
    seed: int
    strategies: StrategySet = field(default_factory=default_strategies)
    pack: RulePack = field(default_factory=default_pack)
    _cured_before: int = 0

    @property
    def risk(self) -> BorrowerRisk:
        return self.repay.risk

    @property
    def knobs(self) -> Collections:
        return self.repay.scenario.collections

    def __call__(self, engine: Engine, month_end: date, metrics: MonthMetrics) -> None:
        cured = self.repay.tally["cure"]
        metrics.cured, self._cured_before = cured - self._cured_before, cured
        detail: Counter[str] = Counter(_resolved(engine, month_end))
        self.risk.contacts.clear()
        if self.knobs.enabled:
            detail.update(self._work(engine, month_end + timedelta(days=1)))
        metrics.contacts = detail.pop("contacts", 0)
        metrics.promises = detail.pop("promises", 0)
        metrics.collections = dict(sorted(detail.items()))

    def _work(self, engine: Engine, day: date) -> Counter[str]:
        with engine.connect() as conn:
            store.check_open_date(conn, day)
            book = store.read_book(conn, day, self.strategies.days_before_due)
            facts = store.log_facts(conn, day, self.pack)
        queue = rank(book, self.strategies).delinquent()
        result = plan(queue, self.strategies, self.pack, facts)
        counts: Counter[str] = Counter(queue=len(queue), planned=result.planned.height)
        refused = result.refused.group_by("reason").agg(pl.col("attempts").sum())
        for reason, attempts in refused.iter_rows():
            counts[f"refused_{reason}"] += int(attempts)
        unreachable = set(facts.unreachable_loan.tolist())
        planned = result.planned.iter_rows(named=True)
        rows, answered, reached = self._attempts(planned, day, unreachable)
        if rows:
            with engine.begin() as conn:
                conn.execute(insert(collection_contacts), rows)
        counts["contacts"] = sum(1 for r in rows if r["allowed"])
        counts["contacts_refused"] = sum(1 for r in rows if not r["allowed"])
        counts["reached"] = len(reached)
        promised = self._promises(engine, day, answered)
        counts["promises"] = len(promised)
        epoch = to_day(day)
        due = epoch + self.knobs.promise_days
        for loan_id in sorted(reached):
            self.risk.contacts[loan_id] = Contact(epoch, due if loan_id in promised else None)
        return counts

    def _attempts(
        self, planned: Iterable[dict[str, Any]], day: date, unreachable: set[int]
    ) -> tuple[list[dict[str, object]], list[int], set[int]]:
        """Each planned attempt made, its outcome drawn; checked and turned into a log row.

        Returns the log rows, the loans whose debtor answered a call (in plan order) and the
        loans whose debtor was reached at all."""
        messages = {
            (s.id, i): a.message
            for s in self.strategies.strategies
            for i, a in enumerate(s.actions)
        }
        rows: list[dict[str, object]] = []
        answered: dict[int, None] = {}
        reached: set[int] = set()
        unanswered: Counter[tuple[int, str]] = Counter()
        for p in planned:
            loan_id, channel, party = int(p["loan_id"]), Channel(p["channel"]), Party(p["party"])
            hour, minute = (int(x) for x in str(p["at"]).split(":"))
            message = messages[(str(p["strategy"]), int(p["action"]))]
            start = datetime(day.year, day.month, day.day, hour, minute)
            for k in range(int(p["attempts"])):
                if channel in self.pack.call_channels and loan_id in answered:
                    break  # the agent got through: no further calls today
                at = start + timedelta(minutes=5 * k)
                attempt = Attempt(loan_id, channel, party, at, party.value, message=message)
                history = History(
                    unanswered_calls_today=unanswered[(loan_id, party.value)],
                    debtor_number_unreachable=loan_id in unreachable,
                )
                verdict = check(attempt, history, self.pack)
                outcome = self._outcome(loan_id, day, channel, party, k)
                if verdict.allowed:
                    calls = channel in self.pack.call_channels
                    if calls and outcome in self.pack.unanswered_outcomes:
                        unanswered[(loan_id, party.value)] += 1
                    if party is Party.DEBTOR and outcome in REACHED:
                        reached.add(loan_id)
                        if outcome is Outcome.ANSWERED:
                            answered[loan_id] = None
                # The simulated clock stands for `recorded_at`.
                instant = local_time(attempt.at, self.pack).astimezone(UTC)
                rows.append(store.contact_row(attempt, outcome, verdict, self.pack, instant))
        return rows, list(answered), reached

    def _outcome(self, loan_id: int, day: date, channel: Channel, party: Party, k: int) -> Outcome:
        u = uniform(self.seed, loan_id, day.toordinal(), channel.value, party.value, k, "contact")
        if channel in self.pack.call_channels:
            return Outcome.ANSWERED if u < self.knobs.answer_rate else Outcome.NO_ANSWER
        return Outcome.DELIVERED if u < self.knobs.delivery_rate else Outcome.FAILED

    def _promises(self, engine: Engine, day: date, answered: list[int]) -> set[int]:
        """Debtors who answered and promise to pay what is overdue (recorded for real)."""
        keen = [
            loan_id
            for loan_id in answered
            if uniform(self.seed, loan_id, day.toordinal(), "promise-made")
            < self.knobs.promise_rate
        ]
        if not keen:
            return set()
        with engine.connect() as conn:
            rows = conn.execute(text(OWED_SQL), {"d": to_day(day)}).all()
        owed = {int(i): int(fen) for i, _, fen in rows}
        due = day + timedelta(days=self.knobs.promise_days)
        wanted = [
            (loan_id, amount, due)
            for loan_id in sorted(keen)
            if (amount := from_fen(owed.get(loan_id, 0))) > 0
        ]
        # One transaction for all: a refused promise (an open one already, nothing owed) is
        # left out, as `record_promise` refusing it alone would leave it.
        results = store.record_promises(engine, wanted, day)
        return {r.loan_id for r in results if isinstance(r, store.Promise)}


def _resolved(engine: Engine, month_end: date) -> dict[str, int]:
    """Promises the close marked kept or broken during the month ending `month_end`."""
    first = month_end.replace(day=1)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT status, COUNT(*) FROM promises_to_pay WHERE resolved_on >= :a"
                " AND resolved_on <= :b GROUP BY status ORDER BY status"
            ),
            {"a": first, "b": month_end},
        ).all()
    return {f"promises_{status}": int(n) for status, n in rows}
