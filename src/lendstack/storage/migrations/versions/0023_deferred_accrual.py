"""Deferred accrual: loans written since the last close are marked, so a close may leave the
others' accrued interest to be brought up to date later (storage.cob.accrue)

The daily accrual rewrote every accruing loan's row each day, the largest step of the close.
A close may now defer it: each accruing loan's period interest earned to date is a function
of the day (`cob.ACCRUAL_TARGET`), so a loan no one has written since the last close has
earned exactly its share at that close, and only the loans written since (marked here by
`accrual_dirty`, found through a partial index of them) need their row brought up to date.
Existing rows are all up to date: a close before this migration accrued every loan.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_loans_accrual_dirty"


def upgrade() -> None:
    with op.batch_alter_table("loans") as batch:
        batch.add_column(
            sa.Column("accrual_dirty", sa.Boolean(), server_default="0", nullable=False)
        )
    op.create_index(
        _INDEX,
        "loans",
        ["id"],
        sqlite_where=sa.text("accrual_dirty"),
        postgresql_where=sa.text("accrual_dirty"),
    )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="loans")
    # ALTER TABLE, not a batch: on SQLite a batch copies the table and drops the old one,
    # which the other tables' foreign keys to loans refuse (SQLite 3.35+ drops a column).
    op.execute("ALTER TABLE loans DROP COLUMN accrual_dirty")
