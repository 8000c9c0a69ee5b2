"""Close-of-business indexes: the daily steps read only the loans they act on

- `ix_loans_status_id`: the active loans in id order. The accrual rewrites every accruing
  loan each day and the snapshot reads every active one; visiting them in id order (rather
  than in period_due order, i.e. at random) makes each row's lookup a step to the next leaf
  entry, which on SQLite roughly halves both (the statements add `id > 0` so the planner,
  which has no statistics, takes this index). Its entries change only with a loan's status.
- `ix_loans_disbursement_date`: a book's first close and `cob run --through` ask for its
  first disbursement date; the index answers MIN() from its first entry instead of scanning.
- `ix_loans_holding_credit` gains `status` in front: the credit step asks for active loans
  holding credit, and with the equality on status the planner (SQLite has no statistics)
  takes this small partial index instead of walking every active loan.
- `ix_loans_status_write_off`: the write-off step finds charged-off loans by policy and
  charge-off date, so its cost does not grow with the charged-off history.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CREDIT = sa.text("bal_credit > 0")


def upgrade() -> None:
    op.create_index("ix_loans_status_id", "loans", ["status", "id"])
    op.create_index("ix_loans_disbursement_date", "loans", ["disbursement_date"])
    op.create_index("ix_loans_status_write_off", "loans", ["status", "write_off_days", "closed_on"])
    op.drop_index(
        "ix_loans_holding_credit",
        table_name="loans",
        sqlite_where=_CREDIT,
        postgresql_where=_CREDIT,
    )
    op.create_index(
        "ix_loans_holding_credit",
        "loans",
        ["status", "id"],
        sqlite_where=_CREDIT,
        postgresql_where=_CREDIT,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_loans_holding_credit",
        table_name="loans",
        sqlite_where=_CREDIT,
        postgresql_where=_CREDIT,
    )
    op.create_index(
        "ix_loans_holding_credit",
        "loans",
        ["id"],
        sqlite_where=_CREDIT,
        postgresql_where=_CREDIT,
    )
    op.drop_index("ix_loans_status_write_off", table_name="loans")
    op.drop_index("ix_loans_disbursement_date", table_name="loans")
    op.drop_index("ix_loans_status_id", table_name="loans")
