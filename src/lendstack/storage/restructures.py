"""Restructuring a loan (`collections restructure`) and the observation hold at close.

`restructure_loan` is the use case: one transaction loads the loan, calls the pure
`servicing.domain.restructure`, posts its entry, supersedes the schedule (a new
`schedule_version`, as a prepayment does), rewrites the contract terms, splits any
capitalised amount to the loan's funders, and records a `loan_restructures` row. Any error
rolls all of it back. The same loan, date and request again returns the first record.

The close's classification step holds a restructured loan's class (REGULATION.md §7.1):
`held_class_sql` floors the DPD class at the restructuring's class while it is `observing`,
and `observe` keeps the count of consecutive installments paid on time and releases the hold
once the period has run AND that count is reached. Everything is set-based SQL over the
observing rows (the status index), the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text, update

from lendstack.core.errors import Conflict
from lendstack.core.money import from_fen, to_fen
from lendstack.servicing.domain.delinquency import DEFAULT_BUCKETS, RiskClass
from lendstack.servicing.domain.loan import LoanState
from lendstack.servicing.domain.products import ProductCatalog
from lendstack.servicing.domain.restructure import (
    ObservationRule,
    Restructured,
    RestructureOption,
    RestructureTerms,
    load_rule,
    restructure,
)
from lendstack.servicing.services import ensure_open
from lendstack.storage import mapping
from lendstack.storage.repositories import SqlUnitOfWork, now
from lendstack.storage.schema import loan_events, loan_restructures, loans
from lendstack.storage.subledger import SubLedger


@dataclass(frozen=True, slots=True)
class RestructureRequest:
    loan_id: int
    on: date
    term_months: int
    rate: Decimal | None = None
    option: RestructureOption = RestructureOption.CAPITALISE

    def fingerprint(self) -> str:
        body = [self.loan_id, self.on.isoformat(), self.term_months, str(self.rate), self.option]
        return hashlib.sha256(json.dumps(body).encode()).hexdigest()


_FEN_FIELDS = (
    "principal_before_fen",
    "capitalised_interest_fen",
    "capitalised_fee_fen",
    "capitalised_penalty_fen",
    "waived_interest_fen",
    "waived_fee_fen",
    "waived_penalty_fen",
    "principal_fen",
)


def record_json(row: Any) -> dict[str, object]:
    """A stored restructuring as the CLI shows it (amounts as strings, exact)."""
    out: dict[str, object] = {
        "id": row.id,
        "loan_id": row.loan_id,
        "date": str(row.business_date),
        "option": row.option,
        "term_months": row.term_months,
        "rate_before": row.rate_before,
        "rate": row.rate,
        "schedule_version": row.schedule_version,
        "dpd_before": row.dpd_before,
        "class_before": row.class_before,
        "class_floor": row.floor_class,
        "observe_until": str(row.observe_until),
        "on_time_required": row.on_time_required,
        "on_time": row.on_time,
        "status": row.status,
        "released_on": None if row.released_on is None else str(row.released_on),
        "entry_id": row.entry_id,
    }
    for name in _FEN_FIELDS:
        out[name.removesuffix("_fen")] = str(from_fen(getattr(row, name)))
    return out


def _existing(conn: Connection, request: RestructureRequest) -> Any:
    row = conn.execute(
        select(loan_restructures).where(
            loan_restructures.c.loan_id == request.loan_id,
            loan_restructures.c.business_date == request.on,
        )
    ).first()
    if row is not None and row.request_hash != request.fingerprint():
        raise Conflict(
            f"loan {request.loan_id} was already restructured on {request.on} on other terms"
            f" (restructuring {row.id})",
            field="loan",
        )
    return row


def restructure_loan(
    engine: Engine,
    catalog: ProductCatalog,
    request: RestructureRequest,
    rule: ObservationRule | None = None,
) -> dict[str, object]:
    """Restructure one loan on the open business date; idempotent per loan, date and terms."""
    rule = rule or load_rule()
    with SqlUnitOfWork(engine) as uow:
        found = _existing(uow.conn, request)
        if found is not None:
            return record_json(found)
        loan = uow.loans.get(request.loan_id, for_update=True)
        ensure_open(uow.calendar, request.on)
        terms = RestructureTerms(request.on, request.term_months, request.rate, request.option)
        reference = f"restructure:{loan.id}:{request.on.isoformat()}"
        product = catalog.get(loan.contract.product_id)
        done = restructure(loan, product, terms, rule, reference)
        entry_id = None if done.entry is None else uow.ledger.post(done.entry)
        uow.loans.save(done.loan)
        uow.conn.execute(
            update(loans)
            .where(loans.c.id == loan.id)
            .values(**mapping.contract_columns(done.loan.contract))
        )
        _log_moves(uow.conn, loan, done, request.on)
        SubLedger(uow.conn).capitalise(loan.id, to_fen(done.capitalised), request.on, reference)
        row_id = _record(uow.conn, request, loan, done, rule, entry_id)
        stored = uow.conn.execute(
            select(loan_restructures).where(loan_restructures.c.id == row_id)
        ).one()
        uow.commit()
    return record_json(stored)


def _log_moves(conn: Connection, before: LoanState, done: Restructured, on: date) -> None:
    """The re-aging's bucket and class moves, in the same log the close writes."""
    labels = DEFAULT_BUCKETS.labels
    moves = (
        ("bucket", labels[DEFAULT_BUCKETS.index_of(before.dpd)], labels[0]),
        ("class", before.risk_class.value, done.loan.risk_class.value),
    )
    rows = [
        {"loan_id": before.id, "business_date": on, "kind": kind, "old": old, "new": new}
        for kind, old, new in moves
        if old != new
    ]
    if rows:
        conn.execute(insert(loan_events), rows)


