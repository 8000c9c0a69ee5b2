"""Set-based close of business: each step is a handful of SQL statements over the loan table.

No step loops over loans in Python (the credit step touches only loans holding credit and
owing money). Each statement filters on indexed columns or scans the loan table once, so
the cost per loan is flat however old the loans are. Dates are epoch-day integers, so the
same SQL runs on SQLite and PostgreSQL. Every aggregate journal entry is computed from
exactly the rows the step updates, in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, TextClause
from sqlalchemy import text as _parse

from lendstack.core.money import Rounding, from_fen
from lendstack.servicing.cob import CobStep
from lendstack.servicing.domain.delinquency import (
    DEFAULT_BUCKETS,
    BucketScheme,
    ClassificationProfile,
    RiskClass,
    default_profile,
)
from lendstack.servicing.domain.ledger import Account, EventType, Side, entry_or_none, leg
from lendstack.servicing.domain.payments import apply_credit
from lendstack.servicing.ports import StoredPayment
from lendstack.storage.collections import resolve_promises
from lendstack.storage.mapping import to_day
from lendstack.storage.month_end import close_month_end, is_month_end
from lendstack.storage.repositories import (
    SqlLedger,
    SqlLoans,
    SqlPayments,
)
from lendstack.storage.restructures import held_class_sql, observe
from lendstack.storage.subledger import close_funding

ACTIVE = "status = 'active'"


@lru_cache(maxsize=256)
def text(sql: str) -> TextClause:
    """`sqlalchemy.text`, built once per statement: the close runs the same few dozen
    statements every day, and parsing each one's bind parameters anew cost more than some of
    the statements themselves. A TextClause is not changed by executing it."""
    return _parse(sql)


def _round_div(num: str, den: str, mode: Rounding) -> str:
    """Integer num/den rounded with `mode`, for num >= 0 and den > 0, in portable SQL."""
    n, d = f"({num})", f"({den})"
    if mode is Rounding.DOWN:
        return f"({n} / {d})"
    if mode is Rounding.UP:
        return f"(({n} + {d} - 1) / {d})"
    if mode is Rounding.HALF_UP:
        return f"((2 * {n} + {d}) / (2 * {d}))"
    rest = f"({n} % {d})"
    odd = f"(({n} / {d}) % 2 = 1)"
    return f"(CASE WHEN 2 * {rest} > {d} OR (2 * {rest} = {d} AND {odd}) THEN {n} / {d} + 1 ELSE {n} / {d} END)"


def _round_by_loan(num: str, den: str) -> str:
    """Round with each loan's own product rounding mode, in one pass over the table."""
    arms = " ".join(f"WHEN '{m.value}' THEN {_round_div(num, den, m)}" for m in Rounding)
    return f"(CASE rounding {arms} END)"


ACCRUAL_TARGET = (
    "(CASE WHEN :d >= period_due THEN period_interest ELSE "
    + _round_by_loan("period_interest * (:d - period_start)", "period_due - period_start")
    + " END)"
)
ACCRUING = f"{ACTIVE} AND period_due IS NOT NULL AND period_start < :d"
HAS_INTEREST = "(period_interest <> 0 OR period_accrued <> 0)"
"""Loans the accrual can change: with no period interest the target is 0 in every mode."""
ACCRUED_BEFORE = (
    "(CASE WHEN accrual_dirty THEN period_accrued ELSE "
    + ACCRUAL_TARGET.replace(":d", "(:d - 1)")
    + " END)"
)
"""An accruing loan's period interest accrued at the previous day's close. A row no one has
written since that close holds its share at some earlier close, which the closes between
(deferring, `accrue`) did not write; its share then is a function of the day. A row written
since (`accrual_dirty`) holds it as written."""
UNWRITTEN = f"(CASE WHEN {ACCRUING} THEN {ACCRUAL_TARGET} - period_accrued ELSE 0 END)"
"""Interest earned by the close of :d that a loan's row does not hold, for the steps after the
accrual of :d: none once the row is up to date, a deferred accrual's days otherwise. After
that accrual every row is up to date or holds its share at some earlier close, and a row a
later step writes (the credit step, which marks it `accrual_dirty`) was read as of :d
(`SqlLoans`), so it holds its share at :d: the mark need not be asked."""
INTEREST = f"(bal_interest + {UNWRITTEN})"
"""A loan's interest receivable at the close of :d, deferred accrual included: what the steps
after the accrual read instead of `bal_interest`."""
IN_ID_ORDER = "id > 0"
"""True of every loan. The range on id steers the planner (SQLite has no statistics) to the
index `ix_loans_status_id`: a statement over most active loans then visits them in id order,
each lookup a step to the next row, instead of at random in another index's order."""

