"""Use-of-funds surveillance: card transactions from disbursement accounts and the loans they flag

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _loan_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["loan_id"], ["loans.id"], name=op.f(f"fk_{table}_loan_id_loans")
    )


def upgrade() -> None:
    op.create_table(
        "funds_transactions",
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("loan_id", _ID, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        _loan_fk("funds_transactions"),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_funds_transactions")),
    )
    op.create_index("ix_funds_transactions_loan_id", "funds_transactions", ["loan_id"])
    op.create_table(
        "funds_misuse_flags",
        sa.Column("loan_id", _ID, nullable=False),
        sa.Column("borrower_key", sa.String(64), nullable=True),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disbursement_date", sa.Date(), nullable=False),
        sa.Column("days_after", sa.Integer(), nullable=False),
        sa.Column("offending", sa.Integer(), nullable=False),
        sa.Column("flagged_on", sa.Date(), nullable=False),
        sa.Column("pack_id", sa.String(64), nullable=False),
        sa.Column("pack_version", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("penalty_rate", sa.String(24), nullable=True),
        sa.Column("penalty_applied_at", sa.DateTime(timezone=True), nullable=True),
        _loan_fk("funds_misuse_flags"),
        sa.PrimaryKeyConstraint("loan_id", name=op.f("pk_funds_misuse_flags")),
    )
    op.create_index("ix_funds_misuse_flags_borrower_key", "funds_misuse_flags", ["borrower_key"])


def downgrade() -> None:
    op.drop_index("ix_funds_misuse_flags_borrower_key", table_name="funds_misuse_flags")
    op.drop_table("funds_misuse_flags")
    op.drop_index("ix_funds_transactions_loan_id", table_name="funds_transactions")
    op.drop_table("funds_transactions")
