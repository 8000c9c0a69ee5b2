"""Close-of-business index: the daily snapshot walks the active loans in its group order

- `ix_loans_status_snapshot`: the active loans by product, bucket and risk class, the
  snapshot's GROUP BY. Walking it, the aggregate reads each group's loans together and
  needs no temporary sort of every active loan, which on SQLite halves the step. Its entries
  change only with a loan's status, bucket or class (booking, classification moves, exits),
  never with the balances the accrual rewrites every day.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_loans_status_snapshot", "loans", ["status", "product_id", "bucket", "risk_class"]
    )


def downgrade() -> None:
    op.drop_index("ix_loans_status_snapshot", table_name="loans")
