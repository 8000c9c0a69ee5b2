"""Co-lending in SQL: funding partners, per-loan funding plans, and each funder's exposure.

A partner is stored as its definition (the partner file's shape, canonical JSON) and rebuilt
with the pure parser on every read, so a row can never hold a funder the parser would refuse
and the validation rules stay in `lendstack.funding` alone. Exposure is read set-based from the
funder sub-ledgers (`funder_positions`, kept exact by every cash flow's split), so a loan's
funder parts add up to its balance to the fen.

Booking re-checks a plan in O(funders), not O(book): the close's funding step writes each
funder's balance and allocations to `funder_exposures` (`close_exposures`), and between closes
the flows since then are added from the date/funder index. Only increases are added (payments
lower a balance), so the figure never understates a limit and is exact right after a close.
The exposure report keeps its exact scan.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, bindparam, insert, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from lendstack.core.errors import Conflict, InvariantViolation, NotFound, ValidationError
from lendstack.core.money import from_fen, quantize_fen
from lendstack.funding import (
    NO_CAPACITY,
    Exposure,
    Funder,
    Policy,
    Rule,
    builtin_partners,
    check_shares,
    headrooms,
    parse_partner,
    split,
)
from lendstack.funding.subledger import POSITION_SIGN, Flow
from lendstack.servicing.domain import DEFAULT_BUCKETS
from lendstack.storage.batches import execute_many
from lendstack.storage.calendar import LAST_CLOSED, as_date, last_closed
from lendstack.storage.schema import funder_exposures, funders, funding_plans, loans
from lendstack.storage.subledger import SubLedger

OPEN_STATUSES = ("approved", "active")
"""Loans whose principal is still on the books; closed loans only take recoveries."""


def definition(funder: Funder) -> dict[str, Any]:
    """The partner-file shape of `funder`: what `parse_partner` reads back into an equal one."""
    a, q, g = funder.appetite, funder.quotas, funder.guarantee
    data: dict[str, Any] = {
        "id": funder.id,
        "name": funder.name,
        "kind": funder.kind.value,
        "tier1_net_capital": str(funder.tier1_net_capital),
        "total_loans": str(funder.total_loans),
        "on_platform_list": funder.on_platform_list,
        "funding_cost": str(funder.funding_cost),
        "appetite": {
            "max_pd": str(a.max_pd),
            "provinces": list(a.provinces),
            "products": list(a.products),
            "terms": list(a.terms),
            "purposes": list(a.purposes),
            "min_apr": str(a.min_apr),
            "target_share": str(a.target_share),
        },
        "quotas": {"daily": str(q.daily), "total": str(q.total)},
    }
    if funder.home_region is not None:
        data["home_region"] = funder.home_region
    if g is not None:
        data["guarantee"] = {
            "trigger_dpd": g.trigger_dpd,
            "fee_rate": str(g.fee_rate),
            "balance": str(g.balance),
        }
    return data


def canonical_json(funder: Funder) -> str:
    """Sorted keys, no spaces, decimals as strings: equal funders give equal text."""
    return json.dumps(definition(funder), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class FunderRecord:
    """A stored funder with its bookkeeping: `version` starts at 1 and grows with each update."""

    funder: Funder
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DpdBucket:
    label: str
    loans: int
    balance: Decimal


@dataclass(frozen=True, slots=True)
class FunderExposure:
    """One funder's position: its `Exposure`, the limits of rules 2.2/2.3 and headroom under each.

    Limits are None for the platform's own balance sheet, which the bank rules do not bind.
    `headroom` holds the pure core's `headrooms` (rounded down to the fen), keyed by rule.
    """

    funder: Funder
    exposure: Exposure
    loans: int
    dpd_mix: tuple[DpdBucket, ...]
    tier1_limit: Decimal | None
    total_loans_limit: Decimal | None
    headroom: tuple[tuple[Rule, Decimal], ...]

    def headroom_for(self, rule: Rule) -> Decimal | None:
        return dict(self.headroom).get(rule)

    def as_json(self) -> dict[str, Any]:
        """The partner object of `funding exposure --format json` and the partner API."""
        e = self.exposure
        return {
            "id": self.funder.id,
            "name": self.funder.name,
            "kind": self.funder.kind.value,
            "balance": e.balance,
            "tier1_limit": self.tier1_limit,
            "tier1_headroom": self.headroom_for(Rule.TIER1),
            "total_loans_limit": self.total_loans_limit,
            "total_loans_headroom": self.headroom_for(Rule.TOTAL_LOANS),
            "today": e.today,
            "daily_quota_headroom": self.headroom_for(Rule.DAILY_QUOTA),
            "total_allocated": e.total_allocated,
            "total_quota_headroom": self.headroom_for(Rule.TOTAL_QUOTA),
            "loans": self.loans,
            "dpd_mix": [
                {"bucket": b.label, "loans": b.loans, "balance": b.balance} for b in self.dpd_mix
            ],
        }


@dataclass(frozen=True, slots=True)
class ExposureReport:
    as_of: date | None
    partners: tuple[FunderExposure, ...]
    total_balance: Decimal
    """Σ of the plan loans' outstanding principal; the funders' balances sum to it exactly."""


@dataclass(slots=True)
class _Tally:
    """Per-funder running sums while the plans are scanned (fen, so no rounding drift)."""

    balance: int = 0
    today: int = 0
    allocated: int = 0
    loans: int = 0
    buckets: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))


def _now() -> datetime:
    return datetime.now(UTC)


def _record(row: Row[Any]) -> FunderRecord:
    return FunderRecord(
        _parsed(row.id, row.definition), row.version, row.created_at, row.updated_at
    )


@lru_cache(maxsize=1024)
def _parsed(funder_id: str, definition: str) -> Funder:
    """A stored definition rebuilt by the pure parser; cached, as every booking reads its
    funders and a definition's text fixes the (frozen) funder it parses to."""
    return parse_partner(json.loads(definition), f"stored funder {funder_id!r}")


