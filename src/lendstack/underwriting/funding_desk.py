"""Co-lending at decision time and at booking: who funds each granted offer.

The engine stays pure and knows nothing of funders. Once it grants credit, the service asks
the desk for an online plan for the offer (`lendstack.funding.Allocator`, one loan at a time)
and applies it with the pure `apply_funding`: a funded plan rides on the decision; no feasible
plan turns the decision into a DECLINE with reason P11, "no funding capacity within partner
limits". Replay cannot recompute funding (it depended on the book at that moment), so it
re-applies the recorded plan to the fresh decision (`guarantee.with_recorded_funding`).

Exposures come from the book (`SqlFunding.exposure_map`: the last close's exposure per funder
plus the flows since, O(funders), never below the exact book). The desk still caches them per
business date for a few seconds, to keep decisions off the database, and adds its own
reservations made since the fetch: two decisions in a row see each other. Booking re-checks
the plan against freshly read exposures (`confirm`), and the plan's write re-checks the
quotas once more under a row lock per funder (`SqlFunding.record_plan`), so concurrent
bookings cannot both take the last of a quota.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from lendstack.core.errors import Conflict, NotFound
from lendstack.funding import (
    NO_CAPACITY,
    Allocator,
    Exposure,
    Funder,
    FundingPlan,
    LoanRequest,
    Policy,
    check_plan,
    require_valid_plan,
)
from lendstack.underwriting import reasons as R
from lendstack.underwriting.application import Application
from lendstack.underwriting.decision import (
    GRANTED,
    Decision,
    Offer,
    Outcome,
    Score,
    plan_from_json,
)
from lendstack.underwriting.rules import RuleKind, RulePack

REFRESH_SECONDS = 5.0
"""How long cached exposures are trusted; the desk's own reservations cover the gap."""
_KEPT_DATES = 8
"""Business dates whose exposures are cached at once (a batch may span a few dates)."""

_MINIMA = {RuleKind.COLENDING_OWN_SHARE_MIN: "platform_min_share",
           RuleKind.COLENDING_SHARE_MIN: "min_share"}  # fmt: skip
_MAXIMA = {RuleKind.COLENDING_TIER1_MAX: "tier1_ratio",
           RuleKind.COLENDING_TOTAL_LOANS_MAX: "total_loans_ratio"}  # fmt: skip


def funding_policy(pack: RulePack, on: date) -> Policy:
    """The co-lending policy a pack sets for loans made on `on`: the strictest enabled rule
    of each kind in force (highest minimum share, lowest ratio). A kind with no such rule
    keeps the conservative built-in value of `Policy()`, so a pack written before co-lending
    rules existed never relaxes them."""
    rules = [r for r in pack.funding_rules(on) if r.enabled]
    values: dict[str, Decimal] = {}
    for kind, name in _MINIMA.items():
        found = [r.params["min"] for r in rules if r.kind is kind]
        if found:
            values[name] = max(found)
    for kind, name in _MAXIMA.items():
        found = [r.params["max"] for r in rules if r.kind is kind]
        if found:
            values[name] = min(found)
    return replace(Policy(), **values)


def funding_request(app: Application, offer: Offer, score: Score, loan_id: str) -> LoanRequest:
    """What the allocator needs to know about a granted offer."""
    return LoanRequest(
        loan_id=loan_id,
        amount=offer.amount,
        pd=score.pd,
        apr=offer.apr.apr_irr,
        province=app.applicant.province,
        product=offer.product_id,
        term=offer.term_months,
        purpose=str(app.loan.purpose),
        day=app.application_date,
    )


def record_request(record: Mapping[str, Any]) -> LoanRequest:
    """The same request, read back from a stored decision record (for booking)."""
    decision, application = record["decision"], record["application"]
    offer = decision["offer"]
    return LoanRequest(
        loan_id=str(record["decision_id"]),
        amount=Decimal(offer["amount"]),
        pd=float(decision["score"]["pd"]),
        apr=Decimal(offer["apr_irr"]),
        province=application["applicant"]["province"],
        product=offer["product_id"],
        term=int(offer["term_months"]),
        purpose=application["loan"]["purpose"],
        day=date.fromisoformat(application["application_date"]),
    )