_NEXT = (
    "(SELECT i.{col} FROM installments i WHERE i.loan_id = loans.id"
    " AND i.version = loans.schedule_version AND i.number = loans.period_no{offset})"
)
BILLING = f"{ACTIVE} AND period_due = :d"

OVERDUE_PRINCIPAL = (
    "(SELECT CAST(COALESCE(SUM(i.principal_fen - i.paid_principal_fen), 0) AS BIGINT) FROM installments i"
    " WHERE i.loan_id = loans.id AND i.version = loans.schedule_version AND i.billed = TRUE"
    " AND i.due_day + loans.grace_days < :d)"
)
PENALTY = _round_by_loan(
    f"{OVERDUE_PRINCIPAL} * penalty_rate_e8", "CAST(100000000 AS BIGINT) * year_days"
)
LATE = f"{ACTIVE} AND oldest_due IS NOT NULL AND oldest_due < :d AND oldest_due + grace_days < :d"
DPD = "(CASE WHEN oldest_due IS NOT NULL AND oldest_due + grace_days < :d THEN :d - oldest_due ELSE 0 END)"


def _update(conn: Connection, table: str) -> str:
    """`UPDATE table`; on SQLite `UPDATE OR FAIL table`, which spares the statement journal.

    Inside a transaction SQLite copies every page an UPDATE first changes to a statement
    journal (spilled to a temporary file past 64 KiB), so that a statement failing a
    constraint half-way (ON CONFLICT ABORT, the default) can be undone on its own. The
    accrual changes a row on most pages of the loan table every day, and that copy made up
    about 45% of its cost. OR FAIL keeps no such copy: a failing statement leaves its earlier
    rows changed. The close never goes on after a failed statement: the error ends the
    date's transaction, which is rolled back whole (`SqlCloseStore.close`), so the outcome of
    a failure is the same, and a statement that does not fail writes exactly the same rows.
    """
    return f"UPDATE OR FAIL {table}" if conn.dialect.name == "sqlite" else f"UPDATE {table}"


def _fen(value: Any) -> Decimal:
    return from_fen(int(value or 0))


def _by_accrual(conn: Connection, sql: str, day: int) -> dict[bool, tuple[int, ...]]:
    """Run an aggregate grouped by non_accrual; {non_accrual: (sums...)}."""
    return by_accrual(conn.execute(text(sql), {"d": day}))


def by_accrual(rows: Iterable[Sequence[Any]]) -> dict[bool, tuple[int, ...]]:
    """Rows of an aggregate grouped by non_accrual as {non_accrual: (sums...)}."""
    return {bool(row[0]): tuple(int(v or 0) for v in row[1:]) for row in rows}


def _split_by_accrual(
    conn: Connection, sums: tuple[str, ...], where: str, day: int
) -> dict[bool, tuple[int, ...]]:
    """`_by_accrual` without GROUP BY: each sum taken twice, for accruing and non-accrual loans.

    A GROUP BY non_accrual invites the planner (SQLite has no statistics) to walk the
    (status, non_accrual) index for its order, i.e. every active loan, even when `where` picks
    a few through another index; with one row out there is no order to want.
    """
    row = conn.execute(text(_split_sql(sums, where)), {"d": day}).one()
    return _split_row(row, len(sums))


def _split_sql(sums: tuple[str, ...], where: str, loans: str = "loans") -> str:
    accruing = [f"SUM(CASE WHEN non_accrual THEN 0 ELSE {x} END)" for x in sums]
    parked = [f"SUM(CASE WHEN non_accrual THEN {x} ELSE 0 END)" for x in sums]
    return f"SELECT {', '.join(accruing + parked)} FROM {loans} WHERE {where}"