class SqlFunding:
    """The funders and funding_plans tables. Each call is its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- partners -----------------------------------------------------------------------

    def add(self, funder: Funder) -> FunderRecord:
        """Store a new funder; an id already stored is a `Conflict` and changes nothing."""
        now = _now()
        values = {
            "id": funder.id,
            "kind": funder.kind.value,
            "definition": canonical_json(funder),
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        try:
            with self.engine.begin() as conn:
                if conn.execute(select(funders.c.id).where(funders.c.id == funder.id)).first():
                    raise Conflict(f"partner {funder.id!r} already exists", field="id")
                conn.execute(insert(funders), values)
                # Nothing lent yet: as of the last close, so booking reads only flows since.
                closed = {"funder_id": funder.id, "closed_on": last_closed(conn)}
                conn.execute(insert(funder_exposures), closed)
        except IntegrityError as exc:  # a concurrent add won the race
            raise Conflict(f"partner {funder.id!r} already exists", field="id") from exc
        return FunderRecord(funder, 1, now, now)

    def update(self, funder: Funder) -> FunderRecord:
        """Replace a stored funder's definition and bump its version; unknown id: `NotFound`."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(funders)
                .where(funders.c.id == funder.id)
                .values(
                    kind=funder.kind.value,
                    definition=canonical_json(funder),
                    updated_at=_now(),
                    version=funders.c.version + 1,
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"no partner {funder.id!r}", field="id")
            row = conn.execute(select(funders).where(funders.c.id == funder.id)).one()
        return _record(row)

    def record(self, funder_id: str) -> FunderRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(funders).where(funders.c.id == funder_id)).first()
        if row is None:
            raise NotFound(f"no partner {funder_id!r}", field="id")
        return _record(row)

    def get(self, funder_id: str) -> Funder:
        return self.record(funder_id).funder

    def records(self) -> tuple[FunderRecord, ...]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(funders).order_by(funders.c.id)).all()
        return tuple(_record(r) for r in rows)

    def all(self) -> tuple[Funder, ...]:
        """Every stored funder, sorted by id."""
        return tuple(r.funder for r in self.records())

    def import_builtin(self) -> tuple[str, ...]:
        """Add the sample partners not stored yet (idempotent); returns the ids added."""
        added = []
        for funder in builtin_partners():
            try:
                self.add(funder)
            except Conflict:
                continue
            added.append(funder.id)
        return tuple(added)

    # --- plans --------------------------------------------------------------------------

    def record_plan(
        self,
        target: Connection | Engine,
        loan_id: int,
        shares: Mapping[str, Decimal],
        policy: Policy | None = None,
        guarantee_fee_rates: Mapping[str, Decimal] | None = None,
    ) -> None:
        """Write a booked loan's funding shares, all or nothing.

        `target` is an engine (its own transaction) or a connection (the caller's, e.g. the
        booking's). Everything is checked before the one insert: shares are Decimal, >= 0,
        multiples of the policy's quantum and sum to exactly 1; funders and the loan exist;
        the loan has no plan yet (a plan is fixed once booked).

        The plan's funder rows are locked (PostgreSQL: `FOR NO KEY UPDATE`, in id order) and
        their limits re-checked under the lock, so two bookings cannot both take the last of a
        quota: the second waits for the first and sees its parts. Quotas are always checked;
        the ratio rules (2.2, 2.3) too when `policy` is given (they depend on the rule pack).
        A breach is a `Conflict` on `funding` and writes nothing.
        """
        if isinstance(target, Engine):
            with target.begin() as conn:
                self.record_plan(conn, loan_id, shares, policy, guarantee_fee_rates)
            return
        policy_on = None if policy is None else (lambda _day: policy)
        self.record_plans(target, [(loan_id, shares, guarantee_fee_rates or {})], policy_on)

    def record_plans(
        self,
        conn: Connection,
        plans: Sequence[tuple[int, Mapping[str, Decimal], Mapping[str, Decimal]]],
        policy_on: Callable[[date], Policy] | None = None,
    ) -> None:
        """`record_plan` for many loans (loan id, shares, guarantee fee rates) on one
        connection, all or nothing, with a few statements for the whole batch: the loans, the
        funders (locked once), their flows since the close, the plan rows; then each loan's
        sub-ledger. Each plan is checked as if the ones before it were already written; the
        ratio rules too when `policy_on` gives the policy in force on a loan's date.
        """
        if not plans:
            return
        for _, shares, rates in plans:  # the plans themselves first: no read, no lock
            check_shares(shares)
            _check_guarantee_fees(shares, rates)
        targets = _check_plan_targets(conn, plans)
        rows = [
            row
            for (loan_id, shares, rates), t in zip(plans, targets.plans, strict=True)
            for row in _plan_rows(loan_id, shares, _policy(policy_on, t.day), rates)
        ]
        _check_limits(conn, targets, policy_on)
        execute_many(conn, _INSERT_PLANS, rows)  # the driver's executemany on SQLite
        SubLedger(conn).open_many(
            [
                (loan_id, t.principal_fen, t.day, shares)
                for (loan_id, shares, _), t in zip(plans, targets.plans, strict=True)
            ]
        )

    def buyback(self, loan_id: int, funder_id: str, on: date) -> Decimal:
        """The platform buys a bank's whole stake in a loan on the open business date.

        The bank is owed its principal position (settled in its file for `on`); its share of
        the loan's future cash flows passes to the platform. Returns the price paid.
        """
        with self.engine.begin() as conn:
            ensure_open_date(conn, on)
            status = conn.execute(select(loans.c.status).where(loans.c.id == loan_id)).scalar()
            if status is None:
                raise NotFound(f"no loan {loan_id}", field="loan_id")
            if status not in OPEN_STATUSES:
                raise Conflict(f"loan {loan_id} is {status}; only an open loan is bought back",
                               field="loan_id")  # fmt: skip
            if conn.execute(select(funders.c.id).where(funders.c.id == funder_id)).first() is None:
                raise NotFound(f"no partner {funder_id!r}", field="funder")
            paid = SubLedger(conn).transfer(loan_id, funder_id, Flow.BUYBACK, on)
        return from_fen(paid)

    def plan(self, loan_id: int) -> dict[str, Decimal]:
        """A loan's shares by funder id (empty if the loan has no plan)."""
        query = select(funding_plans.c.funder_id, funding_plans.c.share).where(
            funding_plans.c.loan_id == loan_id
        )
        with self.engine.connect() as conn:
            return {r.funder_id: Decimal(r.share) for r in conn.execute(query)}

    # --- exposure -----------------------------------------------------------------------

    def exposure_maps(self, days: Iterable[date]) -> dict[date, dict[str, Exposure]]:
        """`exposure_map` of each of `days`, the open ones from one read of the flows since
        the close (a batch of decisions meets a new date every few rows)."""
        wanted = sorted(set(days))
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            found = fast_exposures_many(conn, wanted)
        return {d: found[d] if d in found else self.exposure_map(d) for d in wanted}

    def exposure_map(self, as_of: date | None = None) -> dict[str, Exposure]:
        """Each stored funder's `Exposure` (what the allocator and `check_plan` take), for the
        desk and booking's per-loan re-check.

        On the open business date or later (or with no close yet) it is the last close's
        exposure plus the increases since (`fast_exposures`): O(funders), never less than the
        book's exact figure, equal to it right after a close. A date already closed is read
        exactly from the book, as the report does.
        """
        with self.engine.connect() as conn:
            fast = fast_exposures(conn, as_of)
            if fast is not None:
                return fast
            ids = conn.execute(select(funders.c.id)).scalars().all()
            tallies = _tallies(conn, as_of)
        return {
            i: Exposure(
                balance=from_fen(tallies[i].balance),
                today=from_fen(tallies[i].today),
                total_allocated=from_fen(tallies[i].allocated),
            )
            for i in sorted(ids)
        }

    def exposures(self, as_of: date | None = None, policy: Policy | None = None) -> ExposureReport:
        """Every stored funder's co-lent position over loans disbursed on or before `as_of`.

        Balances are the loans' current outstanding principal (the loans table holds the state
        after the last close); `as_of` selects the loans and is the "today" of the daily quota.
        None takes every booked loan.
        """
        rules = policy or Policy()
        with self.engine.connect() as conn:
            stored = {r.id: _record(r).funder for r in conn.execute(select(funders))}
            tallies = _tallies(conn, as_of)
            total = _total_balance(conn, as_of)
        partners = tuple(_position(stored[i], tallies[i], rules) for i in sorted(stored))
        return ExposureReport(as_of, partners, from_fen(total))