def apply_funding(decision: Decision, plan: FundingPlan) -> Decision:
    """The decision once funding was sought for its offer (pure).

    Funded: the decision carries the plan. Unfunded: it becomes a DECLINE whose first reason
    is P11; a counter-offer's P07 goes (nothing is offered any more), model reasons already
    given stay. The offer is kept in the record, as for a REFER: it is what could not be
    funded, and the plan's exclusions refer to it; no view shows the offer of a decline, and
    nothing can book it. A decision that grants nothing is returned unchanged.
    """
    if decision.outcome not in GRANTED:
        return decision
    if plan.funded:
        return replace(decision, funding=plan)
    kept = tuple(r for r in decision.reasons if r.code != R.COUNTER_OFFER_CODE)
    return replace(decision, outcome=Outcome.DECLINE, reasons=(R.NO_FUNDING, *kept), funding=plan)


def recorded_plan(record: Mapping[str, Any]) -> FundingPlan | None:
    """The funding plan a stored decision carries, or None (older records, no desk)."""
    data = record["decision"].get("funding")
    return None if data is None else plan_from_json(data, str(record["decision_id"]))


@dataclass(frozen=True, slots=True)
class _Snapshot:
    seq: int
    """Reservations numbered above this were made after the fetch and are not in it."""
    fetched: float
    exposures: dict[str, Exposure]
    current: dict[str, Exposure]
    """`exposures` plus the reservations made since, for this date: kept up to date as
    reservations are made (a month's decisions make thousands between refreshes, and
    replaying them all for every plan would cost quadratic time), rebuilt from scratch when
    one is dropped or the funders change."""


@dataclass(frozen=True, slots=True)
class _Reservation:
    seq: int
    day: date
    loan_id: str
    parts: tuple[tuple[str, Decimal], ...]


ExposureSource = Callable[[date], Mapping[str, Exposure]]
"""Each stored funder's exposure as of a business date (`SqlFunding.exposure_map`)."""
ExposuresSource = Callable[[Sequence[date]], Mapping[date, Mapping[str, Exposure]]]
"""The same for several dates in one read (`SqlFunding.exposure_maps`)."""


