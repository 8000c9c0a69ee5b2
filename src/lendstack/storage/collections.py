"""Collections storage: the book the queue ranks, the contact log and promises to pay.

- `read_book` reads every loan a strategy may serve in one set-based statement (delinquent
  loans by the (status, dpd) index, loans about to fall due by the (status, period_due) index)
  straight into numpy arrays for `lendstack.collections.strategy.rank`.
- `log_facts` / `history` summarise the contact log with grouped SQL, for the plan (all
  loans) and for one attempt.
- `record_contact` checks an attempt with the rule pack and appends it to the audit log,
  allowed or refused, in one transaction; unknown or closed loans write nothing.
- `record_promise` and `resolve_promises` (the close-of-business `collections` step) keep
  promises to pay; the step marks every open promise whose date has come, or that has been
  paid in full, kept or broken in two statements.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy import Connection, Engine, insert, select, text

from lendstack.collections import (
    Attempt,
    Book,
    History,
    LogFacts,
    Outcome,
    Party,
    RulePack,
    Verdict,
    check,
    local_time,
)
from lendstack.core.errors import Conflict, NotFound, ValidationError
from lendstack.core.money import from_fen, to_fen
from lendstack.storage.calendar import last_closed
from lendstack.storage.mapping import to_day
from lendstack.storage.repositories import now
from lendstack.storage.schema import collection_contacts, loans, promises_to_pay

_BALANCE = "bal_principal + bal_interest + bal_fee + bal_penalty"
_BOOK_SQL = (
    f"SELECT id, dpd, bucket, {_BALANCE}, -1 FROM loans WHERE status = 'active' AND dpd > 0"
    " UNION ALL"
    f" SELECT id, dpd, bucket, {_BALANCE}, period_due - :d FROM loans"
    " WHERE status = 'active' AND period_due >= :d AND period_due <= :until AND dpd = 0"
)


def check_open_date(conn: Connection, day: date) -> None:
    """The queue and plan use today's balances: a date already closed is refused."""
    last = last_closed(conn)
    if last is not None and day <= last:
        raise Conflict(
            f"{day} is already closed (last closed {last}); plan for an open date",
            field="date",
        )


def read_book(conn: Connection, day: date, days_before_due: int) -> Book:
    """Delinquent loans and loans falling due within `days_before_due`, as arrays."""
    d = to_day(day)
    # Plain driver tuples: numpy converts a million of them in a fraction of a second, where
    # SQLAlchemy Row objects take ten times as long. The two integers are ours, not user text.
    sql = _BOOK_SQL.replace(":until", str(int(d + days_before_due))).replace(":d", str(int(d)))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    data = np.array(rows, dtype=np.int64).reshape(-1, 5)
    return Book(*(np.ascontiguousarray(data[:, i]) for i in range(5)))


def _in(values: frozenset[str] | tuple[str, ...]) -> str:
    """A literal IN list of the pack's enum values (never user text)."""
    return "(" + ", ".join(f"'{v}'" for v in sorted(values)) + ")"


def _calls(pack: RulePack) -> str:
    channels = _in(frozenset(c.value for c in pack.call_channels))
    outcomes = _in(frozenset(o.value for o in pack.unanswered_outcomes))
    return f"allowed = TRUE AND channel IN {channels} AND outcome IN {outcomes}"


def _reach(pack: RulePack) -> tuple[str, str, str]:
    """SQL aggregates over a debtor's logged attempts: (call attempts, answered, unreachable).

    The plan (all loans, in HAVING) and `history` (one loan, into `History`) use the same
    three, so `History.debtor_unreachable` and the plan agree on who is unreachable."""
    calls = f"channel IN {_in(frozenset(c.value for c in pack.call_channels))}"
    return (
        f"SUM(CASE WHEN {calls} THEN 1 ELSE 0 END)",
        f"SUM(CASE WHEN {calls} AND outcome = 'answered' THEN 1 ELSE 0 END)",
        "SUM(CASE WHEN outcome = 'unreachable' THEN 1 ELSE 0 END)",
    )


_DEBTOR_WINDOW = (
    "FROM collection_contacts WHERE party = 'debtor' AND allowed = TRUE"
    " AND local_day >= :start AND local_day <= :day"
)


def _unreachable_sql(pack: RulePack) -> str:
    attempts, answered, cut_off = _reach(pack)
    return (
        f"SELECT loan_id {_DEBTOR_WINDOW} GROUP BY loan_id HAVING {cut_off} > 0"
        f" OR ({attempts} >= :n AND {answered} = 0)"
    )


def _window(day: date, pack: RulePack) -> dict[str, object]:
    return {
        "start": day - timedelta(days=pack.window_days),
        "day": day,
        "n": pack.unreachable_after,
    }