def _record(
    conn: Connection,
    request: RestructureRequest,
    before: LoanState,
    done: Restructured,
    rule: ObservationRule,
    entry_id: int | None,
) -> int:
    """Supersede an earlier hold on the loan and store this restructuring's record."""
    conn.execute(
        update(loan_restructures)
        .where(loan_restructures.c.loan_id == before.id, loan_restructures.c.status == "observing")
        .values(status="superseded")
    )
    until = rule.until(request.on)
    floor = done.loan.risk_class
    values = {
        "loan_id": before.id,
        "business_date": request.on,
        "request_hash": request.fingerprint(),
        "option": request.option.value,
        "term_months": request.term_months,
        "rate_before": str(before.contract.annual_rate),
        "rate": str(done.loan.contract.annual_rate),
        "schedule_version_before": before.schedule_version,
        "schedule_version": done.loan.schedule_version,
        "principal_before_fen": to_fen(done.old_principal),
        "capitalised_interest_fen": to_fen(done.capitalised_interest),
        "capitalised_fee_fen": to_fen(done.capitalised_fee),
        "capitalised_penalty_fen": to_fen(done.capitalised_penalty),
        "waived_interest_fen": to_fen(done.waived_interest),
        "waived_fee_fen": to_fen(done.waived_fee),
        "waived_penalty_fen": to_fen(done.waived_penalty),
        "principal_fen": to_fen(done.new_principal),
        "dpd_before": done.dpd_before,
        "class_before": done.class_before.value,
        "floor_class": floor.value,
        "floor_severity": floor.severity,
        "observe_until": until,
        "observe_until_day": mapping.to_day(until),
        "on_time_required": rule.on_time_installments,
        "on_time": 0,
        "status": "observing",
        "entry_id": entry_id,
        "created_at": now(),
    }
    result = conn.execute(insert(loan_restructures), values)
    key = result.inserted_primary_key
    if key is None:
        raise Conflict("the database returned no id for the restructuring", field="loan")
    return int(key[0])