def ensure_open_date(conn: Connection, on: date) -> None:
    """Money moves only on the open business date (the day after the last close)."""
    closed = last_closed(conn)
    if closed is None:
        return
    if on <= closed:
        raise Conflict(f"{on} is inside an already closed business date (last {closed})",
                       field="date")  # fmt: skip
    if on > closed + timedelta(days=1):
        raise Conflict(f"{on} is not open yet; the open business date is "
                       f"{closed + timedelta(days=1)}", field="date")  # fmt: skip


def _plan_rows(
    loan_id: int,
    shares: Mapping[str, Decimal],
    policy: Policy,
    guarantee_fee_rates: Mapping[str, Decimal],
) -> list[dict[str, object]]:
    """A checked plan's rows; each share must be a multiple of the quantum in force."""
    rows = []
    for funder_id, share in sorted(shares.items()):
        if share != share.quantize(policy.share_quantum):
            raise ValidationError(
                f"share of {funder_id!r} is {share}, not a multiple of {policy.share_quantum}",
                field="shares",
            )
        text = f"{share.quantize(policy.share_quantum):f}"
        fee = f"{guarantee_fee_rates.get(funder_id, Decimal(0)):f}"
        rows.append(
            {"loan_id": loan_id, "funder_id": funder_id, "share": text, "guarantee_fee_rate": fee}
        )
    return rows


