"""Whole-database snapshots for tests that must prove "nothing changed" or "same books".

`dump` is every row of every servicing table, exactly as stored: two dumps are equal only if
nothing at all was written. `fingerprint` is the business content of the books without the
values that legitimately differ between two databases holding the same books (autoincrement
ids and wall-clock timestamps), so an interrupted-then-resumed close can be compared with an
uninterrupted one on another database.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

TABLES = (
    "loans",
    "installments",
    "payments",
    "payment_parts",
    "journal_entries",
    "journal_lines",
    "cob_steps",
    "loan_events",
    "portfolio_snapshots",
    "loan_month_ends",
    "first_payment_defaults",
)


def _rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(text(sql))]


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a deterministic order."""
    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            result = conn.execute(text(f"SELECT * FROM {table}"))
            rows = [tuple(r) for r in result]
            out[table] = sorted(rows, key=repr)
    return out


_LOAN_COLUMNS = (
    "id, status, bal_principal, bal_interest, bal_fee, bal_penalty, bal_credit, period_no,"
    " period_start, period_due, period_interest, period_accrued, oldest_due, dpd, bucket,"
    " risk_class, non_accrual, schedule_version, charged_off_fen, recovered_fen, closed_on"
)

FINGERPRINT_SQL = {
    # Loan ids are assigned in booking order on both databases, so they are content here.
    "loans": f"SELECT {_LOAN_COLUMNS} FROM loans ORDER BY id",
    "installments": (
        "SELECT loan_id, version, number, due_day, principal_fen, interest_fen, fee_fen,"
        " paid_principal_fen, paid_interest_fen, paid_fee_fen, billed, active"
        " FROM installments ORDER BY loan_id, version, number"
    ),
    "journal": (
        "SELECT e.business_date, e.event, e.reference, l.account, l.loan_id,"
        " SUM(l.debit_fen), SUM(l.credit_fen), COUNT(*)"
        " FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id"
        " GROUP BY e.business_date, e.event, e.reference, l.account, l.loan_id"
        " ORDER BY e.business_date, e.event, e.reference, l.account, l.loan_id"
    ),
    "payments": (
        "SELECT loan_id, kind, value_date, amount_fen, idempotency_key, status, applied"
        " FROM payments ORDER BY loan_id, idempotency_key"
    ),
    "cob_steps": "SELECT business_date, step, rows FROM cob_steps ORDER BY business_date, step",
    "loan_events": (
        "SELECT loan_id, business_date, kind, old, new FROM loan_events"
        " ORDER BY loan_id, business_date, kind"
    ),
    "portfolio_snapshots": (
        "SELECT * FROM portfolio_snapshots ORDER BY business_date, product_id, bucket, risk_class"
    ),
    "loan_month_ends": "SELECT * FROM loan_month_ends ORDER BY loan_id, month_end",
    "first_payment_defaults": "SELECT * FROM first_payment_defaults ORDER BY loan_id",
}


def fingerprint(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The books' content, free of ids and timestamps; equal books give equal fingerprints."""
    with engine.connect() as conn:
        return {name: _rows(conn, sql) for name, sql in FINGERPRINT_SQL.items()}