def restructures(engine: Engine, loan_id: int | None = None) -> list[dict[str, object]]:
    query = select(loan_restructures).order_by(loan_restructures.c.id)
    if loan_id is not None:
        query = query.where(loan_restructures.c.loan_id == loan_id)
    with engine.connect() as conn:
        return [record_json(r) for r in conn.execute(query)]


# --- close of business: the observation hold ----------------------------------------------

_HOLD = "(SELECT r.{col} FROM loan_restructures r WHERE r.loan_id = loans.id AND r.status = 'observing')"


def _severity_sql(klass: str) -> str:
    arms = " ".join(f"WHEN '{c.value}' THEN {c.severity}" for c in RiskClass)
    return f"(CASE {klass} {arms} END)"


def held_class_sql(klass: str) -> str:
    """The class expression of the close, floored for loans under observation.

    `klass` is the DPD class over the `loans` row; a loan with an observing restructuring
    takes the worse of it and the restructuring's floor (one index lookup per candidate).
    """
    severity, floor = _HOLD.format(col="floor_severity"), _HOLD.format(col="floor_class")
    return f"(CASE WHEN COALESCE({severity}, -1) > {_severity_sql(klass)} THEN {floor} ELSE {klass} END)"


_PAID_ON_TIME = (
    "(SELECT COUNT(*) FROM installments i JOIN loans l ON l.id = i.loan_id"
    " WHERE i.loan_id = loan_restructures.loan_id AND i.active AND i.billed"
    " AND i.due_day + l.grace_days + 1 = :d"
    " AND i.paid_principal_fen + i.paid_interest_fen + i.paid_fee_fen"
    " >= i.principal_fen + i.interest_fen + i.fee_fen)"
)
_DPD = "(SELECT l.dpd FROM loans l WHERE l.id = loan_restructures.loan_id)"


def observe(conn: Connection, day: date, klass: str) -> int:
    """Count on-time installments, release holds that have run their course, upgrade.

    Run by the classification step after aging and before the DPD classes move. An
    installment counts as paid on time if it is fully paid on the close its grace ends; any
    close with DPD > 0 resets the count (the installments must be consecutive). Returns the
    number of loans released today.
    """
    d = mapping.to_day(day)
    # a loan that left the books (paid off, charged off, sold) ends its hold: the observing
    # rows stay those of loans on the books, so this step's cost does not grow with history
    conn.execute(
        text(
            "UPDATE loan_restructures SET status = 'ended' WHERE status = 'observing'"
            " AND (SELECT l.status FROM loans l WHERE l.id = loan_restructures.loan_id)"
            " <> 'active'"
        )
    )
    conn.execute(
        text(
            f"UPDATE loan_restructures SET on_time = CASE WHEN {_DPD} > 0 THEN 0"
            f" ELSE on_time + {_PAID_ON_TIME} END WHERE status = 'observing'"
        ),
        {"d": d},
    )
    released = conn.execute(
        text(
            "UPDATE loan_restructures SET status = 'released', released_on = :day"
            " WHERE status = 'observing' AND observe_until_day <= :d"
            " AND on_time >= on_time_required"
        ),
        {"d": d, "day": day},
    )
    if not released.rowcount:
        return 0
    # Loans still delinquent are moved by the DPD classes; current ones (never candidates
    # there) are upgraded here, logged like every other move.
    just = (
        "status = 'active' AND dpd = 0 AND id IN (SELECT loan_id FROM loan_restructures"
        " WHERE status = 'released' AND released_on = :day)"
        f" AND risk_class <> {klass}"
    )
    conn.execute(
        text(
            "INSERT INTO loan_events (loan_id, business_date, kind, old, new)"
            f" SELECT id, :day, 'class', risk_class, {klass} FROM loans WHERE {just}"
        ),
        {"day": day},
    )
    conn.execute(text(f"UPDATE loans SET risk_class = {klass} WHERE {just}"), {"day": day})
    return int(released.rowcount)


__all__ = [
    "RestructureRequest",
    "held_class_sql",
    "observe",
    "record_json",
    "restructure_loan",
    "restructures",
]