def _check_guarantee_fees(shares: Mapping[str, Decimal], rates: Mapping[str, Decimal]) -> None:
    for funder_id, rate in rates.items():
        if funder_id not in shares:
            raise ValidationError(
                f"guarantee fee for {funder_id!r}, which has no share", field="guarantee_fee_rate"
            )
        if not isinstance(rate, Decimal) or not rate.is_finite() or not 0 <= rate < 1:
            raise ValidationError(
                f"guarantee fee of {funder_id!r} must be a Decimal in [0, 1), got {rate!r}",
                field="guarantee_fee_rate",
            )


_INSERT_PLANS = insert(funding_plans)
_PLAN_TARGETS = select(
    loans.c.id,
    loans.c.principal_fen,
    loans.c.disbursement_date,
    LAST_CLOSED.scalar_subquery().label("closed"),
    select(funding_plans.c.loan_id)
    .where(funding_plans.c.loan_id == loans.c.id)
    .exists()
    .label("planned"),
).where(loans.c.id.in_(bindparam("ids", expanding=True)))
"""The loans, the last close and whether each loan has a plan, in one statement."""

_PLAN_FUNDERS = (
    select(
        funders.c.id,
        funders.c.definition,
        funder_exposures.c.closed_on,
        funder_exposures.c.balance_fen,
        funder_exposures.c.allocated_fen,
    )
    .outerjoin(funder_exposures, funder_exposures.c.funder_id == funders.c.id)
    .where(funders.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(funders.c.id)
    .with_for_update(of=funders, key_share=True)
)
"""The plan's funders with their close rows, the funders locked in id order (no deadlock
between bookings). NO KEY UPDATE, so the flows and positions that reference a funder are
not kept waiting by the lock."""


@dataclass(frozen=True, slots=True)
class _Target:
    """A plan to record: its loan's principal and date, and its shares."""

    principal_fen: int
    day: date
    shares: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True)
class _Targets:
    """The batch's plans in order, and their funders (locked) with their close rows."""

    plans: tuple[_Target, ...]
    funders: dict[str, Funder]
    at_close: dict[str, _AtClose]


