"""The desk's running exposures equal a replay of its reservations, whatever the sequence.

`FundingDesk` keeps, per cached business date, the fetched exposures plus the reservations
made since, updated as each plan is reserved (replaying every reservation for every plan
made a month's decisions quadratic). This checks the running figure against the definition
(the fetch plus every later reservation dated on or before the date, for the funders known
now) after random plans, releases, refreshes and changes of the partner panel.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from lendstack.funding import Exposure, Funder, LoanRequest, Policy
from lendstack.underwriting.funding_desk import FundingDesk, _plus
from underwriting.test_decision_funding import PANEL, Clock, bank

DAYS = tuple(date(2026, 11, 2) + timedelta(days=n) for n in range(3))
BOOK = {"bank-a": Exposure(balance=Decimal("1000.00")), "platform": Exposure()}

plan_op = st.tuples(st.just("plan"), st.sampled_from(DAYS), st.integers(1_000, 40_000).map(Decimal))
ops = st.lists(
    st.one_of(
        plan_op,
        st.tuples(st.just("release"), st.integers(0, 30)),
        st.tuples(st.just("tick")),
        st.tuples(st.just("panel")),
    ),
    max_size=40,
)


def _planned(n: int, day: date, amount: Decimal) -> LoanRequest:
    """Step `n`'s loan request, as the stateful steps plan it."""
    return LoanRequest(
        f"d{n}", amount, 0.02, Decimal("0.18"), "Guangdong", "p", 12, "consumption", day
    )


def same(running: dict[str, Exposure], replay: dict[str, Exposure]) -> bool:
    """Equal as the allocator reads them: a funder with no entry is one at zero."""
    ids = set(running) | set(replay)
    return all(running.get(i, Exposure()) == replay.get(i, Exposure()) for i in ids)


def replayed(desk: FundingDesk, day: date) -> dict[str, Exposure]:
    """The definition: the date's fetch plus every reservation made since, in order."""
    snap = desk._snapshots[day]
    exposures = dict(snap.exposures)
    known = {f.id for f in desk._funders}
    for r in desk._reservations:
        if r.seq > snap.seq and r.day <= day:
            for funder_id, amount in r.parts:
                if funder_id in known:
                    before = exposures.get(funder_id, Exposure())
                    exposures[funder_id] = _plus(before, amount, r.day == day)
    return exposures


@settings(max_examples=150, deadline=None)
@given(ops)
def test_running_exposures_equal_the_replay(steps: list[tuple[object, ...]]) -> None:
    panels = [PANEL, (*PANEL, bank("bank-c", "0.030")), PANEL[:2]]
    state = {"panel": 0}
    clock = Clock()
    desk = FundingDesk(
        lambda: panels[state["panel"]],
        lambda _day: BOOK,
        lambda _day: Policy(),
        clock=clock,
        refresh_seconds=10.0,
    )
    for n, step in enumerate(steps):
        if step[0] == "plan":
            _, day, amount = step
            request = _planned(n, day, amount)  # type: ignore[arg-type]
            desk.plan(request)
        elif step[0] == "release":
            desk.release(f"d{step[1]}")
        elif step[0] == "tick":
            clock.now += 11.0
        else:
            state["panel"] = (state["panel"] + 1) % len(panels)
            clock.now += 11.0
        for day in desk._snapshots:
            assert same(desk._snapshots[day].current, replayed(desk, day))
    fresh = [day for day, snap in desk._snapshots.items() if clock.now - snap.fetched < 10.0]
    for day in fresh:  # what a plan is given: the running figure, not re-fetched
        assert same(desk._current(day), replayed(desk, day))