class FundingDesk:
    """Online co-lending plans over cached exposures, and fresh checks at booking.

    `funders` and `exposures` read the book; `policy` gives the rule pack's policy for a
    date; `clock` is monotonic seconds (injectable for tests). Funders are re-read with each
    refresh, so a partner added or updated is seen within `refresh_seconds`.
    """

    def __init__(
        self,
        funders: Callable[[], Sequence[Funder]],
        exposures: ExposureSource,
        policy: Callable[[date], Policy],
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_seconds: float = REFRESH_SECONDS,
        exposures_many: ExposuresSource | None = None,
    ) -> None:
        self._read_funders, self._read_exposures, self._policy_for = funders, exposures, policy
        self._read_many = exposures_many
        self._prefetched: dict[date, tuple[float, Mapping[str, Exposure]]] = {}
        """Dates read ahead by `prefetch`, with when: what a refresh of the date reads."""
        self.clock, self.refresh_seconds = clock, refresh_seconds
        self._funders: tuple[Funder, ...] = ()
        self._funders_read: float | None = None
        """When the stored funders were last read (clock seconds); None: never."""
        self._allocators: dict[Policy, Allocator] = {}
        self._policies: dict[date, Policy] = {}
        self._snapshots: dict[date, _Snapshot] = {}
        self._reservations: list[_Reservation] = []
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._lock = threading.Lock()

    # -- decision time -----------------------------------------------------------------------

    def plan(self, request: LoanRequest) -> FundingPlan:
        """The cheapest feasible plan now; a funded one is reserved until the next refresh."""
        with self._lock:
            exposures = self._current(request.day)
            plan = self._allocator(request.day).allocate(request, exposures)
            if plan.funded:
                self._reserve(request, plan)
            return plan

    def prefetch(self, days: Iterable[date]) -> None:
        """Read ahead the exposures of the dates a batch is about to plan on, in one read.

        Only the read moves: a date still takes its snapshot when it is first planned on,
        from what was read here (if read within `refresh_seconds`, the age a cached date may
        have), so a plan sees what it would have seen reading the book then, unless the book
        changed in between, as it may for any cached date. Without a many-date source (or
        with nothing to read) this does nothing.
        """
        if self._read_many is None:
            return
        with self._lock:
            now = self.clock()
            wanted = [d for d in sorted(set(days)) if d not in self._snapshots]
            self._prefetched = {}
            if wanted:
                read = self._read_many(wanted)
                self._prefetched = {d: (now, read[d]) for d in wanted}

    def release(self, loan_id: str) -> None:
        """Forget a reservation whose decision was never recorded."""
        with self._lock:
            self._drop(loan_id)

    # -- booking and manual plans (fresh exposures) ------------------------------------------

    def confirm(self, request: LoanRequest, plan: FundingPlan) -> FundingPlan:
        """The plan to book: `plan` if it still keeps every rule against freshly read
        exposures, else a fresh online plan; `Conflict` "no funding capacity within partner
        limits" if none. Fresh exposures never understate the book (exact after a close)."""
        funders = {f.id: f for f in self._read_funders()}
        return self._confirm(request, plan, funders, self._read_exposures(request.day))

    @contextmanager
    def batch(self) -> Iterator[BookingBatch]:
        """`confirm` for the bookings of one transaction (`origination.originate_many`)."""
        yield BookingBatch(self)

    def _confirm(
        self,
        request: LoanRequest,
        plan: FundingPlan,
        funders: Mapping[str, Funder],
        read: Mapping[str, Exposure],
    ) -> FundingPlan:
        exposures = _known(read, funders)
        policy = self.policy_on(request.day)
        if _keeps_rules(request, plan, funders, exposures, policy):
            return plan
        fresh = Allocator(tuple(funders.values()), policy).allocate(request, exposures)
        if not fresh.funded:
            raise Conflict(NO_CAPACITY, field="funding")
        with self._lock:
            self._drop(request.loan_id)
            self._reserve(request, fresh)
        return fresh

    def check(self, request: LoanRequest, shares: Mapping[str, Decimal]) -> Policy:
        """A manual plan against fresh exposures: `NotFound` for an unknown partner, else a
        `ValidationError` naming the first breach. Returns the policy it was checked under."""
        funders = {f.id: f for f in self._read_funders()}
        exposures = _known(self._read_exposures(request.day), funders)
        policy = self.policy_on(request.day)
        require_valid_plan(request, shares, funders, exposures, policy)
        return policy

    # -- internals ---------------------------------------------------------------------------

    def _current(self, day: date) -> dict[str, Exposure]:
        """Cached exposures for `day` plus the reservations made since they were read."""
        snap = self._snapshots.get(day)
        if snap is None or self.clock() - snap.fetched >= self.refresh_seconds:
            snap = self._refresh(day)
        return dict(snap.current)

    def _refresh(self, day: date) -> _Snapshot:
        funders = self._fresh_funders()
        changed = funders != self._funders
        if changed:
            self._funders, self._allocators = funders, {}
        known = {f.id: f for f in funders}
        exposures = _known(self._exposures_on(day), known)
        snap = _Snapshot(self._last_seq, self.clock(), exposures, dict(exposures))
        self._snapshots.pop(day, None)
        self._snapshots[day] = snap
        while len(self._snapshots) > _KEPT_DATES:
            self._snapshots.pop(next(iter(self._snapshots)))
        oldest = min(s.seq for s in self._snapshots.values())
        self._reservations = [r for r in self._reservations if r.seq > oldest]
        if changed:  # the other dates' reservations now count for a different set of funders
            self._rebuild()
        return snap

    def _exposures_on(self, day: date) -> Mapping[str, Exposure]:
        """The book's exposures on `day`: as `prefetch` read them if recent enough, else now."""
        ahead = self._prefetched.pop(day, None)
        if ahead is not None and self.clock() - ahead[0] < self.refresh_seconds:
            return ahead[1]
        return self._read_exposures(day)

    def _fresh_funders(self) -> tuple[Funder, ...]:
        """The stored funders, re-read at most once per `refresh_seconds`: a batch meets a
        new business date every few rows, and re-reading (and parsing) every partner for
        each was a third of a plan's cost. A partner added or updated is still seen within
        `refresh_seconds`, as the exposures are."""
        now = self.clock()
        if self._funders_read is None or now - self._funders_read >= self.refresh_seconds:
            self._funders_read = now
            return tuple(self._read_funders())
        return self._funders  # what the last refresh read (and kept)

    def policy_on(self, day: date) -> Policy:
        """The co-lending policy in force on `day` (the pack's), as the desk checks plans by
        it; booking re-checks the ratio rules by it under the funders' lock
        (`SqlUnitOfWork(plan_policy=desk.policy_on)`)."""
        # No lock: booking threads may call this too, and the worst a race does is compute
        # the same pure policy twice (entries are never removed).
        if day not in self._policies:
            self._policies[day] = self._policy_for(day)
        return self._policies[day]

    def _allocator(self, day: date) -> Allocator:
        policy = self.policy_on(day)
        if policy not in self._allocators:
            self._allocators[policy] = Allocator(self._funders, policy)
        return self._allocators[policy]

    def _reserve(self, request: LoanRequest, plan: FundingPlan) -> None:
        self._last_seq = next(self._seq)
        parts = tuple((s.funder_id, s.amount) for s in plan.shares)
        made = _Reservation(self._last_seq, request.day, request.loan_id, parts)
        self._reservations.append(made)
        for day, snap in self._snapshots.items():  # newer than every fetch: it counts in all
            self._count(snap.current, made, day)

    def _drop(self, loan_id: str) -> None:
        """Forget a loan's reservation, taking it back out of every date that counts it
        (exact: Decimal sums; a funder left at zero is the same to the allocator as none)."""
        dropped = [r for r in self._reservations if r.loan_id == loan_id]
        if not dropped:
            return
        self._reservations = [r for r in self._reservations if r.loan_id != loan_id]
        for r in dropped:
            for day, snap in self._snapshots.items():
                if r.seq > snap.seq:
                    self._count(snap.current, r, day, taken_back=True)

    def _rebuild(self) -> None:
        """Every date's `current` replayed from its fetch and the reservations made since."""
        for day, snap in self._snapshots.items():
            snap.current.clear()
            snap.current.update(snap.exposures)
            for r in self._reservations:
                if r.seq > snap.seq:
                    self._count(snap.current, r, day)

    def _count(
        self, exposures: dict[str, Exposure], r: _Reservation, day: date, taken_back: bool = False
    ) -> None:
        """Add a reservation made on `r.day` to the exposures seen on `day` (none before), or
        take it back out."""
        if r.day > day:
            return
        known = {f.id for f in self._funders}
        for funder_id, amount in r.parts:
            if funder_id in known:
                before = exposures.get(funder_id, Exposure())
                exposures[funder_id] = _plus(
                    before, -amount if taken_back else amount, r.day == day
                )