def _check_plan_targets(
    conn: Connection, plans: Sequence[tuple[int, Mapping[str, Decimal], Any]]
) -> _Targets:
    """The plans' loans and (locked) funders, once each plan may be recorded: its loan
    exists, was disbursed after the last close and has no plan yet (nor an earlier one in
    the batch); its funders exist. The first failure, in batch order, is raised."""
    ids = sorted({loan_id for loan_id, _, _ in plans})
    found = {r.id: r for r in conn.execute(_PLAN_TARGETS, {"ids": ids})}
    wanted = sorted({f for _, shares, _ in plans for f in shares})
    rows = conn.execute(_PLAN_FUNDERS, {"ids": wanted}).all() if wanted else []
    stored = {r.id: _parsed(r.id, r.definition) for r in rows}
    targets, seen = [], set()
    for loan_id, shares, _ in plans:
        loan = found.get(loan_id)
        if loan is None:
            raise NotFound(f"no loan {loan_id}", field="loan_id")
        day, closed = date.fromisoformat(str(loan.disbursement_date)), as_date(loan.closed)
        if closed is not None and day <= closed:
            # Its earlier cash flows were never split: a plan can only start with the loan.
            raise Conflict(
                f"loan {loan_id} was disbursed on {day}, before the last close "
                f"({closed}); a funding plan is recorded with the booking",
                field="loan_id",
            )
        for funder_id in sorted(shares):
            if funder_id not in stored:
                raise NotFound(f"no partner {funder_id!r}", field="funder")
        if loan.planned or loan_id in seen:
            raise Conflict(f"loan {loan_id} already has a funding plan", field="loan_id")
        seen.add(loan_id)
        targets.append(_Target(int(loan.principal_fen), day, shares))
    return _Targets(tuple(targets), stored, {r.id: _at_close(r) for r in rows})


_QUOTAS = frozenset({Rule.DAILY_QUOTA, Rule.TOTAL_QUOTA})


def _policy(policy_on: Callable[[date], Policy] | None, day: date) -> Policy:
    return Policy() if policy_on is None else policy_on(day)


def _check_limits(
    conn: Connection, targets: _Targets, policy_on: Callable[[date], Policy] | None
) -> None:
    """Each funder's part against its headroom, from exposures read under the plans' lock
    plus the parts of the batch's earlier plans (on or before the plan's date): the quotas
    always, the ratio rules (2.2, 2.3) by the policy of the plan's date when it is given."""
    # Per plan date, the exposures read plus the parts of the plans checked so far, kept
    # running (one addition per plan and date, not a replay of every earlier plan).
    running = {
        d: dict(_since_close(conn, targets.at_close, d)) for d in {t.day for t in targets.plans}
    }
    rules = _QUOTAS if policy_on is None else frozenset(Rule)
    for target in targets.plans:
        parts = split(from_fen(target.principal_fen), target.shares)
        policy = _policy(policy_on, target.day)
        for funder_id in sorted(target.shares):
            if target.shares[funder_id] <= 0:
                continue
            exposure = running[target.day][funder_id]
            room = headrooms(targets.funders[funder_id], exposure, policy)
            for rule, left in room.items():
                if rule in rules and parts[funder_id] > left:
                    raise Conflict(f"{NO_CAPACITY} ({funder_id}: {rule.value})", field="funding")
        for day, exposures in running.items():
            if target.day <= day:
                for funder_id, part in parts.items():
                    if funder_id in exposures:
                        exposures[funder_id] = _plus(exposures[funder_id], part, target.day == day)


def _plus(exposure: Exposure, amount: Decimal, same_day: bool) -> Exposure:
    return Exposure(
        balance=exposure.balance + amount,
        today=exposure.today + amount if same_day else exposure.today,
        total_allocated=exposure.total_allocated + amount,
    )


_EPOCH = date(1970, 1, 1)
"""Before any business date: the start of the flows of a funder never closed."""


@dataclass(frozen=True, slots=True)
class _AtClose:
    """A funder's `funder_exposures` row (zeros from the epoch if it has none yet)."""

    closed_on: date
    balance_fen: int
    allocated_fen: int


def _at_close(row: Any) -> _AtClose:
    closed = as_date(row.closed_on) or _EPOCH
    return _AtClose(closed, int(row.balance_fen or 0), int(row.allocated_fen or 0))


_AT_CLOSE = (
    select(
        funders.c.id,
        funder_exposures.c.closed_on,
        funder_exposures.c.balance_fen,
        funder_exposures.c.allocated_fen,
        LAST_CLOSED.scalar_subquery().label("last_closed"),
    )
    .outerjoin(funder_exposures, funder_exposures.c.funder_id == funders.c.id)
    .order_by(funders.c.id)
)
"""Every funder's close row, and the last close (a date already closed is read exactly)."""


def _moved_sql(alias: str) -> str:
    arms = " ".join(f"WHEN '{f.value}' THEN {s}" for f, s in POSITION_SIGN.items())
    return f"((CASE {alias}.flow {arms} ELSE 0 END) * {alias}.amount_fen)"