def log_facts(conn: Connection, day: date, pack: RulePack) -> LogFacts:
    """The contact log's facts for a plan on `day` (the debtor's local day), all loans."""
    counts = {Party.DEBTOR.value: ([], []), Party.EMERGENCY.value: ([], [])}
    sql = (
        f"SELECT party, loan_id, COUNT(*) FROM collection_contacts WHERE local_day = :day"
        f" AND {_calls(pack)} GROUP BY party, loan_id ORDER BY party, loan_id"
    )
    for party, loan_id, count in conn.execute(text(sql), {"day": day}):
        if party in counts:
            counts[party][0].append(int(loan_id))
            counts[party][1].append(int(count))
    unreachable = conn.execute(text(_unreachable_sql(pack)), _window(day, pack))
    ids = np.unique(np.array([r[0] for r in unreachable], dtype=np.int64))

    def arr(values: list[int]) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    debtor, emergency = counts[Party.DEBTOR.value], counts[Party.EMERGENCY.value]
    return LogFacts(arr(debtor[0]), arr(debtor[1]), arr(emergency[0]), arr(emergency[1]), ids)


def history(conn: Connection, attempt: Attempt, day: date, pack: RulePack) -> History:
    """The log's facts for one attempt: its number's unanswered calls on its local day."""
    unanswered = conn.execute(
        text(
            "SELECT COUNT(*) FROM collection_contacts WHERE loan_id = :loan AND number = :number"
            f" AND local_day = :day AND {_calls(pack)}"
        ),
        {"loan": attempt.loan_id, "number": attempt.number, "day": day},
    ).scalar()
    attempts, answered, cut_off = _reach(pack)
    params = {**_window(day, pack), "loan": attempt.loan_id}
    reach = conn.execute(
        text(f"SELECT {attempts}, {answered}, {cut_off} {_DEBTOR_WINDOW} AND loan_id = :loan"),
        params,
    ).one()
    return History(
        unanswered_calls_today=int(unanswered or 0),
        debtor_attempts_in_window=int(reach[0] or 0),
        debtor_answered_in_window=int(reach[1] or 0),
        debtor_number_unreachable=int(reach[2] or 0) > 0,
    )


def open_loan(conn: Connection, loan_id: int) -> None:
    """An unknown loan is NotFound, a closed one a Conflict naming it: nothing is written.

    The loan row stays locked (PostgreSQL) until the caller commits, so two clerks recording
    a 7th call, or a second promise, at the same moment cannot both pass the check."""
    query = select(loans.c.status).where(loans.c.id == loan_id).with_for_update()
    status = conn.execute(query).scalar()
    refused = _not_active(loan_id, status)
    if refused is not None:
        raise refused


def _not_active(loan_id: int, status: str | None) -> Conflict | None:
    """None for an active loan; else why contacts and promises refuse it (an unknown loan
    raises NotFound)."""
    if status is None:
        raise NotFound(f"no loan {loan_id}", field="loan")
    if status != "active":
        return Conflict(
            f"loan {loan_id} is {status}; collection contacts and promises need an active loan",
            field="loan",
        )
    return None


@dataclass(frozen=True, slots=True)
class RecordedContact:
    id: int
    verdict: Verdict
    outcome: Outcome
    local: datetime
    rule_pack: str


def contact_row(
    attempt: Attempt, outcome: Outcome, verdict: Verdict, pack: RulePack, recorded_at: datetime
) -> dict[str, object]:
    """The contact log's row for a checked attempt (`record_contact`, and the simulator's
    batch of a month's attempts)."""
    local = local_time(attempt.at, pack)
    return {
        "loan_id": attempt.loan_id,
        "contacted_at": local.astimezone(UTC),
        "local_day": local.date(),
        "local_time": local.strftime("%H:%M"),
        "channel": attempt.channel.value,
        "party": attempt.party.value,
        "number": attempt.number,
        "outcome": outcome.value,
        "consent": attempt.consent,
        "message": attempt.message,
        "allowed": verdict.allowed,
        "reasons": json.dumps([r.as_json() for r in verdict.refusals], ensure_ascii=False),
        "rule_pack": pack.label,
        "recorded_at": recorded_at,
    }


def record_contact(
    engine: Engine, attempt: Attempt, outcome: Outcome, pack: RulePack
) -> RecordedContact:
    """Check an attempt and append it to the audit log, allowed or refused (module doc)."""
    local = local_time(attempt.at, pack)
    with engine.begin() as conn:
        open_loan(conn, attempt.loan_id)
        verdict = check(attempt, history(conn, attempt, local.date(), pack), pack)
        row = contact_row(attempt, outcome, verdict, pack, now())
        new_id = conn.execute(insert(collection_contacts), row).inserted_primary_key
    assert new_id is not None
    return RecordedContact(int(new_id[0]), verdict, outcome, local, pack.label)