def _split_row(row: Any, n: int) -> dict[bool, tuple[int, ...]]:
    values = [int(v or 0) for v in row]
    return {False: tuple(values[:n]), True: tuple(values[n:])}


def _post(conn: Connection, event: EventType, day: date, step: CobStep, legs: list[Any]) -> None:
    entry = entry_or_none(event, day, f"cob:{day.isoformat()}:{step.value}", legs)
    if entry is not None:
        SqlLedger(conn).post(entry)


def _income_legs(amount: dict[bool, int], receivable: Account, income: Account) -> list[Any]:
    """Accruing loans earn income; non-accrual loans park the same amount in suspense."""
    earned, parked = _fen(amount.get(False, 0)), _fen(amount.get(True, 0))
    return [
        leg(receivable, Side.DEBIT, earned + parked),
        leg(income, Side.CREDIT, earned),
        leg(Account.INTEREST_SUSPENSE, Side.CREDIT, parked),
    ]


def _post_income(
    conn: Connection,
    day: date,
    step: CobStep,
    event: EventType,
    sums: dict[bool, tuple[int, ...]],
    accounts: tuple[Account, Account],
) -> None:
    """Post a step's receivable growth: income for accruing loans, suspense for the rest."""
    amounts = {k: v[0] for k, v in sums.items()}
    _post(conn, event, day, step, _income_legs(amounts, *accounts))


