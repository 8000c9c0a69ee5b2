"""Negotiated settlements: the loans closed for less than their payoff and what was forgiven

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "loan_settlements",
        sa.Column("loan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "payment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("payoff_fen", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("waived_penalty_fen", sa.BigInteger(), nullable=False),
        sa.Column("waived_interest_fen", sa.BigInteger(), nullable=False),
        sa.Column("waived_fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("waived_principal_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_loan_settlements_loan_id_loans")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_loan_settlements_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("loan_id", name=op.f("pk_loan_settlements")),
    )


def downgrade() -> None:
    op.drop_table("loan_settlements")