def contacts(engine: Engine, loan_id: int) -> list[dict[str, object]]:
    """A loan's contact log, oldest first, as JSON-ready rows."""
    query = (
        select(collection_contacts)
        .where(collection_contacts.c.loan_id == loan_id)
        .order_by(collection_contacts.c.id)
    )
    with engine.connect() as conn:
        return [
            {
                "id": r.id,
                "local_day": str(r.local_day),
                "local_time": r.local_time,
                "channel": r.channel,
                "party": r.party,
                "number": r.number,
                "outcome": r.outcome,
                "consent": bool(r.consent),
                "allowed": bool(r.allowed),
                "reasons": json.loads(r.reasons),
                "rule_pack": r.rule_pack,
            }
            for r in conn.execute(query)
        ]


# --- promises to pay ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Promise:
    id: int
    loan_id: int
    amount: Decimal
    promised_on: date
    due_date: date
    status: str
    paid: Decimal
    resolved_on: date | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "loan_id": self.loan_id,
            "amount": self.amount,
            "promised_on": self.promised_on,
            "due_date": self.due_date,
            "status": self.status,
            "paid": self.paid,
            "resolved_on": self.resolved_on,
        }


def record_promise(
    engine: Engine, loan_id: int, amount: Decimal, due: date, on: date | None
) -> Promise:
    """A promise to pay `amount` by `due`, counted from `on` (default: the open business date)."""
    result = record_promises(engine, [(loan_id, amount, due)], on)[0]
    if isinstance(result, Exception):
        raise result
    return result


PromiseWanted = tuple[int, Decimal, date]
"""(loan id, amount, due date) of a promise to record."""


def record_promises(
    engine: Engine, wanted: Sequence[PromiseWanted], on: date | None
) -> list[Promise | Conflict | ValidationError]:
    """`record_promise` for each of `wanted`, in order, in one transaction: each result is the
    promise, or the Conflict / ValidationError that `record_promise` would raise for it (and
    nothing is written for it). The simulator's collections record a few hundred promises a
    month-end: one transaction and five statements each cost more than the rest of the hook.

    The checks are `record_promise`'s, against the same rows (read for all the loans at once,
    locked on PostgreSQL until the commit), and a promise sees the ones before it in the
    batch (a second one for the same loan is a Conflict). An unknown loan is NotFound for the
    whole batch: nothing is written."""
    if not wanted:
        return []
    ids = sorted({loan_id for loan_id, _, _ in wanted})
    with engine.begin() as conn:
        status, balance = _promise_loans(conn, ids)
        pending = _open_promises(conn, ids)
        last = last_closed(conn)
        start = on or (last + timedelta(days=1) if last else None)
        # a promise made in this batch: its row's index, until the insert gives its id
        made_here: dict[int, int] = {}
        results: list[Promise | Conflict | ValidationError | tuple[int, int]] = []
        rows: list[dict[str, object]] = []
        for loan_id, amount, due in wanted:
            refused = _refused(loan_id, amount, due, start, last, status, balance, pending)
            if refused is not None:
                results.append(refused)
            elif loan_id in made_here:
                results.append((loan_id, made_here[loan_id]))  # a Conflict naming its id
            else:
                assert start is not None  # _refused refuses a promise with no start
                made_here[loan_id] = len(rows)
                rows.append(_promise_row(loan_id, amount, due, start))
                results.append(
                    Promise(0, loan_id, amount, start, due, "open", Decimal("0.00"), None)
                )
        new_ids = _insert_promises(conn, rows)
    made = iter(new_ids)
    return [_with_id(r, made, new_ids) for r in results]


def _with_id(
    result: Promise | Conflict | ValidationError | tuple[int, int],
    made: Iterator[int],
    new_ids: list[int],
) -> Promise | Conflict | ValidationError:
    """A batch result once the promises' ids are known (a tuple: a loan, and the index of the
    promise made for it earlier in the batch)."""
    if isinstance(result, Promise):
        return replace(result, id=next(made))
    if isinstance(result, tuple):
        loan_id, index = result
        return Conflict(f"loan {loan_id} already has open promise {new_ids[index]}", field="loan")
    return result


def _promise_loans(conn: Connection, ids: list[int]) -> tuple[dict[int, str], dict[int, int]]:
    """Each loan's status and balance (fen), its row locked (PostgreSQL) until the commit, as
    `open_loan` locks it."""
    status: dict[int, str] = {}
    balance: dict[int, int] = {}
    for lo in range(0, len(ids), _PROMISE_CHUNK):
        query = (
            select(loans.c.id, loans.c.status, text(_BALANCE))
            .where(loans.c.id.in_(ids[lo : lo + _PROMISE_CHUNK]))
            .with_for_update()
        )
        for loan_id, state, owed in conn.execute(query).all():
            status[int(loan_id)] = str(state)
            balance[int(loan_id)] = int(owed or 0)
    return status, balance