ACCRUAL_SUMS = (
    f"SELECT non_accrual, SUM({ACCRUAL_TARGET} - {ACCRUED_BEFORE}), COUNT(*) FROM loans"
    f" WHERE {ACCRUING} GROUP BY non_accrual"
)
"""The income of every accruing loan at the close of :d, and their count, by non_accrual."""
_INCOME = (f"{ACCRUAL_TARGET} - {ACCRUED_BEFORE}", "1")
"""`ACCRUAL_SUMS`' sums, for `_split_by_accrual` over a few loans."""
# The carried accrual runs on SQLite only (it is read aside through a pinned WAL reader), so
# its statements name their access path: left to itself, the planner walks every active loan
# by the period_due index to find a few hundred by id or by the mark.
_CHANGED_THEN = _split_sql(
    _INCOME, f"{ACCRUING} AND id IN (SELECT value FROM json_each(:ids))", "loans NOT INDEXED"
)
"""What the rows with ids in :ids (a JSON list) earned at the close of :d: by rowid."""
_WRITTEN_NOW = _split_sql(
    _INCOME, f"{ACCRUING} AND accrual_dirty", "loans INDEXED BY ix_loans_accrual_dirty"
)
Sums = dict[bool, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class CarriedAccrual:
    """`ACCRUAL_SUMS` for the close of `day`, read from the book as the last close left it
    (aside, while the day was booked and paid: `close_store.SqlCloseStore`), with a reader
    still pinned to that moment (`read_then`: a query's rows).

    Between two closes a loan row changes only by servicing, which marks every row it
    writes, new ones too, `accrual_dirty`; a row unchanged since the last close earns now
    what it earned then. So the sums now are those, less what the rows changed since earned then,
    plus what they earn now (`sums_now`): a few hundred rows read instead of the book. It
    relies on the rule deferred accrual relies on (`ACCRUED_BEFORE`), and so on the caller
    being the book's only writer; a close that sums the book anyway (a month-end's, which
    writes every row) checks the carried sums against it (`check`), which catches a row
    changed unmarked since the last close. One changed earlier in the month shows where a
    deferring close shows it: the month-end's ledger reconcile.
    """

    day: int
    sums: Sums
    read_then: Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

    def sums_now(self, conn: Connection) -> Sums:
        changed = [
            int(i) for (i,) in conn.execute(text("SELECT id FROM loans WHERE accrual_dirty"))
        ]
        then = _split_row(
            self.read_then(_CHANGED_THEN, {"d": self.day, "ids": json.dumps(changed)})[0], 2
        )
        written = _split_row(conn.execute(text(_WRITTEN_NOW), {"d": self.day}).one(), 2)
        now: Sums = {}
        for group in (False, True):
            total = tuple(
                c + w - t
                for c, w, t in zip(
                    self.sums.get(group, (0, 0)), written[group], then[group], strict=True
                )
            )  # fmt: skip
            if total != (0, 0):  # as a GROUP BY gives no row for a group without loans
                now[group] = total
        return now

    def check(self, conn: Connection, summed: Sums) -> None:
        carried = self.sums_now(conn)
        if carried != summed:
            raise RuntimeError(
                f"the accrual carried from the last close ({carried}) is not the book's"
                f" ({summed}): a loan row was written since without marking it accrual_dirty"
            )


def accrue(
    conn: Connection,
    day: date,
    *,
    deferred: bool = False,
    carried: CarriedAccrual | None = None,
) -> int:
    """Bring every accruing loan's period interest to the day; returns the loans accruing.

    The day's income is each accruing loan's share at this close less its share at the last
    (`ACCRUED_BEFORE`), posted as one entry. The rows written since the last close are
    brought up to date and unmarked; then, unless `deferred`, every accruing row. A deferred
    close leaves the other rows as they stand: the steps after it, and any loan read
    (`SqlLoans`), add the unwritten days (`INTEREST`, `accrued_through`), and a later close
    that does not defer writes them all. The ledger is the same either way.

    A period with no interest (an interest-free product) accrues 0 on every day: its target
    is 0 in every rounding mode, so once its accrued is 0 the UPDATE leaves it alone instead
    of rewriting it each day. The count reported is still every accruing loan (the SELECT's).

    `carried`, the sums read for this close from the last one's moment: a deferred close
    takes them instead of summing the book; one that sums the book checks them against it.
    """
    d = to_day(day)
    if carried is not None and carried.day != d:
        carried = None  # read for another close than this one
    if carried is not None and deferred:
        sums = carried.sums_now(conn)
    else:
        # GROUP BY non_accrual walks the (status, non_accrual) index, i.e. loans in id
        # order, which reads the table about twice as fast as the period_due order.
        sums = _by_accrual(conn, ACCRUAL_SUMS, d)
        if carried is not None:
            carried.check(conn, sums)
    conn.execute(
        text(
            f"{_update(conn, 'loans')} SET bal_interest = bal_interest + (CASE WHEN {ACCRUING}"
            f" THEN {ACCRUAL_TARGET} - period_accrued ELSE 0 END), period_accrued = CASE WHEN"
            f" {ACCRUING} THEN {ACCRUAL_TARGET} ELSE period_accrued END, accrual_dirty = FALSE"
            " WHERE accrual_dirty"
        ),
        {"d": d},
    )
    if not deferred:
        conn.execute(
            text(
                f"{_update(conn, 'loans')} SET bal_interest = bal_interest + {ACCRUAL_TARGET} - period_accrued,"
                f" period_accrued = {ACCRUAL_TARGET}"
                f" WHERE {ACCRUING} AND {HAS_INTEREST} AND {IN_ID_ORDER}"
            ),
            {"d": d},
        )
    accounts = (Account.INTEREST_RECEIVABLE, Account.INTEREST_INCOME)
    _post_income(conn, day, CobStep.ACCRUAL, EventType.COB_ACCRUAL, sums, accounts)
    return sum(v[1] for v in sums.values())


def bill(conn: Connection, day: date) -> int:
    """Bill installments falling due: fees become receivable, the next period starts."""
    d = to_day(day)
    fee = _NEXT.format(col="fee_fen", offset="")
    total = _NEXT.format(col="principal_fen + i.interest_fen + i.fee_fen", offset="")
    sums = _split_by_accrual(conn, (f"COALESCE({fee}, 0)",), BILLING, d)
    conn.execute(
        text(
            f"{_update(conn, 'installments')} SET billed = TRUE WHERE due_day = :d AND active = TRUE"
            " AND billed = FALSE AND EXISTS (SELECT 1 FROM loans l WHERE l.id = installments.loan_id"
            " AND l.status = 'active' AND l.period_due = :d AND l.period_no = installments.number"
            " AND l.schedule_version = installments.version)"
        ),
        {"d": d},
    )
    result = conn.execute(
        text(
            # The period billed has earned all its interest (`:d` is its due date): a row the
            # accrual deferred takes the days it has not written.
            f"{_update(conn, 'loans')} SET bal_fee = bal_fee + COALESCE({fee}, 0),"
            " bal_interest = bal_interest + period_interest - period_accrued,"
            f" oldest_due = CASE WHEN COALESCE({total}, 0) > 0 THEN COALESCE(oldest_due, :d) ELSE oldest_due END,"
            f" period_due = {_NEXT.format(col='due_day', offset=' + 1')},"
            f" period_interest = COALESCE({_NEXT.format(col='interest_fen', offset=' + 1')}, 0),"
            " period_start = period_due, period_no = period_no + 1, period_accrued = 0"
            f" WHERE {BILLING}"
        ),
        {"d": d},
    )
    accounts = (Account.FEE_RECEIVABLE, Account.FEE_INCOME)
    _post_income(conn, day, CobStep.BILLING, EventType.COB_BILLING, sums, accounts)
    return int(result.rowcount)


def apply_credits(conn: Connection, day: date) -> int:
    """Settle fresh dues from credit balances; only loans holding credit and owing are touched."""
    ids = conn.execute(
        text(
            f"SELECT id FROM loans WHERE bal_credit > 0 AND {ACTIVE}"
            " AND (oldest_due IS NOT NULL OR bal_penalty > 0) ORDER BY id"
        )
    ).scalars()
    repo, ledger, payments = SqlLoans(conn, lambda: day), SqlLedger(conn), SqlPayments(conn)
    count = 0
    for loan_id in list(ids):
        loan = repo.get(loan_id)
        key = f"credit:{loan_id}:{day.isoformat()}"
        outcome = apply_credit(loan, day, key)
        if outcome is None:
            continue
        entry_id = ledger.post(outcome.entry)
        repo.save(outcome.loan)
        payments.add(
            StoredPayment(
                0,
                loan_id,
                "credit_applied",
                day,
                outcome.entry.total,
                key,
                key,
                "posted",
                outcome.applied,
                outcome.parts,
                entry_id,
                loan.schedule_version,
            )
        )
        count += 1
    return count


def penalise(conn: Connection, day: date) -> int:
    """Penalty interest on overdue principal, for late loans.

    The day's penalty is read off the balances, the late loans' penalty after the UPDATE less
    before it (the UPDATE changes neither who is late nor non_accrual), so each loan's overdue
    principal is summed from its installments once, not once for the entry and again for it.
    """
    d = to_day(day)
    before = _split_by_accrual(conn, ("bal_penalty", "1"), LATE, d)
    if not before[False][1] and not before[True][1]:
        return 0  # no loan is late: the UPDATE would change none, and nothing is earned
    result = conn.execute(
        text(f"{_update(conn, 'loans')} SET bal_penalty = bal_penalty + {PENALTY} WHERE {LATE}"),
        {"d": d},
    )
    after = _split_by_accrual(conn, ("bal_penalty",), LATE, d)
    sums: dict[bool, tuple[int, ...]] = {k: (after[k][0] - before[k][0],) for k in after}
    accounts = (Account.PENALTY_RECEIVABLE, Account.PENALTY_INCOME)
    _post_income(conn, day, CobStep.PENALTY, EventType.COB_PENALTY, sums, accounts)
    return int(result.rowcount)


def age(conn: Connection, day: date) -> int:
    """DPD of loans with unpaid bills, and back to 0 for loans paid up since the last close."""
    late = conn.execute(
        text(
            f"{_update(conn, 'loans')} SET dpd = {DPD}"
            f" WHERE {ACTIVE} AND oldest_due IS NOT NULL AND dpd <> {DPD}"
        ),
        {"d": to_day(day)},
    )
    cured = conn.execute(
        text(
            f"{_update(conn, 'loans')} SET dpd = 0"
            f" WHERE {ACTIVE} AND dpd > 0 AND oldest_due IS NULL"
        )
    )
    return int(late.rowcount) + int(cured.rowcount)


def _bucket_sql(scheme: BucketScheme) -> str:
    arms = " ".join(
        f"WHEN dpd >= {low} THEN {index}"
        for index, low in reversed(list(enumerate(scheme.lower_bounds, start=1)))
    )
    return f"(CASE {arms} ELSE 0 END)"


def _label_sql(column: str, scheme: BucketScheme) -> str:
    arms = " ".join(f"WHEN {i} THEN '{label}'" for i, label in enumerate(scheme.labels))
    return f"(CASE {column} {arms} END)"


def _class_sql(profile: ClassificationProfile) -> str:
    arms = " ".join(
        f"WHEN dpd > {over} THEN '{risk.value}'" for over, risk in reversed(profile.thresholds)
    )
    return f"(CASE {arms} ELSE '{RiskClass.NORMAL.value}' END)"


def classify(
    conn: Connection,
    day: date,
    scheme: BucketScheme = DEFAULT_BUCKETS,
    profile: ClassificationProfile | None = None,
) -> int:
    """Move loans between buckets and the five regulatory classes, logging every move.

    A restructured loan under observation keeps at least its restructuring's class
    (`storage.restructures`: the hold is counted and released first, then floors the class).
    """
    bucket, dpd_class = _bucket_sql(scheme), _class_sql(profile or default_profile())
    observe(conn, day, dpd_class)
    klass = held_class_sql(dpd_class)
    moves = (
        ("bucket", "bucket", _label_sql("bucket", scheme), bucket, _label_sql(bucket, scheme)),
        ("class", "risk_class", "risk_class", klass, klass),
    )
    changed = 0
    # Only delinquent loans, or loans that just stopped being delinquent, can move. Most days
    # no loan was cured (and a young book has no delinquent loan): one statement, two looks
    # in the (status, dpd, bucket) index, says which walks would find none, and those run
    # none of their three statements.
    walks = (f"{ACTIVE} AND dpd > 0", f"{ACTIVE} AND dpd = 0 AND bucket > 0")
    for candidates in _any_of(conn, walks):
        for kind, column, old, target, new in moves:
            conn.execute(
                text(
                    "INSERT INTO loan_events (loan_id, business_date, kind, old, new)"
                    f" SELECT id, :day, '{kind}', {old}, {new} FROM loans"
                    f" WHERE {candidates} AND {column} <> {target}"
                ),
                {"day": day},
            )
        result = conn.execute(
            text(
                f"{_update(conn, 'loans')} SET bucket = {bucket}, risk_class = {klass}"
                f" WHERE {candidates} AND (bucket <> {bucket} OR risk_class <> {klass})"
            )
        )
        changed += int(result.rowcount)
    return changed


def _any_of(conn: Connection, wheres: tuple[str, ...]) -> list[str]:
    """The conditions of `wheres` that some loan satisfies, in order (one statement)."""
    looks = ", ".join(f"(SELECT 1 FROM loans WHERE {w} LIMIT 1)" for w in wheres)
    found = conn.execute(text(f"SELECT {looks}")).one()
    return [where for where, hit in zip(wheres, found, strict=True) if hit is not None]


_INCOME_SUMS = f"SUM({INTEREST}), SUM(bal_fee), SUM(bal_penalty), COUNT(*)"


def _suspense_legs(sums: tuple[int, ...], entering: bool) -> list[Any]:
    """Unpaid interest, fees and penalty move between income and suspense."""
    interest, fee, penalty = (_fen(v) for v in sums[:3])
    income_side = Side.DEBIT if entering else Side.CREDIT
    return [
        leg(Account.INTEREST_INCOME, income_side, interest),
        leg(Account.FEE_INCOME, income_side, fee),
        leg(Account.PENALTY_INCOME, income_side, penalty),
        leg(Account.INTEREST_SUSPENSE, income_side.opposite, interest + fee + penalty),
    ]


def _past_lowest(conn: Connection, threshold: str) -> str:
    """`dpd > 0` narrowed to the lowest `threshold` among the delinquent loans.

    `dpd > 0 AND dpd >= threshold` alone has the (status, dpd) index walk every delinquent
    loan, once per statement; the bound, read in one walk, starts each walk at the lowest
    threshold instead. The rows visited are the same, in the same order (so rows inserted
    from them get the same ids), and no delinquent loan short of its threshold is left out.
    """
    lowest = conn.execute(
        text(f"SELECT MIN({threshold}) FROM loans WHERE {ACTIVE} AND dpd > 0")
    ).scalar()
    return "FALSE" if lowest is None else f"dpd >= {max(int(lowest), 1)}"


def stop_accrual(conn: Connection, day: date) -> int:
    """From the non-accrual DPD, income already booked but unpaid goes to suspense; a loan that
    is fully current again returns to accrual and its suspense is released."""
    past = _past_lowest(conn, "non_accrual_dpd")
    enter = f"{ACTIVE} AND {past} AND dpd >= non_accrual_dpd AND non_accrual = FALSE"
    leave = f"{ACTIVE} AND non_accrual = TRUE AND dpd = 0"
    legs: list[Any] = []
    moved = 0
    for where, entering in ((enter, True), (leave, False)):
        if entering and past == "FALSE":
            continue  # no loan is delinquent: none can enter (its legs would all be zero)
        sums = conn.execute(
            text(f"SELECT {_INCOME_SUMS} FROM loans WHERE {where}"), {"d": to_day(day)}
        ).one()
        legs += _suspense_legs(tuple(sums), entering)
        if not sums[3]:
            continue  # no loan moves: the event INSERT and the UPDATE would touch no row
        conn.execute(
            text(
                "INSERT INTO loan_events (loan_id, business_date, kind, old, new)"
                f" SELECT id, :day, 'accrual', '{'accrual' if entering else 'non_accrual'}',"
                f" '{'non_accrual' if entering else 'accrual'}' FROM loans WHERE {where}"
            ),
            {"day": day},
        )
        flag = "TRUE" if entering else "FALSE"
        moved += int(
            conn.execute(
                text(f"{_update(conn, 'loans')} SET non_accrual = {flag} WHERE {where}")
            ).rowcount
        )
    _post(conn, EventType.COB_NON_ACCRUAL, day, CobStep.NON_ACCRUAL, legs)
    return moved


def charge_off(conn: Connection, day: date) -> int:
    """Loans at the product's charge-off DPD leave the book; income in suspense is cleared."""
    past = _past_lowest(conn, "charge_off_dpd")
    if past == "FALSE":
        return 0  # no loan is delinquent, so none is charged off
    where = f"{ACTIVE} AND {past} AND dpd >= charge_off_dpd"
    sums = _by_accrual(
        conn,
        f"SELECT non_accrual, SUM(bal_principal), SUM({INTEREST}), SUM(bal_fee), SUM(bal_penalty)"
        f" FROM loans WHERE {where} GROUP BY non_accrual",
        to_day(day),
    )
    if not sums:
        return 0  # no group, no loan: the INSERT and UPDATE would touch none, no leg moves
    legs = _charge_off_legs(sums)
    conn.execute(
        text(
            "INSERT INTO loan_events (loan_id, business_date, kind, old, new)"
            f" SELECT id, :day, 'status', 'active', 'charged_off' FROM loans WHERE {where}"
        ),
        {"day": day},
    )
    result = conn.execute(
        text(
            f"{_update(conn, 'loans')} SET status = 'charged_off',"
            f" charged_off_fen = bal_principal + {INTEREST} + bal_fee + bal_penalty,"
            " bal_principal = 0, bal_interest = 0, bal_fee = 0, bal_penalty = 0,"
            f" period_due = NULL, closed_on = :day WHERE {where}"
        ),
        {"day": day, "d": to_day(day)},
    )
    _post(conn, EventType.COB_CHARGE_OFF, day, CobStep.CHARGE_OFF, legs)
    return int(result.rowcount)


def _charge_off_legs(sums: dict[bool, tuple[int, ...]]) -> list[Any]:
    zero = (0, 0, 0, 0)
    accruing, parked = sums.get(False, zero), sums.get(True, zero)
    totals = [_fen(a + b) for a, b in zip(accruing, parked, strict=True)]
    return [
        leg(Account.CHARGE_OFF_EXPENSE, Side.DEBIT, _fen(sum(accruing) + parked[0])),
        leg(Account.INTEREST_SUSPENSE, Side.DEBIT, _fen(sum(parked[1:]))),
        leg(Account.PRINCIPAL_RECEIVABLE, Side.CREDIT, totals[0]),
        leg(Account.INTEREST_RECEIVABLE, Side.CREDIT, totals[1]),
        leg(Account.FEE_RECEIVABLE, Side.CREDIT, totals[2]),
        leg(Account.PENALTY_RECEIVABLE, Side.CREDIT, totals[3]),
    ]


def write_off(conn: Connection, day: date) -> int:
    """Charged-off loans reach the product's write-off day: written off (核销). No money moves
    (charge-off took the balances off the books); the status and an event record it. Set-based
    per distinct policy, so the date arithmetic stays in Python and the SQL stays portable."""
    policies = conn.execute(
        text(
            "SELECT DISTINCT write_off_days FROM loans"
            " WHERE status = 'charged_off' AND write_off_days IS NOT NULL"
        )
    ).scalars()
    moved = 0
    for days in sorted(int(d) for d in policies):
        params = {"day": day, "days": days, "cutoff": day - timedelta(days=days)}
        where = "status = 'charged_off' AND write_off_days = :days AND closed_on <= :cutoff"
        conn.execute(
            text(
                "INSERT INTO loan_events (loan_id, business_date, kind, old, new)"
                f" SELECT id, :day, 'status', 'charged_off', 'written_off' FROM loans WHERE {where}"
            ),
            params,
        )
        result = conn.execute(
            text(f"UPDATE loans SET status = 'written_off' WHERE {where}"), params
        )
        moved += int(result.rowcount)
    return moved


SNAPSHOT_GROUPS = (
    "product_id, bucket, risk_class, COUNT(*), SUM(bal_principal),"
    f" SUM({INTEREST}), SUM(bal_fee), SUM(bal_penalty)"
    f" FROM loans WHERE {ACTIVE} GROUP BY product_id, bucket, risk_class"
)
"""The snapshot's groups of active loans as of the close of :d (after `SELECT`)."""
_INSERT_SNAPSHOT = (
    "INSERT INTO portfolio_snapshots (business_date, product_id, bucket, risk_class, loans,"
    " principal_fen, interest_fen, fee_fen, penalty_fen)"
)


def snapshot(conn: Connection, day: date) -> int:
    """The day's delinquency and classification table, kept for reports on any past date.

    The active loans are read through `ix_loans_status_snapshot`, in the GROUP BY's order, so
    the groups need no sort; the rows come out, and are inserted, in the same order.
    """
    result = conn.execute(
        text(f"{_INSERT_SNAPSHOT} SELECT :day, {SNAPSHOT_GROUPS}"),
        {"day": day, "d": to_day(day)},
    )
    return int(result.rowcount)


def insert_snapshot(conn: Connection, day: date, groups: Sequence[tuple[Any, ...]]) -> int:
    """`SNAPSHOT_GROUPS` rows read elsewhere (`SqlCloseStore(read_aside=True)`), stored as
    the snapshot of `day`, in the order read, as `snapshot` stores them."""
    if groups:
        conn.execute(
            text(f"{_INSERT_SNAPSHOT} VALUES (:day, :p, :b, :c, :n, :pr, :i, :f, :pe)"),
            [
                dict(zip(("p", "b", "c", "n", "pr", "i", "f", "pe"), g, strict=True), day=day)
                for g in groups
            ],
        )
    return len(groups)


def fund(conn: Connection, day: date, *, carried: bool = False) -> int:
    """The funder sub-ledgers' close: charge-offs and guarantee payouts split, then the GL,
    then each funder's exposure at the close (what booking re-checks plans against).

    `carried`: each funder's balance is carried from the last close by the flows written
    since, and on month-ends summed from the positions too and checked against the carried
    one (`close_exposures`).
    """
    from lendstack.storage.funding import close_exposures

    flows, entry = close_funding(conn, day)
    if entry is not None:
        SqlLedger(conn).post(entry)
    close_exposures(conn, day, carry=carried, check=carried and is_month_end(day))
    return flows


STEP_SQL: dict[CobStep, Callable[..., int]] = {
    CobStep.ACCRUAL: accrue,
    CobStep.BILLING: bill,
    CobStep.CREDIT: apply_credits,
    CobStep.PENALTY: penalise,
    CobStep.AGING: age,
    CobStep.CLASSIFICATION: classify,
    CobStep.NON_ACCRUAL: stop_accrual,
    CobStep.CHARGE_OFF: charge_off,
    CobStep.WRITE_OFF: write_off,
    CobStep.FUNDING: fund,
    CobStep.MONTH_END: close_month_end,
    CobStep.COLLECTIONS: resolve_promises,
    CobStep.SNAPSHOT: snapshot,
}