class BookingBatch:
    """The desk's `confirm` for several bookings written in one transaction.

    The plans it confirms are not in the book until the batch commits, so each `confirm`
    sees the exposures read once at the batch's first booking of a date, plus the plans
    confirmed before it in the batch: one read per batch instead of one per loan, and no
    two loans of the batch can both take the last of a quota. The plan's write re-checks the
    quotas under the funders' row locks (`SqlFunding.record_plan`), which guards against
    other transactions.
    """

    def __init__(self, desk: FundingDesk) -> None:
        self.desk = desk
        self._funders: dict[str, Funder] | None = None
        self._exposures: dict[date, dict[str, Exposure]] = {}

    def confirm(self, request: LoanRequest, plan: FundingPlan) -> FundingPlan:
        if self._funders is None:
            self._funders = {f.id: f for f in self.desk._read_funders()}
        day = request.day
        if day not in self._exposures:
            self._exposures[day] = dict(self.desk._read_exposures(day))
        confirmed = self.desk._confirm(request, plan, self._funders, self._exposures[day])
        for share in confirmed.shares:
            for when, exposures in self._exposures.items():
                if when >= day:
                    before = exposures.get(share.funder_id, Exposure())
                    exposures[share.funder_id] = _plus(before, share.amount, when == day)
        return confirmed


def _keeps_rules(
    request: LoanRequest,
    plan: FundingPlan,
    funders: Mapping[str, Funder],
    exposures: Mapping[str, Exposure],
    policy: Policy,
) -> bool:
    """Whether a plan still breaks no rule; a partner no longer stored breaks it too."""
    try:
        return plan.funded and not check_plan(request, plan.share_map(), funders, exposures, policy)
    except NotFound:
        return False


def _known(exposures: Mapping[str, Exposure], funders: Iterable[str]) -> dict[str, Exposure]:
    """Only the funders the allocator knows (it refuses others)."""
    ids = set(funders)
    return {k: v for k, v in exposures.items() if k in ids}


def _plus(exposure: Exposure, amount: Decimal, same_day: bool) -> Exposure:
    """`exposure` once `amount` more is funded; it counts in `today` only on its own date."""
    return replace(
        exposure,
        balance=exposure.balance + amount,
        today=exposure.today + amount if same_day else exposure.today,
        total_allocated=exposure.total_allocated + amount,
    )


__all__ = [
    "REFRESH_SECONDS",
    "FundingDesk",
    "apply_funding",
    "funding_policy",
    "funding_request",
    "record_request",
    "recorded_plan",
]