def _open_promises(conn: Connection, ids: list[int]) -> dict[int, int]:
    """Each loan's open promise (the lowest id, if ever more than one)."""
    found: dict[int, int] = {}
    c = promises_to_pay.c
    for lo in range(0, len(ids), _PROMISE_CHUNK):
        query = (
            select(c.loan_id, c.id)
            .where(c.loan_id.in_(ids[lo : lo + _PROMISE_CHUNK]), c.status == "open")
            .order_by(c.id)
        )
        for loan_id, promise_id in conn.execute(query).all():
            found.setdefault(int(loan_id), int(promise_id))
    return found


_PROMISE_CHUNK = 500
"""Loan ids per IN list: well under SQLite's bound-parameter limit."""


def _refused(
    loan_id: int,
    amount: Decimal,
    due: date,
    start: date | None,
    last: date | None,
    status: dict[int, str],
    balance: dict[int, int],
    pending: dict[int, int],
) -> Conflict | ValidationError | None:
    """Why `record_promise` refuses the promise, in its order of checks (None: it does not);
    an unknown loan raises NotFound."""
    refused = _not_active(loan_id, status.get(loan_id))
    if refused is not None:
        return refused
    if start is None:
        return ValidationError("no business date is closed yet; give --on", field="on")
    if last is not None and due <= last:
        return ValidationError(f"{due} is already closed (last closed {last})", field="date")
    if due < start:
        return ValidationError(f"{due} is before the promise is made ({start})", field="date")
    owed = from_fen(balance[loan_id])
    if amount > owed:
        return ValidationError(f"{amount} is more than the loan owes ({owed})", field="amount")
    found = pending.get(loan_id)
    if found is not None:
        return Conflict(f"loan {loan_id} already has open promise {found}", field="loan")
    return None


def _promise_row(loan_id: int, amount: Decimal, due: date, start: date) -> dict[str, object]:
    return {
        "loan_id": loan_id,
        "amount_fen": to_fen(amount),
        "promised_on": start,
        "due_date": due,
        "due_day": to_day(due),
        "status": "open",
        "paid_fen": 0,
        "created_at": now(),
    }


def _insert_promises(conn: Connection, rows: list[dict[str, object]]) -> list[int]:
    """Insert `rows` in order; their ids, in the same order."""
    if not rows:
        return []
    c = promises_to_pay.c
    query = insert(promises_to_pay).returning(c.id, sort_by_parameter_order=True)
    return [int(i) for i in conn.execute(query, rows).scalars().all()]


def promises(
    engine: Engine, loan_id: int | None = None, status: str | None = None
) -> list[Promise]:
    query = select(promises_to_pay).order_by(promises_to_pay.c.id)
    if loan_id is not None:
        query = query.where(promises_to_pay.c.loan_id == loan_id)
    if status is not None:
        query = query.where(promises_to_pay.c.status == status)
    with engine.connect() as conn:
        return [
            Promise(
                r.id,
                r.loan_id,
                from_fen(r.amount_fen),
                _date(r.promised_on),
                _date(r.due_date),
                r.status,
                from_fen(r.paid_fen),
                _date(r.resolved_on) if r.resolved_on is not None else None,
            )
            for r in conn.execute(query)
        ]


def _date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# Cash the debtor paid inside the promise's window (credit applied from an earlier
# overpayment is not new money; reversed payments have status 'reversed').
_PAID = (
    "(SELECT CAST(COALESCE(SUM(p.amount_fen), 0) AS BIGINT) FROM payments p"
    " WHERE p.loan_id = promises_to_pay.loan_id AND p.status = 'posted'"
    " AND p.kind <> 'credit_applied' AND p.value_date >= promises_to_pay.promised_on"
    " AND p.value_date <= :day)"
)


def resolve_promises(conn: Connection, day: date) -> int:
    """The COB `collections` step: open promises due by `day`, or already paid, are settled."""
    params = {"day": day, "d": to_day(day)}
    conn.execute(
        text(f"UPDATE promises_to_pay SET paid_fen = {_PAID} WHERE status = 'open'"), params
    )
    result = conn.execute(
        text(
            "UPDATE promises_to_pay SET resolved_on = :day, status = CASE WHEN paid_fen >="
            " amount_fen THEN 'kept' ELSE 'broken' END WHERE status = 'open'"
            " AND (due_day <= :d OR paid_fen >= amount_fen)"
        ),
        params,
    )
    return int(result.rowcount)