_MOVED = _moved_sql("x")
_MOVED_SINCE = text(
    f"SELECT x.funder_id, SUM({_MOVED}) FROM funder_flows x WHERE x.id > :m GROUP BY x.funder_id"
)
"""How far each funder's positions moved by the flows after id `:m` (its primary key's range:
the flows since, not the history)."""
_SINCE = (
    "SELECT x.funder_id, x.business_date,"
    f" SUM(CASE WHEN {_MOVED} > 0 THEN {_MOVED} ELSE 0 END),"
    " SUM(CASE WHEN x.flow = 'disbursement' THEN x.amount_fen ELSE 0 END)"
    " FROM funder_flows x WHERE x.funder_id IN :ids AND x.business_date > :after{until}"
    " GROUP BY x.funder_id, x.business_date"
)
"""Per funder and day since the earliest close row: the positions' increases (decreases are
left for the close) and the allocations. A constant date range, so both engines plan it on
the date/funder index and read only the days since the close."""


def _since_close(
    conn: Connection, at_close: Mapping[str, _AtClose], as_of: date | None
) -> dict[str, Exposure]:
    """`at_close` plus each funder's flows after its own close, up to `as_of` (None: all,
    nothing counted as today)."""
    if not at_close:
        return {}
    return _summed(at_close, _flows_since(conn, at_close, as_of), as_of)


def _flows_since(
    conn: Connection, at_close: Mapping[str, _AtClose], until: date | None
) -> list[tuple[str, date, int, int]]:
    """(funder, day, increase, granted) per funder and day after the earliest close row, up
    to `until` (None: all)."""
    query = text(_SINCE.format(until="" if until is None else " AND x.business_date <= :today"))
    params = {"ids": sorted(at_close), "after": min(r.closed_on for r in at_close.values()),
              "today": until}  # fmt: skip
    rows = conn.execute(query.bindparams(bindparam("ids", expanding=True)), params)
    return [
        (str(funder_id), as_date(day) or _EPOCH, int(increase), int(granted))
        for funder_id, day, increase, granted in rows
    ]


def _summed(
    at_close: Mapping[str, _AtClose],
    flows: Sequence[tuple[str, date, int, int]],
    as_of: date | None,
) -> dict[str, Exposure]:
    """`at_close` plus each funder's `flows` after its own close, up to `as_of` (None: all,
    nothing counted as today)."""
    sums = {f: [r.balance_fen, r.allocated_fen, 0] for f, r in at_close.items()}
    for funder_id, on, increase, granted in flows:
        if at_close[funder_id].closed_on < on and (as_of is None or on <= as_of):
            tally = sums[funder_id]
            tally[0] += increase
            tally[1] += granted
            tally[2] += granted if on == as_of else 0
    return {
        funder_id: Exposure(
            balance=from_fen(balance), today=from_fen(today), total_allocated=from_fen(allocated)
        )
        for funder_id, (balance, allocated, today) in sums.items()
    }


def fast_exposures(conn: Connection, as_of: date | None) -> dict[str, Exposure] | None:
    """Each stored funder's exposure on an open date `as_of` (None: now, nothing counted as
    today); None if `as_of` is already closed (read it exactly from the book).

    balance = the close's balance + every increase of a position since (disbursements,
    capitalised amounts, reversed principal, stakes acquired), so it never understates the
    book; allocations are exact. Two statements: O(funders) rows, then the funders' flows
    since their close (a day's flows, not the book).
    """
    rows = conn.execute(_AT_CLOSE).all()
    closed = as_date(rows[0].last_closed) if rows else None
    if closed is not None and as_of is not None and as_of <= closed:
        return None
    return _since_close(conn, {r.id: _at_close(r) for r in rows}, as_of)


def fast_exposures_many(conn: Connection, days: Sequence[date]) -> dict[date, dict[str, Exposure]]:
    """`fast_exposures` of each open date of `days` (the closed ones are left out): the same
    two statements once, the flows read up to the latest date and summed per date."""
    rows = conn.execute(_AT_CLOSE).all()
    closed = as_date(rows[0].last_closed) if rows else None
    open_days = [d for d in days if closed is None or d > closed]
    if not open_days:
        return {}
    at_close = {r.id: _at_close(r) for r in rows}
    if not at_close:
        return {d: {} for d in open_days}
    flows = _flows_since(conn, at_close, max(open_days))
    return {as_of: _summed(at_close, flows, as_of) for as_of in open_days}


