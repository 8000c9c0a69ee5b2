"""Restructured loans: the restructuring record and the observation period that holds the class

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_FEN = (
    "principal_before_fen",
    "capitalised_interest_fen",
    "capitalised_fee_fen",
    "capitalised_penalty_fen",
    "waived_interest_fen",
    "waived_fee_fen",
    "waived_penalty_fen",
    "principal_fen",
)


def upgrade() -> None:
    op.create_table(
        "loan_restructures",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("loan_id", Id, nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("option", sa.String(16), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("rate_before", sa.String(24), nullable=False),
        sa.Column("rate", sa.String(24), nullable=False),
        sa.Column("schedule_version_before", sa.Integer(), nullable=False),
        sa.Column("schedule_version", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _FEN),
        sa.Column("dpd_before", sa.Integer(), nullable=False),
        sa.Column("class_before", sa.String(16), nullable=False),
        sa.Column("floor_class", sa.String(16), nullable=False),
        sa.Column("floor_severity", sa.Integer(), nullable=False),
        sa.Column("observe_until", sa.Date(), nullable=False),
        sa.Column("observe_until_day", sa.Integer(), nullable=False),
        sa.Column("on_time_required", sa.Integer(), nullable=False),
        sa.Column("on_time", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("released_on", sa.Date(), nullable=True),
        sa.Column("entry_id", Id, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_loan_restructures_loan_id_loans")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_loan_restructures_entry_id_journal_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_restructures")),
        sa.UniqueConstraint(
            "loan_id", "business_date", name=op.f("uq_loan_restructures_loan_id_business_date")
        ),
    )
    op.create_index(
        "ix_loan_restructures_status_loan_id", "loan_restructures", ["status", "loan_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_loan_restructures_status_loan_id", table_name="loan_restructures")
    op.drop_table("loan_restructures")