def test_a_plan_counts_on_its_date_and_after_and_in_today_only_on_its_own_date() -> None:
    desk = FundingDesk(lambda: PANEL, lambda _day: BOOK, lambda _day: Policy(), clock=Clock(),
                       refresh_seconds=10.0)  # fmt: skip
    first = LoanRequest("a", Decimal("10000"), 0.02, Decimal("0.18"), "Guangdong", "p", 12,
                        "consumption", DAYS[1])  # fmt: skip
    for day in DAYS:  # each date fetched before the plan: the plan is then in none of them
        desk._current(day)
    plan = desk.plan(first)
    assert plan.funded
    same_day = desk._current(DAYS[1])
    later = desk._current(DAYS[2])
    earlier = desk._current(DAYS[0])
    for share in plan.shares:
        base = BOOK.get(share.funder_id, Exposure())
        assert same_day[share.funder_id].today == base.today + share.amount
        assert later[share.funder_id].today == base.today  # allocated on another date
        assert later[share.funder_id].balance == base.balance + share.amount
        assert earlier.get(share.funder_id, Exposure()) == base
    desk.release("a")
    assert (
        desk._current(DAYS[1])
        == desk._current(DAYS[0])
        == {k: v for k, v in BOOK.items() if k in {f.id for f in PANEL}}
    )


BOOKS = {
    day: {"bank-a": Exposure(balance=Decimal(1000 * (n + 1)), today=Decimal(n)),
          "platform": Exposure()}
    for n, day in enumerate(DAYS)
}  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            plan_op,
            st.tuples(st.just("prefetch"), st.sets(st.sampled_from(DAYS))),
            st.tuples(st.just("tick")),
        ),
        max_size=40,
    )
)
def test_reading_dates_ahead_changes_no_plan(steps: list[tuple[object, ...]]) -> None:
    """A desk that reads dates ahead (`prefetch`) plans exactly as one reading each date on
    its first plan, reservations made in between included, as long as the book is unchanged."""
    reads: list[tuple[date, ...]] = []

    def many(days: Sequence[date]) -> dict[date, dict[str, Exposure]]:
        reads.append(tuple(days))
        return {d: BOOKS[d] for d in days}

    clocks = Clock(), Clock()
    plain = FundingDesk(lambda: PANEL, BOOKS.__getitem__, lambda _day: Policy(),
                        clock=clocks[0], refresh_seconds=10.0)  # fmt: skip
    ahead = FundingDesk(lambda: PANEL, BOOKS.__getitem__, lambda _day: Policy(),
                        clock=clocks[1], refresh_seconds=10.0, exposures_many=many)  # fmt: skip
    for n, step in enumerate(steps):
        if step[0] == "plan":
            _, day, amount = step
            request = _planned(n, day, amount)  # type: ignore[arg-type]
            assert plain.plan(request) == ahead.plan(request)
        elif step[0] == "prefetch":
            ahead.prefetch(step[1])  # type: ignore[arg-type]
        else:
            for clock in clocks:
                clock.now += 6.0
    for day in DAYS:  # (reading a date snapshots it: only once the plans are made)
        assert plain._current(day) == ahead._current(day)


def test_partners_are_read_once_per_refresh_period_and_changes_seen_after_it() -> None:
    panels = [PANEL, (*PANEL, bank("bank-c", "0.001"))]
    state = {"panel": 0, "reads": 0}

    def funders() -> tuple[Funder, ...]:
        state["reads"] += 1
        return tuple(panels[state["panel"]])

    clock = Clock()
    desk = FundingDesk(funders, lambda _day: BOOK, lambda _day: Policy(), clock=clock,
                       refresh_seconds=10.0)  # fmt: skip
    for n in range(20):  # a new business date every plan, all inside one refresh period
        day = DAYS[0] + timedelta(days=n)
        request = LoanRequest(f"r{n}", Decimal(5000), 0.02, Decimal("0.18"), "Guangdong", "p",
                              12, "consumption", day)  # fmt: skip
        desk.plan(request)
    assert state["reads"] == 1
    state["panel"] = 1
    clock.now += 10.0
    desk._current(DAYS[0] + timedelta(days=40))
    assert state["reads"] == 2
    assert "bank-c" in {f.id for f in desk._funders}