def close_exposures(
    conn: Connection, day: date, *, carry: bool = False, check: bool = False
) -> int:
    """The close's exposure rows: every funder's exact balance and allocations at `day`.

    A few set-based statements (a row for each funder new since, the balances, one update per
    funder): the allocations add the disbursements since each row's own close. The balances
    are one pass over the open loans' positions, or, with `carry`, each row's balance at the
    last close plus the flows written since (`_carried`), where every row says which flows it
    includes; `check` sums them from the positions as well and raises `InvariantViolation`
    if a carried balance differs. Returns the funders written.
    """
    conn.execute(
        text(
            "INSERT INTO funder_exposures (funder_id) SELECT id FROM funders"
            " WHERE id NOT IN (SELECT funder_id FROM funder_exposures)"
        )
    )
    rows = conn.execute(
        text("SELECT funder_id, balance_fen, flows_through FROM funder_exposures")
    ).all()
    funder_ids = [str(row[0]) for row in rows]
    through = int(conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM funder_flows")).scalar_one())
    carried = _carried(conn, rows) if carry else None
    held = carried if carried is not None and not check else held_of(conn, funder_ids)
    if carried is not None and carried != held:
        raise InvariantViolation(
            f"exposures carried from the flows {carried} differ from the positions' {held}"
        )
    # A close that does not carry leaves its balances unmarked: with other writers at work
    # (the API), a flow with a lower id may commit after this read, and a carry from the
    # mark would miss it.
    marked = through if carry else None
    values = [
        {"f": funder_id, "day": day, "balance": held.get(funder_id, 0), "never": date.min,
         "through": marked}
        for funder_id in funder_ids
    ]  # fmt: skip
    if values:
        conn.execute(text(_CLOSE_EXPOSURE), values)
    return len(values)


def _carried(conn: Connection, rows: Sequence[Any]) -> dict[str, int] | None:
    """Each funder's balance at the last close plus the flows written since, or None where a
    row does not say which flows it includes (or the rows disagree).

    Exact for a single writer: a position moves only by a flow (the ledger check holds them
    equal), flows are only appended, in id order, and a loan that leaves the open book has
    repaid, charged off or sold its principal, its positions taken to 0 by those flows. So
    the open loans' positions grew since by exactly the flows since.
    """
    marks = {row[2] for row in rows}
    if len(marks) != 1 or None in marks:
        return None
    moved = dict(conn.execute(_MOVED_SINCE, {"m": marks.pop()}).all())
    return {str(f): int(balance or 0) + int(moved.get(f) or 0) for f, balance, _ in rows}


_OPEN = "l.status IN ('approved', 'active')"

_HELD = (
    "SELECT p.funder_id, SUM(p.principal_fen) FROM loans l JOIN funder_positions p"
    f" ON p.loan_id = l.id WHERE {_OPEN} GROUP BY p.funder_id"
)
"""Each funder's co-lent principal of open loans. Driven from the open loans (status index),
then each loan's positions by primary key: the cost follows the open book, whereas a walk of
each funder's positions would also visit every position of loans long closed."""


def held_by_funder(conn: Connection) -> dict[str, int]:
    """Each funder's principal in open loans (fen) from its positions, funders sorted: what
    the close records as its exposure balance, and what a simulation reports."""
    return dict(sorted((str(f), int(fen or 0)) for f, fen in conn.execute(text(_HELD))))


FILTERED_FUNDERS = 8
"""Up to this many funders, `held_of` sums each funder's principal under its own FILTER;
beyond it, by GROUP BY. The GROUP BY sorts every open position by funder (SQLite has no hash
aggregate): at 4 funders that sort cost more than the join that feeds it. The filters instead
test every position against each funder, so their cost grows with the funders, and past
about a dozen the sort is cheaper."""


@lru_cache(maxsize=FILTERED_FUNDERS)
def _held_filtered(count: int) -> TextClause:
    sums = ", ".join(
        f"SUM(p.principal_fen) FILTER (WHERE p.funder_id = :f{k})" for k in range(count)
    )
    return text(
        f"SELECT {sums} FROM loans l JOIN funder_positions p ON p.loan_id = l.id WHERE {_OPEN}"
    )


def held_of(conn: Connection, funder_ids: Sequence[str]) -> dict[str, int]:
    """`held_by_funder` for the funders `funder_ids` (one pass over the open loans' positions;
    a funder holding nothing in open loans gets 0, as does one with no positions)."""
    if not funder_ids or len(funder_ids) > FILTERED_FUNDERS:
        held = held_by_funder(conn)
        return {f: held.get(f, 0) for f in funder_ids}
    params = {f"f{k}": funder_id for k, funder_id in enumerate(funder_ids)}
    sums = conn.execute(_held_filtered(len(funder_ids)), params).one()
    return {f: int(fen or 0) for f, fen in zip(funder_ids, sums, strict=True)}


_CLOSE_EXPOSURE = (
    "UPDATE funder_exposures SET closed_on = :day, balance_fen = :balance,"
    " flows_through = :through,"
    # Allocations only grow: add the disbursements since the row's own close, so the step
    # reads a day of flows, not the whole history (re-running a date adds none). A row never
    # closed counts from `date.min`: a range with both ends, so the funder/date index reads
    # only the days since (with `closed_on IS NULL OR ...` it read every day up to `:day`).
    " allocated_fen = COALESCE(allocated_fen, 0) + COALESCE((SELECT SUM(x.amount_fen)"
    " FROM funder_flows x WHERE x.flow = 'disbursement'"
    " AND x.funder_id = funder_exposures.funder_id AND x.business_date <= :day"
    " AND x.business_date > COALESCE(funder_exposures.closed_on, :never)), 0)"
    " WHERE funder_id = :f"
)


def _since(as_of: date | None, column: str) -> tuple[str, dict[str, Any]]:
    return ("", {}) if as_of is None else (f" AND {column} <= :as_of", {"as_of": as_of})


def _tallies(conn: Connection, as_of: date | None) -> dict[str, _Tally]:
    """Each funder's positions by DPD bucket and its disbursed parts, in two GROUP BYs.

    Balances come from `funder_positions`, which move with every payment, so they are the
    funders' exact parts of the current principal; allocations are the disbursement parts.
    """
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    where, params = _since(as_of, "l.disbursement_date")
    held = conn.execute(
        text(
            "SELECT p.funder_id, l.bucket, COUNT(*), SUM(p.principal_fen) FROM funder_positions p"
            f" JOIN loans l ON l.id = p.loan_id WHERE p.principal_fen > 0 AND {_OPEN}{where}"
            " GROUP BY p.funder_id, l.bucket"
        ),
        params,
    )
    for funder_id, bucket, count, fen in held:
        tally = tallies[funder_id]
        tally.loans += int(count)
        tally.balance += int(fen)
        tally.buckets[int(bucket)][0] += int(count)
        tally.buckets[int(bucket)][1] += int(fen)
    where, params = _since(as_of, "business_date")
    granted = conn.execute(
        text(
            "SELECT funder_id, SUM(amount_fen),"
            " SUM(CASE WHEN business_date = :today THEN amount_fen ELSE 0 END)"
            f" FROM funder_flows WHERE flow = 'disbursement'{where} GROUP BY funder_id"
        ),
        {**params, "today": as_of},
    )
    for funder_id, allocated, today in granted:
        tallies[funder_id].allocated += int(allocated or 0)
        tallies[funder_id].today += int(today or 0)
    return tallies


def _total_balance(conn: Connection, as_of: date | None) -> int:
    """Outstanding principal of the co-funded loans: what the funders' balances add up to."""
    where, params = _since(as_of, "l.disbursement_date")
    total = conn.execute(
        text(
            "SELECT COALESCE(SUM(l.bal_principal), 0) FROM loans l WHERE l.id IN"
            f" (SELECT loan_id FROM funding_plans) AND {_OPEN}{where}"
        ),
        params,
    ).scalar()
    return int(total or 0)


def _position(funder: Funder, tally: _Tally, policy: Policy) -> FunderExposure:
    exposure = Exposure(
        balance=from_fen(tally.balance),
        today=from_fen(tally.today),
        total_allocated=from_fen(tally.allocated),
    )
    room = headrooms(funder, exposure, policy)
    tier1 = total = None
    if not funder.is_platform:
        tier1 = quantize_fen(policy.tier1_ratio * funder.tier1_net_capital)
        total = quantize_fen(policy.total_loans_ratio * funder.total_loans)
    return FunderExposure(
        funder, exposure, tally.loans, _dpd_mix(tally), tier1, total, tuple(room.items())
    )


def _dpd_mix(tally: _Tally) -> tuple[DpdBucket, ...]:
    """Loans and balance in every bucket M0..M7+ (zeros included, so columns line up)."""
    scheme = DEFAULT_BUCKETS
    sums = [[0, 0] for _ in range(scheme.last + 1)]
    for index, (count, fen) in tally.buckets.items():
        sums[min(max(index, 0), scheme.last)][0] += count
        sums[min(max(index, 0), scheme.last)][1] += fen
    return tuple(
        DpdBucket(scheme.label_of_index(i), count, from_fen(fen))
        for i, (count, fen) in enumerate(sums)
    )


__all__ = [
    "OPEN_STATUSES",
    "DpdBucket",
    "ExposureReport",
    "FunderExposure",
    "FunderRecord",
    "SqlFunding",
    "canonical_json",
    "close_exposures",
    "definition",
    "fast_exposures",
]
