"""Close-of-business index: the month-end's reversed-payoff check reads only payoff rows

- `ix_loan_month_ends_paid_off`: the `PO` rows of the loan-month panel, by loan and month-end
  (partial: `state = 'PO'`). Each month-end looks for payoff rows of loans back on the books;
  through the primary key that visited every month-end row of every loan on the books (the
  panel's whole history) to find the few payoffs, through this index it visits only those.
  Its entries are written once, with a loan's payoff row.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAID_OFF = sa.text("state = 'PO'")


def upgrade() -> None:
    op.create_index(
        "ix_loan_month_ends_paid_off",
        "loan_month_ends",
        ["loan_id", "month_end"],
        sqlite_where=_PAID_OFF,
        postgresql_where=_PAID_OFF,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_loan_month_ends_paid_off",
        table_name="loan_month_ends",
        sqlite_where=_PAID_OFF,
        postgresql_where=_PAID_OFF,
    )
